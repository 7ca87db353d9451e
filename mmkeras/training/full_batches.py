"""Inference in batches of one fixed size, so that a traced (or XLA-compiled) function runs once."""

import numpy as np
import tensorflow as tf


def pad_to_full_batches(inputs, batch_size):
    """Pads every array of `inputs` to a multiple of `batch_size` rows; returns `(padded, count)`.

    A `tf.function` is traced again, and an XLA program compiled again, for
    each new input shape: a smaller last batch costs a second trace of the
    whole model (seconds on CPU, more for an XLA beam search). Padding the
    last batch with copies of the last row, and dropping the padding's
    outputs (`outputs[:count]`), keeps one shape for every batch.

    Args:
        inputs: an array or tensor, or a (nested) dict / list / tuple of them,
            all with the same number of rows (at least one).
        batch_size: int >= 1.

    Returns:
        `(padded, count)`: the same structure as NumPy arrays with
        `ceil(count / batch_size) * batch_size` rows, and the original row
        count.

    Example:

    >>> padded, count = pad_to_full_batches({"x": np.arange(5)}, 4)
    >>> padded["x"].tolist(), count
    ([0, 1, 2, 3, 4, 4, 4, 4], 5)
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"`batch_size` must be an int >= 1, got {batch_size!r}.")
    arrays = tf.nest.map_structure(np.asarray, inputs)
    counts = {len(a) if a.ndim else None for a in tf.nest.flatten(arrays)}
    if len(counts) != 1 or None in counts or 0 in counts:
        raise ValueError(
            f"`inputs` must be arrays with the same number of rows (at least one); got row counts {sorted(counts, key=str)}."
        )
    count = counts.pop()
    pad = -count % batch_size

    def padded(array):
        return np.concatenate([array, np.repeat(array[-1:], pad, axis=0)]) if pad else array

    return tf.nest.map_structure(padded, arrays), count


def predict_full_batches(model, inputs, batch_size):
    """`model.predict(inputs, batch_size)` with every batch full (see `pad_to_full_batches`).

    Args:
        model: a Keras model.
        inputs: what `model.predict` takes as arrays (an array or a dict of them).
        batch_size: int >= 1, rows per batch.

    Returns:
        The predictions for the `count` rows of `inputs`, as NumPy arrays.

    Example:

    >>> import keras
    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    >>> predict_full_batches(model, np.ones((5, 3), "float32"), batch_size=4).shape
    (5, 2)
    """
    padded, count = pad_to_full_batches(inputs, batch_size)
    outputs = model.predict(padded, batch_size=batch_size, verbose=0)
    return tf.nest.map_structure(lambda y: np.asarray(y)[:count], outputs)
