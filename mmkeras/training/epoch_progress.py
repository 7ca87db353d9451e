import keras


class EpochProgress(keras.callbacks.ProgbarLogger):
    """Keras' progress bar, counting the real epochs and steps of a run trained one `fit` per epoch.

    Keras reports a chunk of `steps_per_execution` steps by its last index even when the data
    ended inside it, so its bar reads `20/14` for a 14-step epoch run in chunks of 10; here the
    count never passes the epoch's steps. A run that calls `fit(initial_epoch=e, epochs=e + 1)`
    once per epoch (so no chunk crosses an epoch's end) still shows `Epoch e+1/total`.

    Args:
        epochs: the run's total number of epochs (shown as `Epoch N/epochs`).

    Example:

    >>> import numpy as np, keras
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> model.compile("sgd", "mse", steps_per_execution=3)
    >>> progress = EpochProgress(epochs=4)
    >>> _ = model.fit(np.ones((8, 2)), np.ones((8, 1)), batch_size=2, epochs=1, verbose=0,
    ...               callbacks=[progress])
    >>> progress.seen, progress.target, progress.epochs
    (4, 4, 4)
    """

    def __init__(self, epochs):
        super().__init__()
        self.total_epochs = int(epochs)

    def set_params(self, params):
        super().set_params(params)
        self.epochs = self.total_epochs

    def _update_progbar(self, batch, logs=None):
        if self.target is not None:
            batch = min(batch, self.target - 1)
        super()._update_progbar(batch, logs)
