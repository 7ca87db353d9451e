import json
import os

import tensorflow as tf


class RunDirectory:
    """The files of one training run, all through `tf.io.gfile` (so `gs://` works).

    Layout: `config.json` (the resolved config), `checkpoints/` (periodic
    backups for resume), `logs/` (TensorBoard), `model.keras`, `tokenizer.json`,
    `metrics.json` and `export/` (the SavedModel).

    Args:
        path: the run directory; created if missing.

    Example:

    >>> import tempfile
    >>> run = RunDirectory(tempfile.mkdtemp())
    >>> run.write_json("metrics.json", {"t2i_r1": 0.5})
    >>> run.read_json("metrics.json")
    {'t2i_r1': 0.5}
    """

    def __init__(self, path):
        self.path = str(path)
        tf.io.gfile.makedirs(self.path)
        self.checkpoints = self.file("checkpoints")
        self.logs = self.file("logs")
        self.export = self.file("export")
        self.model = self.file("model.keras")

    def file(self, name):
        return os.path.join(self.path, name)

    def write_json(self, name, data):
        tmp = self.file(name + ".tmp")
        with tf.io.gfile.GFile(tmp, "w") as f:
            json.dump(data, f, indent=2, sort_keys=True)
        tf.io.gfile.rename(tmp, self.file(name), overwrite=True)

    def read_json(self, name):
        path = self.file(name)
        if not tf.io.gfile.exists(path):
            raise ValueError(f"{path} does not exist: is {self.path!r} an mmkeras run directory?")
        with tf.io.gfile.GFile(path) as f:
            return json.load(f)
