import keras
import keras_hub
from keras import ops


@keras.saving.register_keras_serializable(package="mmkeras")
class TransformerDecoderBlock(keras_hub.layers.TransformerDecoder):
    """Transformer decoder block: causal self-attention, cross-attention, MLP, KV cache.

    A pre-norm `keras_hub.layers.TransformerDecoder` (whose attention is
    `keras_hub.layers.CachedMultiHeadAttention`), plus the two cache helpers that
    incremental decoding needs: an empty self-attention cache that grows one
    token at a time, and a cross-attention cache computed once per image.

    Args:
        intermediate_dim: int, hidden width of the feed-forward network.
        num_heads: int, number of attention heads.
        dropout: float, dropout rate.
        activation: activation of the feed-forward network.
        layer_norm_epsilon: float, epsilon of the layer norms.
        normalize_first: bool, pre-norm (default) or post-norm residuals.
        **kwargs: other `keras_hub.layers.TransformerDecoder` arguments.

    Call arguments (see `keras_hub.layers.TransformerDecoder`):
        decoder_sequence: `[B, T, D]` token states.
        encoder_sequence: `[B, S, D]` image (context) tokens.
        decoder_padding_mask: optional bool `[B, T]`.
        encoder_padding_mask: optional bool `[B, S]`.
        self_attention_cache / self_attention_cache_update_index: the growing
            cache `[B, 2, max_length, heads, head_dim]` and the index to write.
        cross_attention_cache: the per-image cache from `cross_attention_cache_for`.

    Example:

    >>> import numpy as np
    >>> block = TransformerDecoderBlock(intermediate_dim=32, num_heads=2)
    >>> tokens, image = np.zeros((2, 4, 16), "float32"), np.zeros((2, 5, 16), "float32")
    >>> block(tokens, image).shape
    TensorShape([2, 4, 16])
    >>> cross = block.cross_attention_cache_for(image)
    >>> cache = block.empty_self_attention_cache(batch_size=2, max_length=4)
    >>> out, cache, cross = block(tokens[:, :1], image, self_attention_cache=cache,
    ...     self_attention_cache_update_index=0, cross_attention_cache=cross)
    >>> out.shape
    TensorShape([2, 1, 16])
    """

    def __init__(
        self,
        intermediate_dim,
        num_heads,
        dropout=0.0,
        activation="gelu",
        layer_norm_epsilon=1e-6,
        normalize_first=True,
        **kwargs,
    ):
        if int(num_heads) < 1:
            raise ValueError(f"`num_heads` must be a positive int, got {num_heads!r}.")
        if int(intermediate_dim) < 1:
            raise ValueError(f"`intermediate_dim` must be a positive int, got {intermediate_dim!r}.")
        super().__init__(
            intermediate_dim=int(intermediate_dim),
            num_heads=int(num_heads),
            dropout=dropout,
            activation=activation,
            layer_norm_epsilon=layer_norm_epsilon,
            normalize_first=normalize_first,
            **kwargs,
        )

    @property
    def head_dim(self):
        return self._self_attention_layer._key_dim

    def empty_self_attention_cache(self, batch_size, max_length):
        """Zeros of shape `[batch_size, 2, max_length, num_heads, head_dim]`."""
        return ops.zeros(
            (batch_size, 2, max_length, self.num_heads, self.head_dim), dtype=self.compute_dtype
        )

    def cross_attention_cache_for(self, encoder_sequence):
        """Projects the image tokens to cross-attention keys and values, once.

        Args:
            encoder_sequence: `[B, S, D]` context tokens.

        Returns:
            `[B, 2, S, num_heads, head_dim]`, to pass as `cross_attention_cache`
            with `cross_attention_cache_update_index=None` at every step.
        """
        attention = self._cross_attention_layer
        return ops.stack(
            [attention._key_dense(encoder_sequence), attention._value_dense(encoder_sequence)],
            axis=1,
        )
