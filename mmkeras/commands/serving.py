"""What the serving-side commands share: loading an export's signature, reading files."""


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
    """The bytes of each file, through `tf.io.gfile` (so `gs://` works); a missing file is a ValueError."""
    import tensorflow as tf

    for path in paths:
        if not tf.io.gfile.exists(path):
            raise ValueError(f"image file not found: {path}")
    return [tf.io.gfile.GFile(path, "rb").read() for path in paths]
