import keras
from keras import ops

from mmkeras.config_fields import config_fields
from mmkeras.layers.attention_mask import merge_attention_masks
from mmkeras.validation import check_int
from mmkeras.validation import check_rate


@keras.saving.register_keras_serializable(package="mmkeras")
class TransformerEncoderBlock(keras.layers.Layer):
    """Pre-norm Transformer encoder block with fused query/key/value projection.

    `x + MHA(LN(x))` then `x + MLP(LN(x))`. The query, key and value projections
    are one matrix multiply, which keeps the block fast on CPU, GPU and TPU; the
    attention itself is `keras.ops.dot_product_attention`.

    Args:
        num_heads: int, number of attention heads; must divide the width.
        mlp_dim: int, hidden width of the feed-forward network.
        dropout: float, dropout on attention output and MLP output.
        activation: activation of the MLP: "gelu" (tanh approximation),
            "gelu_exact" (the erf form, Hugging Face's "gelu"), "quick_gelu"
            (`x * sigmoid(1.702 x)`, OpenAI CLIP), or any Keras activation name.
        layer_norm_epsilon: float, epsilon of the layer norms.
        causal: bool, apply a causal mask (for autoregressive text towers).
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        x: float tensor `[B, T, D]`.
        padding_mask: optional bool tensor `[B, T]`; `False` marks padding keys
            that no token may attend to.
        attention_mask: optional bool tensor `[B, T, T]`.
        query_positions: optional int tensor `[B]`. When given, only the
            output at that position of each sequence is computed, `[B, 1, D]`
            (it equals the full block's output there): keys and values still
            come from every token, but the query, attention output and MLP
            run for one token. A tower whose pooled vector is one token's
            output uses it in its last block (`pooled_only=True`), which saves
            most of that block's work.

    Example:

    >>> import numpy as np
    >>> block = TransformerEncoderBlock(num_heads=2, mlp_dim=32)
    >>> block(np.zeros((2, 5, 16), "float32")).shape
    TensorShape([2, 5, 16])
    >>> block(np.zeros((2, 5, 16), "float32"), query_positions=np.array([0, 4])).shape
    TensorShape([2, 1, 16])
    """

    def __init__(
        self,
        num_heads,
        mlp_dim,
        dropout=0.0,
        activation="gelu",
        layer_norm_epsilon=1e-6,
        causal=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        num_heads = check_int("num_heads", num_heads, minimum=1)
        mlp_dim = check_int("mlp_dim", mlp_dim, minimum=1)
        dropout = check_rate("dropout", dropout)
        self.num_heads = int(num_heads)
        self.mlp_dim = int(mlp_dim)
        self.dropout = float(dropout)
        self.activation = activation
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.causal = bool(causal)
        self.supports_masking = True

    def build(self, input_shape):
        width = input_shape[-1]
        if width % self.num_heads:
            raise ValueError(
                f"The input width {width} is not divisible by `num_heads`={self.num_heads}."
            )
        self.width = width
        self.head_dim = width // self.num_heads

        # === Layers ===
        dense = dict(dtype=self.dtype_policy, kernel_initializer="glorot_uniform")
        self.attention_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name="attention_norm"
        )
        self.qkv_dense = keras.layers.Dense(3 * width, name="qkv", **dense)
        self.output_dense = keras.layers.Dense(width, name="attention_output", **dense)
        self.mlp_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name="mlp_norm"
        )
        self.mlp_in = keras.layers.Dense(self.mlp_dim, name="mlp_in", **dense)
        self.mlp_out = keras.layers.Dense(width, name="mlp_out", **dense)
        self.dropout_layer = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy)
        self._activation_fn = _activation(self.activation)

        self.attention_norm.build(input_shape)
        self.qkv_dense.build(input_shape)
        self.output_dense.build(input_shape)
        self.mlp_norm.build(input_shape)
        self.mlp_in.build(input_shape)
        self.mlp_out.build(tuple(input_shape[:-1]) + (self.mlp_dim,))

    def call(self, x, padding_mask=None, attention_mask=None, query_positions=None, training=None):
        if query_positions is not None:
            return self._call_at(x, query_positions, padding_mask, attention_mask, training)
        batch, length = ops.shape(x)[0], ops.shape(x)[1]
        h = self.attention_norm(x)
        qkv = ops.reshape(self.qkv_dense(h), (batch, length, 3, self.num_heads, self.head_dim))
        query, key, value = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
        mask = merge_attention_masks(padding_mask, attention_mask)
        attended = ops.dot_product_attention(query, key, value, mask=mask, is_causal=self.causal)
        return self._finish(x, ops.reshape(attended, (batch, length, self.width)), training)

    def _finish(self, x, attended, training):
        """Attention output projection and residual, then the MLP and residual."""
        x = x + self.dropout_layer(self.output_dense(attended), training=training)
        h = self._activation_fn(self.mlp_in(self.mlp_norm(x)))
        return x + self.dropout_layer(self.mlp_out(h), training=training)

    def _call_at(self, x, positions, padding_mask, attention_mask, training):
        """The block's output at one position per sequence, `[B, 1, D]`."""
        batch, length = ops.shape(x)[0], ops.shape(x)[1]
        positions = ops.cast(ops.reshape(positions, (-1,)), "int32")
        h = self.attention_norm(x)
        kernel = ops.cast(self.qkv_dense.kernel, h.dtype)
        bias = ops.cast(self.qkv_dense.bias, h.dtype)
        width = self.width
        key_value = ops.matmul(h, kernel[:, width:]) + bias[width:]
        key_value = ops.reshape(key_value, (batch, length, 2, self.num_heads, self.head_dim))
        x_at = ops.take_along_axis(x, positions[:, None, None], axis=1)
        h_at = ops.take_along_axis(h, positions[:, None, None], axis=1)
        query = ops.matmul(h_at, kernel[:, :width]) + bias[:width]
        query = ops.reshape(query, (batch, 1, self.num_heads, self.head_dim))
        # The mask row of the chosen query: padding, causality, explicit mask.
        row = None
        if self.causal:
            row = ops.arange(length, dtype="int32")[None, :] <= positions[:, None]
        if attention_mask is not None:
            given = ops.take_along_axis(
                ops.cast(attention_mask, "bool"), positions[:, None, None], axis=1
            )[:, 0]
            row = given if row is None else ops.logical_and(row, given)
        mask = merge_attention_masks(padding_mask, None if row is None else row[:, None, :])
        attended = ops.dot_product_attention(query, key_value[:, :, 0], key_value[:, :, 1], mask=mask)
        return self._finish(x_at, ops.reshape(attended, (batch, 1, width)), training)

    def compute_mask(self, x, mask=None):
        return mask

    def compute_output_shape(self, input_shape):
        return input_shape

    # === Config ===
    def get_config(self):
        return {**super().get_config(), **config_fields(
            self, "num_heads mlp_dim dropout activation layer_norm_epsilon causal")}


def _activation(name):
    if name == "quick_gelu":
        return lambda x: x * ops.sigmoid(1.702 * x)
    if name == "gelu":
        return lambda x: keras.activations.gelu(x, approximate=True)
    if name == "gelu_exact":
        return lambda x: keras.activations.gelu(x, approximate=False)
    return keras.activations.get(name)
