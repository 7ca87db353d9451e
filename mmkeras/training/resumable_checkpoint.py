import math
import os

import keras
import tensorflow as tf


class ResumableCheckpoint(keras.callbacks.Callback):
    """Periodic, atomic checkpoints of everything a run needs to resume exactly.

    Each checkpoint holds the model's variables (including the RNG state of its
    seed generators), the optimizer's variables (moments, iteration count,
    loss-scale state) and a `step` counter, the number of batches consumed,
    from which the caller repositions its data pipeline. Writes go through
    `tf.train.CheckpointManager`: files are written under temporary names and
    the index is updated last, so a kill mid-write never leaves a checkpoint
    that is picked up half-written; the last `keep` checkpoints are kept.

    At restore, a checkpoint that fails to load (corrupt or partial files) is
    reported and the previous one is tried, down to a fresh start; the
    temporary `ckpt-N_temp/` folders of a write that was killed are removed.

    A checkpoint is never written after a non-finite loss, so the last one on
    disk is always a good one.

    Multi-worker training: every worker must save (saving reads variables
    through collectives), but only the chief's checkpoints are kept. Give the
    other workers `write_directory` (a scratch directory): they restore from
    the shared `directory` and write their copies to `write_directory`, which
    is emptied after each save.

    With `steps_per_execution`, Keras reports each chunk of steps as a whole,
    including a last chunk cut short by the end of the data; set `stop_at` to
    the count at which the data given to `fit` ends so that the count (and the
    checkpoint numbers) never pass it.

    Args:
        directory: where checkpoints go and are restored from (local or `gs://`).
        every_n_steps: save every this many batches (0: only at epoch ends).
        keep: how many checkpoints to keep.
        write_directory: optional, where this process writes its checkpoints
            if not `directory` (non-chief workers); deleted after each save.

    Example:

    >>> import tempfile, numpy as np, keras
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> model.compile("sgd", "mse")
    >>> checkpoint = ResumableCheckpoint(tempfile.mkdtemp(), every_n_steps=2)
    >>> checkpoint.restore(model)  # nothing saved yet: a fresh start
    0
    >>> _ = model.fit(np.ones((8, 2)), np.ones((8, 1)), batch_size=2, verbose=0,
    ...               callbacks=[checkpoint])
    >>> checkpoint.restore(model)  # batches consumed by the last checkpoint
    4
    """

    def __init__(self, directory, every_n_steps=0, keep=3, write_directory=None):
        super().__init__()
        if int(every_n_steps) < 0:
            raise ValueError(f"`every_n_steps` must be >= 0, got {every_n_steps!r}.")
        if int(keep) < 1:
            raise ValueError(f"`keep` must be >= 1, got {keep!r}.")
        self.directory = str(directory)
        self.write_directory = None if write_directory is None else str(write_directory)
        if self.write_directory == self.directory:
            self.write_directory = None
        self.every_n_steps = int(every_n_steps)
        self.keep = int(keep)
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self._manager = None
        self._write_manager = None
        self.saw_non_finite_loss = False
        self._epoch_start = 0
        # The count at which the data given to `fit` ends (None: unknown). Keras reports a last,
        # partial `steps_per_execution` chunk as a whole one; the count must not pass the data.
        self.stop_at = None

    def _checkpoint_manager(self, model):
        if self._manager is None:
            if model.optimizer is not None and not model.optimizer.built:
                model.optimizer.build(model.trainable_variables)
            checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer, step=self.step)
            self._manager = tf.train.CheckpointManager(checkpoint, self.directory, max_to_keep=self.keep)
            if self.write_directory is not None:
                self._write_manager = tf.train.CheckpointManager(
                    checkpoint, self.write_directory, max_to_keep=1
                )
        return self._manager

    def restore(self, model):
        """Restores the newest loadable checkpoint into `model`; returns the step (0: none)."""
        manager = self._checkpoint_manager(model)
        if self.write_directory is None:  # the process that owns `directory`
            self._remove_partial_writes()
        for path in reversed(manager.checkpoints):
            try:
                manager.checkpoint.restore(path).assert_existing_objects_matched()
                return int(self.step.numpy())
            except Exception as error:  # noqa: BLE001 - any read failure means "unusable checkpoint"
                print(
                    f"mmkeras: checkpoint {path} is corrupt or partial ({type(error).__name__}: "
                    f"{str(error).splitlines()[0][:200]}); falling back to the previous one."
                )
        self.step.assign(0)
        return 0

    def _remove_partial_writes(self):
        """Removes the temporary folders (`ckpt-N_temp/`) of checkpoint writes that never finished."""
        for path in tf.io.gfile.glob(os.path.join(self.directory, "*_temp")):
            print(f"mmkeras: removing {path}, left by a checkpoint write that did not finish.")
            if tf.io.gfile.isdir(path):
                tf.io.gfile.rmtree(path)
            else:
                tf.io.gfile.remove(path)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = int(self.step.numpy())

    def on_train_batch_end(self, batch, logs=None):
        # `batch` is the index of the last batch run (several per call with
        # `steps_per_execution`), so the step count stays exact.
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.saw_non_finite_loss = True
            return
        previous, count = int(self.step.numpy()), self._epoch_start + batch + 1
        if self.stop_at is not None:
            count = min(count, self.stop_at)
        self.step.assign(count)
        if self.every_n_steps and previous // self.every_n_steps < count // self.every_n_steps:
            self.save()

    def on_epoch_end(self, epoch, logs=None):
        if not self.saw_non_finite_loss and not self.every_n_steps:
            self.save()

    def save(self):
        """Writes a checkpoint now (atomic; keeps the last `keep`)."""
        manager = self._checkpoint_manager(self.model)
        if self._write_manager is None:
            manager.save(checkpoint_number=int(self.step.numpy()))
            return
        # A non-chief worker: take part in the save, keep nothing.
        self._write_manager.save(checkpoint_number=int(self.step.numpy()))
        if tf.io.gfile.exists(self.write_directory):
            tf.io.gfile.rmtree(self.write_directory)
