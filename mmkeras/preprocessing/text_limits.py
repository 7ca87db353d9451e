"""What the tokenizers share around their own algorithms: argument and file checks, the framing of the ids."""

import contextlib
import os

import tensorflow as tf


def check_min_int(field, value, minimum, why=None):
    """Refuses a tokenizer argument that is not an int (bools excluded) of at least `minimum`.

    Args:
        field: the argument's name, for the message.
        value: the argument.
        minimum: the smallest value allowed.
        why: optional reason for the minimum, put in brackets after it.

    Raises:
        ValueError: naming the field, the minimum and the value.

    Example:

    >>> check_min_int("max_text_bytes", 3, 4)
    Traceback (most recent call last):
    ...
    ValueError: `max_text_bytes` must be an int of at least 4; got 3.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        reason = f" ({why})" if why else ""
        raise ValueError(f"`{field}` must be an int of at least {minimum}{reason}; got {value!r}.")


def read_tokenizer_file(path, binary=False):
    """The content of a tokenizer file: UTF-8 text, or bytes where `binary`.

    Args:
        path: the file (str or path-like).
        binary: bool, read bytes instead of text.

    Returns:
        A str, or bytes where `binary`.

    Raises:
        ValueError: the file is not there.

    Example:

    >>> read_tokenizer_file("no_vocab.txt")
    Traceback (most recent call last):
    ...
    ValueError: Tokenizer file not found: no_vocab.txt.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"Tokenizer file not found: {path}.")
    with open(path, "rb") if binary else open(path, encoding="utf-8") as f:
        return f.read()


@contextlib.contextmanager
def errors_named(source):
    """A context in which a `ValueError` is raised again with `source: ` before its message.

    Args:
        source: what the values come from, e.g. the tokenizer file.

    Example:

    >>> with errors_named("vocab.txt"):
    ...     raise ValueError("`vocabulary` holds 'a' twice.")
    Traceback (most recent call last):
    ...
    ValueError: vocab.txt: `vocabulary` holds 'a' twice.
    """
    try:
        yield
    except ValueError as error:
        raise ValueError(f"{source}: {error}") from None


def pad_ids(ids, pad_id, length):
    """Ragged `[N, None]` ids as a `[N, length]` tensor: cut to `length`, padded with `pad_id`.

    Args:
        ids: a `tf.RaggedTensor` of token ids, one row a text.
        pad_id: the id after the end of a shorter row.
        length: the sequence length.

    Returns:
        An int tensor of shape `[N, length]`.

    Example:

    >>> pad_ids(tf.ragged.constant([[5, 6, 7], [5]]), 0, 2).numpy().tolist()
    [[5, 6], [5, 0]]
    """
    return tf.ensure_shape(ids.to_tensor(pad_id, shape=[None, length]), [None, length])


def frame_ids(ids, batch, start_id, end_id, pad_id, length):
    """Ragged ids framed by the start and end ids, as a `[batch, length]` tensor padded with `pad_id`.

    The first `length - 2` ids of a row are kept, so that the end id always stands in the sequence.

    Args:
        ids: a `tf.RaggedTensor` of token ids, one row a text.
        batch: the number of rows.
        start_id: the id before each row.
        end_id: the id after each row.
        pad_id: the id after the end id.
        length: the sequence length.

    Returns:
        An int tensor of shape `[batch, length]`.

    Example:

    >>> frame_ids(tf.ragged.constant([[5, 6, 7], [5]]), 2, 1, 2, 0, 4).numpy().tolist()
    [[1, 5, 6, 2], [1, 5, 2, 0]]
    """
    ids = tf.concat([tf.fill([batch, 1], start_id), ids[:, : length - 2], tf.fill([batch, 1], end_id)], axis=1)
    return pad_ids(ids, pad_id, length)
