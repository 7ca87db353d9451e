import keras
from keras import ops


@keras.saving.register_keras_serializable(package="mmkeras")
class RepeatToBatch(keras.layers.Layer):
    """Repeats each row of `tokens [B, ...]` K times to match `like [B * K, ...]`.

    This is how one image encoding serves several texts in a training step:
    the image tower runs on `B` images and its outputs are repeated for the
    `K` captions, questions or claims of each image, which sit side by side in
    the text batch (rows `i * K .. i * K + K - 1` belong to image `i`). With
    `K = 1` the tokens pass through unchanged, so a model built with this
    layer still takes ordinary paired batches.

    The output keeps the dtype of `tokens` under any dtype policy.

    Args:
        **kwargs: standard `keras.layers.Layer` arguments (`name`, `dtype`).

    Call arguments:
        tokens: `[B, ...]`, one row per image.
        like: `[B * K, ...]`, any tensor whose leading dimension is the
            wanted number of rows.

    Returns:
        `[B * K, ...]`, `tokens` with each row repeated K times.

    Raises:
        ValueError: when the rows of `like` are not a whole multiple of the
            rows of `tokens` (checked whenever both are known statically).

    Example:

    >>> import numpy as np
    >>> layer = RepeatToBatch()
    >>> out = layer(np.array([[1.0], [2.0]], "float32"), np.zeros((6, 3), "int32"))
    >>> out[:, 0].numpy().tolist()
    [1.0, 1.0, 1.0, 2.0, 2.0, 2.0]
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("autocast", False)  # a repeat keeps its input's dtype
        super().__init__(**kwargs)

    def call(self, tokens, like):
        rows, wanted = ops.shape(tokens)[0], ops.shape(like)[0]
        if isinstance(rows, int) and isinstance(wanted, int):
            if rows == wanted:
                return tokens
            if rows == 0 or wanted % rows:
                raise ValueError(
                    f"`{self.name}`: the batch must hold K rows per image ([images * K, ...]); got "
                    f"{wanted} rows for {rows} images."
                )
        return ops.repeat(tokens, wanted // rows, axis=0)

    def compute_output_shape(self, tokens_shape, like_shape):
        return (like_shape[0],) + tuple(tokens_shape[1:])
