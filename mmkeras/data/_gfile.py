"""Path helpers on plain strings, for `tf.io.gfile` paths (local or `gs://`, never `os.path`)."""

import tensorflow as tf


def is_absolute(path):
    """True for `/x`, `gs://x` and other `scheme://` paths."""
    return path.startswith("/") or "://" in path


def join(directory, path):
    """`path` resolved against `directory` (absolute paths are kept as they are)."""
    path = str(path)
    if not directory or is_absolute(path):
        return path
    while path.startswith("./"):
        path = path[2:]
    return f"{str(directory).rstrip('/')}/{path}"


def dirname(path):
    """The folder of a file path ("" for a bare file name)."""
    path = str(path)
    return path.rsplit("/", 1)[0] if "/" in path else ""


def basename(path):
    """The last component of a path."""
    return str(path).rstrip("/").rsplit("/", 1)[-1]


def read_bytes(path):
    """The content of a file as bytes."""
    with tf.io.gfile.GFile(path, "rb") as f:
        return f.read()


def write_bytes(path, data):
    """Writes bytes to a file (truncating it)."""
    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(data)
