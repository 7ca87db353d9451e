import json
import math
import os

import keras
import tensorflow as tf

from mmkeras.models import build_from_config
from mmkeras.tasks.run_directory import RunDirectory
from mmkeras.training.default_optimizer import default_optimizer
from mmkeras.training.strategy import get_strategy, per_replica_batch_size


class Task:
    """What `mmkeras train` runs: data, model, fit, evaluation, export.

    The base class owns everything the three families share: the strategy and
    precision policy, the run directory, the optimizer, the callbacks (progress
    bar, TensorBoard, periodic backups for resume after a kill) and saving.
    Subclasses provide `make_datasets`, `evaluate` and `export`.

    Args:
        config: a resolved, validated run config (`mmkeras.zoo.config(...)`).
        output_dir: the run directory.

    Example:

    ```python
    from mmkeras import zoo
    from mmkeras.tasks import task_for_config
    task = task_for_config(zoo.config("shapes-clip-tiny"), "runs/clip")
    metrics = task.run()
    ```
    """

    def __init__(self, config, output_dir):
        self.config = config
        self.run_dir = RunDirectory(output_dir)
        train = config["train"]
        keras.config.set_dtype_policy(train["precision"])
        keras.utils.set_random_seed(train["seed"])
        if train["deterministic"]:
            tf.config.experimental.enable_op_determinism()
        self.strategy = get_strategy(train["strategy"], train["tpu"])
        self.per_replica_batch = per_replica_batch_size(train["global_batch_size"], self.strategy)

    # --- to implement -----------------------------------------------------
    def make_datasets(self):
        """Returns `(train_dataset, steps_per_epoch)` and prepares evaluation data."""
        raise NotImplementedError

    def evaluate(self, model):
        """Returns a JSON-serialisable dict of metrics on the held-out split."""
        raise NotImplementedError

    def export(self, model, path):
        """Writes the serving SavedModel."""
        raise NotImplementedError

    # --- shared -----------------------------------------------------------
    def build_model(self):
        return build_from_config(self.config)

    def compile_model(self, model, total_steps):
        train = self.config["train"]
        optimizer = default_optimizer(
            total_steps,
            learning_rate=train["learning_rate"],
            weight_decay=train["weight_decay"],
            warmup_fraction=train["warmup_fraction"],
        )
        if train["precision"] == "mixed_float16":
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        model.compile(
            optimizer=optimizer,
            jit_compile=train["jit_compile"],
            steps_per_execution=train["steps_per_execution"],
        )

    def callbacks(self, steps_per_epoch):
        train = self.config["train"]
        save_freq = train["checkpoint_every"] or "epoch"
        return [
            keras.callbacks.TensorBoard(self.run_dir.logs, update_freq="epoch"),
            keras.callbacks.BackupAndRestore(self.run_dir.checkpoints, save_freq=save_freq),
            keras.callbacks.TerminateOnNaN(),
        ]

    def train(self, verbose="auto"):
        """Builds the data and model, fits, and saves `model.keras`; returns the model."""
        self.run_dir.write_json("config.json", self.config)
        train_dataset, steps_per_epoch = self.make_datasets()
        epochs = self.config["train"]["epochs"]
        with self.strategy.scope():
            model = self.build_model()
            self.compile_model(model, total_steps=max(epochs * steps_per_epoch, 1))
        history = model.fit(
            train_dataset,
            epochs=epochs,
            steps_per_epoch=steps_per_epoch,
            callbacks=self.callbacks(steps_per_epoch),
            verbose=verbose,
        )
        losses = [float(v) for v in history.history.get("loss", [])]
        if losses and not all(math.isfinite(v) for v in losses):
            raise FloatingPointError(
                f"Training diverged: the loss became {losses[-1]}. The last good backup is kept in "
                f"{self.run_dir.checkpoints}; lower `train.learning_rate` and retry."
            )
        self.run_dir.write_json("history.json", {k: [float(x) for x in v] for k, v in history.history.items()})
        model.save(self.run_dir.model)
        return model

    def run(self, verbose="auto"):
        """Trains, evaluates (writing `metrics.json`) and exports; returns the metrics."""
        model = self.train(verbose=verbose)
        metrics = self.evaluate(model)
        self.run_dir.write_json("metrics.json", metrics)
        self.export(model, self.run_dir.export)
        return metrics

    def load_model(self):
        return keras.saving.load_model(self.run_dir.model)

    @staticmethod
    def describe(metrics):
        return json.dumps(metrics, indent=2, sort_keys=True)

    def path(self, name):
        return os.path.join(self.run_dir.path, name)
