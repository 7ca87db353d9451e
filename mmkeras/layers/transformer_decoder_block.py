import types

import keras
import keras_hub

from mmkeras.validation import check_int


@keras.saving.register_keras_serializable(package="mmkeras")
class TransformerDecoderBlock(keras_hub.layers.TransformerDecoder):
    """Transformer decoder block: causal self-attention, cross-attention, MLP.

    A pre-norm `keras_hub.layers.TransformerDecoder` (whose attention is
    `keras_hub.layers.CachedMultiHeadAttention`, a `keras.layers.MultiHeadAttention`)
    that names the layers it owns: `sublayers()` returns them, so incremental
    decoding (`mmkeras.generation.decoder_steps`, with its own KV cache
    layout) computes the block's function from its weights without reading
    keras-hub's private attributes.

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

    Example:

    >>> import numpy as np
    >>> block = TransformerDecoderBlock(intermediate_dim=32, num_heads=2)
    >>> tokens, image = np.zeros((2, 4, 16), "float32"), np.zeros((2, 5, 16), "float32")
    >>> block(tokens, image).shape
    TensorShape([2, 4, 16])
    >>> block.head_dim, tuple(block.sublayers().cross_attention.key_dense.kernel.shape)
    (8, (16, 2, 8))
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
        num_heads = check_int("num_heads", num_heads, minimum=1)
        intermediate_dim = check_int("intermediate_dim", intermediate_dim, minimum=1)
        super().__init__(
            intermediate_dim=int(intermediate_dim),
            num_heads=int(num_heads),
            dropout=dropout,
            activation=activation,
            layer_norm_epsilon=layer_norm_epsilon,
            normalize_first=normalize_first,
            **kwargs,
        )

    def sublayers(self):
        """The layers of the (built) block, by role.

        Returns:
            A namespace with `self_attention` and `cross_attention` (attention
            layers: `query_dense`, `key_dense`, `value_dense`, `output_dense`
            and `key_dim` as `keras.layers.MultiHeadAttention` names them),
            `self_attention_norm`, `cross_attention_norm` and `feedforward_norm`
            (the layer norms), and `feedforward_intermediate` and
            `feedforward_output` (the MLP's two dense layers).
        """
        if not self.built:
            raise ValueError("`sublayers()` needs a built block: call it on decoder and encoder sequences first.")
        # The one place that reads the attributes `keras_hub.layers.TransformerDecoder.build` sets.
        return types.SimpleNamespace(
            self_attention=self._self_attention_layer,
            self_attention_norm=self._self_attention_layer_norm,
            cross_attention=self._cross_attention_layer,
            cross_attention_norm=self._cross_attention_layer_norm,
            feedforward_intermediate=self._feedforward_intermediate_dense,
            feedforward_output=self._feedforward_output_dense,
            feedforward_norm=self._feedforward_layer_norm,
        )

    @property
    def head_dim(self):
        """Width of one attention head (the block must be built)."""
        return self.sublayers().self_attention.key_dim
