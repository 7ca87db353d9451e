import contextlib
import json
import os
import socket

import tensorflow as tf

# Held by the process that trains in a run directory: `{"pid": ..., "host": ...}`.
LOCK_FILE = "train.lock"


class RunDirectory:
    """The files of one training run, all through `tf.io.gfile` (so `gs://` works).

    Layout: `config.json` (the resolved config), `checkpoints/` (periodic
    backups for resume), `logs/` (TensorBoard), `model.keras`, `tokenizer.json`,
    `history.json`, `metrics.json`, `export/` (the SavedModel) and, while a
    process trains, `train.lock` (`lock`).

    Files are replaced atomically: each is written under a temporary name in
    the directory and renamed into place, so a failed write (a full disk)
    leaves the previous file intact and raises an `OSError` naming the file.

    Args:
        path: the run directory.
        create: create it if missing (else it must exist).

    Raises:
        ValueError: `path` cannot be a run directory (it is a file, or cannot
            be created), or it does not exist and `create` is false.

    Example:

    >>> import tempfile
    >>> run = RunDirectory(tempfile.mkdtemp())
    >>> run.write_json("metrics.json", {"t2i_r1": 0.5})
    >>> run.read_json("metrics.json")
    {'t2i_r1': 0.5}
    >>> with run.lock():  # one trainer at a time
    ...     pass
    """

    def __init__(self, path, create=True):
        self.path = str(path)
        if tf.io.gfile.exists(self.path) and not tf.io.gfile.isdir(self.path):
            raise ValueError(f"The run directory {self.path!r} is a file, not a directory.")
        if not tf.io.gfile.exists(self.path):
            if not create:
                raise ValueError(f"{self.path!r} does not exist: it is not an mmkeras run directory.")
            try:
                tf.io.gfile.makedirs(self.path)
            except (OSError, tf.errors.OpError) as error:
                raise ValueError(f"The run directory {self.path!r} cannot be created: {_reason(error)}.") from None
        self.checkpoints = self.file("checkpoints")
        self.logs = self.file("logs")
        self.export = self.file("export")
        self.model = self.file("model.keras")

    def file(self, name):
        return os.path.join(self.path, name)

    def write_json(self, name, data):
        """Writes `data` as JSON to the file `name`, atomically."""

        def write(tmp):
            with tf.io.gfile.GFile(tmp, "w") as f:
                json.dump(data, f, indent=2, sort_keys=True)

        self._replace(name, write, name + ".tmp")

    def write_text(self, name, text):
        """Writes the string `text` (UTF-8) to the file `name`, atomically."""

        def write(tmp):
            with tf.io.gfile.GFile(tmp, "w") as f:
                f.write(text)

        self._replace(name, write, name + ".tmp")

    def save_model(self, model, name="model.keras"):
        """Saves `model` to the file `name` (a `.keras` file), atomically."""
        self._replace(name, model.save, name[: -len(".keras")] + ".tmp.keras")

    def save_weights(self, model, name):
        """Saves `model`'s weights to the file `name` (a `.weights.h5` file), atomically."""
        self._replace(name, model.save_weights, name[: -len(".weights.h5")] + ".tmp.weights.h5")

    def _replace(self, name, write, tmp_name):
        """Calls `write(tmp)` on a temporary file beside `name`, then renames it to `name`."""
        path, tmp = self.file(name), self.file(tmp_name)
        try:
            write(tmp)
            tf.io.gfile.rename(tmp, path, overwrite=True)
        except BaseException as error:
            with contextlib.suppress(OSError, tf.errors.OpError):
                if tf.io.gfile.exists(tmp):
                    tf.io.gfile.remove(tmp)
            if isinstance(error, (OSError, tf.errors.OpError)):
                raise OSError(f"Could not write {path} (any previous file is kept): {_reason(error)}") from error
            raise

    def read_json(self, name):
        path = self.file(name)
        if not tf.io.gfile.exists(path):
            raise ValueError(f"{path} does not exist: is {self.path!r} an mmkeras run directory?")
        with tf.io.gfile.GFile(path) as f:
            return json.load(f)

    @contextlib.contextmanager
    def lock(self):
        """Holds the run directory for one process (a context manager); a second holder fails at once.

        The lock file `train.lock` is created exclusively and names the
        holder's process id and host. A lock left by a process that is gone
        (on this host) is taken over. On `gs://` it is created if absent
        (no atomic creation there).

        Raises:
            ValueError: another process holds the run (naming its process id
                and host), or the directory cannot be written to.
        """
        path = self.file(LOCK_FILE)
        owner = {"pid": os.getpid(), "host": socket.gethostname()}
        for _ in range(2):  # a second try after taking over a stale lock
            holder = self._create_lock(path, owner)
            if holder is None:
                break
            if holder.get("host") != owner["host"] or _alive(holder.get("pid")):
                who = f"process {holder['pid']} on {holder['host']}" if holder else "another process"
                raise ValueError(
                    f"The run directory {self.path!r} is in use by {who} (lock file {path}): wait for it "
                    "to finish, or use another `--output` (remove the lock file only if that process is gone)."
                )
            print(f"mmkeras: taking over {path}: process {holder.get('pid')} is gone.")
            with contextlib.suppress(OSError, tf.errors.OpError):
                tf.io.gfile.remove(path)
        else:
            raise ValueError(f"The run directory {self.path!r} is being taken over by another process.")
        try:
            yield
        finally:
            with contextlib.suppress(OSError, tf.errors.OpError):
                if self._read_lock(path) == owner:
                    tf.io.gfile.remove(path)

    def _create_lock(self, path, owner):
        """Creates the lock file holding `owner`; returns None, or the holder if it exists already."""
        text = json.dumps(owner).encode("utf-8")
        try:
            if "://" in path:
                if tf.io.gfile.exists(path):
                    return self._read_lock(path)
                with tf.io.gfile.GFile(path, "wb") as f:
                    f.write(text)
                return None
            descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return self._read_lock(path)
        except (OSError, tf.errors.OpError) as error:
            raise ValueError(f"Cannot write to the run directory {self.path!r}: {_reason(error)}.") from None
        with os.fdopen(descriptor, "wb") as f:
            f.write(text)
        return None

    @staticmethod
    def _read_lock(path):
        """The holder recorded in a lock file (`{}` if it is gone or unreadable, e.g. half-written)."""
        try:
            with tf.io.gfile.GFile(path) as f:
                holder = json.load(f)
            return holder if isinstance(holder, dict) and {"pid", "host"} <= set(holder) else {}
        except (OSError, ValueError, tf.errors.OpError):
            return {}


def _alive(pid):
    """Whether the process `pid` runs on this host."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def _reason(error):
    """The first line of an error's message, without TensorFlow's op prefix."""
    text = getattr(error, "message", None) or str(error) or type(error).__name__
    return text.splitlines()[0]
