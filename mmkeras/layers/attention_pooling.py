import keras
from keras import ops

from mmkeras.config_fields import config_fields
from mmkeras.layers.attention_mask import merge_attention_masks
from mmkeras.validation import check_int


@keras.saving.register_keras_serializable(package="mmkeras")
class AttentionPooling(keras.layers.Layer):
    """Pools a token sequence with learned queries (multi-head attention pooling).

    Args:
        num_heads: int, number of attention heads; must divide the width.
        num_queries: int, number of learned queries. With 1 the output is
            `[B, D]`, otherwise `[B, num_queries, D]`.
        layer_norm_epsilon: float, epsilon of the input layer norm.
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        tokens: `[B, T, D]`.
        padding_mask: optional bool `[B, T]`; padded tokens get no weight.

    Example:

    >>> import numpy as np
    >>> AttentionPooling(num_heads=2)(np.ones((3, 7, 8), "float32")).shape
    TensorShape([3, 8])
    """

    def __init__(self, num_heads=1, num_queries=1, layer_norm_epsilon=1e-6, **kwargs):
        super().__init__(**kwargs)
        num_heads = check_int("num_heads", num_heads, minimum=1)
        num_queries = check_int("num_queries", num_queries, minimum=1)
        self.num_heads = int(num_heads)
        self.num_queries = int(num_queries)
        self.layer_norm_epsilon = float(layer_norm_epsilon)

    def build(self, input_shape):
        width = input_shape[-1]
        if width % self.num_heads:
            raise ValueError(f"Width {width} is not divisible by `num_heads`={self.num_heads}.")
        self.width, self.head_dim = width, width // self.num_heads
        # === Layers ===
        self.norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name="norm"
        )
        self.key_value = keras.layers.Dense(2 * width, dtype=self.dtype_policy, name="key_value")
        self.output_dense = keras.layers.Dense(width, dtype=self.dtype_policy, name="output")
        self.norm.build(input_shape)
        self.key_value.build(input_shape)
        self.output_dense.build(input_shape)
        self.query = self.add_weight(
            shape=(self.num_queries, width),
            initializer=keras.initializers.RandomNormal(stddev=0.02),
            name="query",
        )

    def call(self, tokens, padding_mask=None):
        batch, length = ops.shape(tokens)[0], ops.shape(tokens)[1]
        kv = ops.reshape(
            self.key_value(self.norm(tokens)), (batch, length, 2, self.num_heads, self.head_dim)
        )
        query = ops.cast(self.query, kv.dtype)
        query = ops.broadcast_to(
            ops.reshape(query, (1, self.num_queries, self.num_heads, self.head_dim)),
            (batch, self.num_queries, self.num_heads, self.head_dim),
        )
        pooled = ops.dot_product_attention(
            query, kv[:, :, 0], kv[:, :, 1], mask=merge_attention_masks(padding_mask)
        )
        pooled = self.output_dense(ops.reshape(pooled, (batch, self.num_queries, self.width)))
        return pooled[:, 0] if self.num_queries == 1 else pooled

    def compute_output_shape(self, input_shape):
        if self.num_queries == 1:
            return (input_shape[0], input_shape[-1])
        return (input_shape[0], self.num_queries, input_shape[-1])

    # === Config ===
    def get_config(self):
        return {**super().get_config(), **config_fields(self, "num_heads num_queries layer_norm_epsilon")}
