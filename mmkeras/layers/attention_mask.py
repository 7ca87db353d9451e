"""Mask helpers shared by the attention layers."""

from keras import ops


def merge_attention_masks(padding_mask=None, attention_mask=None):
    """Combines a key padding mask and an attention mask into one `[B, 1, T, S]` mask.

    Args:
        padding_mask: optional bool `[B, S]`, `False` for padded keys.
        attention_mask: optional bool `[B, T, S]`.

    Returns:
        A bool tensor broadcastable to `[B, heads, T, S]`, or `None`.

    Example:

    >>> import numpy as np
    >>> merge_attention_masks(np.array([[True, False]])).shape
    TensorShape([1, 1, 1, 2])
    """
    mask = None
    if padding_mask is not None:
        mask = ops.cast(padding_mask, "bool")[:, None, None, :]
    if attention_mask is not None:
        extra = ops.cast(attention_mask, "bool")[:, None, :, :]
        mask = extra if mask is None else ops.logical_and(mask, extra)
    return mask
