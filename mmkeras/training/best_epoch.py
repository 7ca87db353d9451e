import math

import keras


class BestEpoch(keras.callbacks.Callback):
    """Follows an epoch figure (e.g. `val_loss`): keeps the best epoch's weights and stops early.

    At each epoch end the figure `monitor` is read from the logs; when it improves (lower for a
    name with "loss" in it, higher otherwise), `save(model)` is called to keep that epoch's
    weights. With `patience > 0`, training stops once `patience` epochs in a row brought no
    improvement (`model.stop_training`, and `stopped` turns true). The figures of earlier epochs
    (`history`, as stored by a resumed run) count too, so a resumed run keeps its best epoch and
    its patience.

    Args:
        monitor: the log name, such as "val_loss" or "val_answer_accuracy".
        patience: epochs without improvement before stopping (0: never stop early).
        save: optional callable `save(model)`, called on each new best epoch.
        history: optional `{name: [value per epoch]}` of the epochs already trained.

    Example:

    >>> best = BestEpoch("val_loss", patience=2, history={"val_loss": [0.9, 0.5, 0.6]})
    >>> best.best_epoch, best.best, best.stopped
    (1, 0.5, False)
    >>> best.set_model(keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)]))
    >>> best.on_epoch_end(3, {"val_loss": 0.7})
    >>> best.stopped, best.model.stop_training
    (True, True)
    """

    def __init__(self, monitor="val_loss", patience=0, save=None, history=None):
        super().__init__()
        if int(patience) < 0:
            raise ValueError(f"`train.early_stopping_patience` must be >= 0, got {patience!r}.")
        self.monitor, self.patience, self._save = str(monitor), int(patience), save
        self.lower_is_better = "loss" in self.monitor
        self.best, self.best_epoch, self.last_epoch = None, None, None
        for epoch, value in enumerate((history or {}).get(self.monitor, [])):
            if value is not None:
                self._see(epoch, float(value))

    @property
    def stopped(self):
        """Whether `patience` epochs in a row have passed without improvement."""
        return bool(self.patience) and self.best_epoch is not None and self.last_epoch - self.best_epoch >= self.patience

    def _see(self, epoch, value):
        """Records `value` for `epoch`; returns whether it is a new best."""
        self.last_epoch = epoch
        better = self.best is None or (value < self.best if self.lower_is_better else value > self.best)
        if better and math.isfinite(value):
            self.best, self.best_epoch = value, epoch
            return True
        return False

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.monitor not in logs:
            raise ValueError(
                f"`train.monitor`={self.monitor!r} is not among the figures of an epoch "
                f"({', '.join(sorted(logs)) or 'none'})."
            )
        if self._see(epoch, float(logs[self.monitor])) and self._save is not None:
            self._save(self.model)
        if self.stopped:
            self.model.stop_training = True
