"""What the serving-side commands share: loading an export's signature, reading files, error reasons."""

import re


def load_export(export_dir, signature):
    """Loads a SavedModel and returns one of its signatures, with clear errors.

    Args:
        export_dir: a SavedModel directory written by an `mmkeras` export.
        signature: the signature the command needs, e.g. `"caption"`.

    Raises:
        ValueError: when the directory is not a SavedModel or lacks the signature.
    """
    import tensorflow as tf
    import tensorflow_text  # noqa: F401 - registers the tokenizer's ops

    if not tf.io.gfile.exists(f"{export_dir}/saved_model.pb"):
        raise ValueError(f"{export_dir!r} is not a SavedModel directory (no saved_model.pb).")
    serving = tf.saved_model.load(export_dir)
    if signature not in serving.signatures:
        raise ValueError(
            f"{export_dir!r} has no `{signature}` signature (it has: {', '.join(sorted(serving.signatures))}); "
            "is it the right kind of export?"
        )
    return serving.signatures[signature]


def read_files(paths):
    """The bytes of each file, through `tf.io.gfile` (so `gs://` works).

    A missing path, a directory or an empty file is a `ValueError` naming the
    path (empty bytes mean "no image" to a signature, never an empty file).

    Args:
        paths: image file paths.

    Example:

    >>> import tempfile
    >>> path = tempfile.mkdtemp() + "/empty.jpg"
    >>> open(path, "wb").close()
    >>> read_files([path])
    Traceback (most recent call last):
    ...
    ValueError: image file is empty: ...empty.jpg
    """
    import tensorflow as tf

    for path in paths:
        if not tf.io.gfile.exists(path):
            raise ValueError(f"image file not found: {path}")
        if tf.io.gfile.isdir(path):
            raise ValueError(f"image file is a directory, not a file: {path}")
    data = [tf.io.gfile.GFile(path, "rb").read() for path in paths]
    for path, content in zip(paths, data):
        if not content:
            raise ValueError(f"image file is empty: {path}")
    return data


def error_reason(error):
    r"""The reason a serving signature gave for rejecting its input, as one readable line.

    TF reports a failed in-graph check as "Graph execution error:", a node
    trace and then `assertion failed: [part] [part] ...` (an eager signature
    call: `{{function_node ...}} assertion failed: ...`); this returns the
    assertion's parts joined (e.g. "ImagePreprocessor could not decode the
    image bytes at batch index 0 (empty, truncated or corrupt data, or not a
    JPEG/PNG/GIF/BMP image)"), or else the message's first informative line.

    Args:
        error: a `tf.errors.OpError` (usually `InvalidArgumentError`).

    Example:

    >>> import tensorflow as tf
    >>> error = tf.errors.InvalidArgumentError(
    ...     None, None, "Graph execution error:\n\nDetected at node A\nassertion failed: [bad bytes at] [3]")
    >>> error_reason(error)
    'bad bytes at 3'
    """
    lines = [line.strip() for line in error.message.splitlines() if line.strip()]
    for line in lines:
        if "assertion failed:" in line:
            tail = line.split("assertion failed:", 1)[1]
            parts = [p for p in re.findall(r"\[([^\[\]]*)\]", tail) if not p.startswith("Op:")]
            if parts:
                return " ".join(parts)
    noise = ("Graph execution error", "Detected at node", "<stack traces unavailable>", "[[{{")
    informative = [line for line in lines if not line.startswith(noise)]
    return (informative or lines or [type(error).__name__])[0]


def unreadable_image(path, error):
    """The `ValueError` a command raises when a signature rejects the image at `path` (see `error_reason`)."""
    return ValueError(f"cannot read {path} as an image: {error_reason(error)}")
