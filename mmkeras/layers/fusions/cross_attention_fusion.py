import keras
from keras import ops

from mmkeras.layers.attention_mask import merge_attention_masks
from mmkeras.layers.fusions.fusion import Fusion, masked_mean


@keras.saving.register_keras_serializable(package="mmkeras")
class CrossAttentionFusion(Fusion):
    """Cross-attention fusion of two token streams (e.g. text attending to image).

    Both modalities' tokens are projected to `hidden_dim`. Each of `num_layers`
    layers lets the query stream (`query_modality`, default text) attend to the
    context stream (`context_modality`, default image) with pre-norm multi-head
    cross-attention (`keras.ops.dot_product_attention`, residual), then runs a
    `TransformerEncoderBlock` (self-attention + MLP) on it. With
    `co_attention=True` the context stream symmetrically attends to the query
    stream of the previous layer (ViLBERT-style co-attention) and has its own
    blocks. Key padding masks are respected everywhere. With
    `null_attention=True` every cross-attention also has a learned null key and
    value (per layer and head, always attendable): a query that fits no context
    token can attend to nothing in particular, so "the red circle at the top
    left" can find that no cell holds it instead of averaging the cells that
    half fit (PyTorch's `add_bias_kv` plays this part).

    The output is `Dense(output_dim)([q; c; presence])`, where `q` and `c` are
    the masked means of the two final streams, zeroed when their modality is
    absent. When the context is absent the cross-attention update is zeroed,
    so the query stream is its own self-representation (and vice versa with
    co-attention); without co-attention, an absent query leaves the projected
    context tokens' mean. Exactly two modalities: for more, use another fusion.

    Args:
        hidden_dim: int, width of the attention layers.
        output_dim: optional int, output width (default `hidden_dim`).
        query_modality: str, the modality whose tokens attend (default "text").
        context_modality: str, the modality attended to (default "image").
        num_layers: int, number of cross-attention layers.
        num_heads: int, attention heads; must divide `hidden_dim`.
        mlp_dim: optional int, feed-forward width (default `4 * hidden_dim`).
        co_attention: bool, let the context attend back to the query stream.
        null_attention: bool, add a learned null key and value to every
            cross-attention (see above).
        dropout: float, dropout in the attention layers and blocks.
        layer_norm_epsilon: float, epsilon of the layer norms.
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments (`presence` and `training` as for every `Fusion`):
        inputs: dict with exactly `query_modality` and `context_modality`,
            each `{"sequence", "pooled", "padding_mask"}` (a pooled-only
            modality is one token).

    Returns:
        `[B, output_dim]`.

    Example:

    >>> import numpy as np
    >>> fusion = CrossAttentionFusion(hidden_dim=8, num_heads=2, co_attention=True, null_attention=True)
    >>> inputs = {"image": {"sequence": np.ones((2, 4, 6), "float32")},
    ...           "text": {"sequence": np.ones((2, 3, 5), "float32"),
    ...                    "padding_mask": np.array([[1, 1, 0], [1, 1, 1]], bool)}}
    >>> fusion(inputs).shape
    TensorShape([2, 8])
    """

    min_modalities = 2
    max_modalities = 2

    def __init__(
        self,
        hidden_dim,
        output_dim=None,
        query_modality="text",
        context_modality="image",
        num_layers=1,
        num_heads=4,
        mlp_dim=None,
        co_attention=False,
        null_attention=False,  # a learned "nothing here" key and value
        dropout=0.0,
        layer_norm_epsilon=1e-6,
        **kwargs,
    ):
        modalities = kwargs.pop("modalities", None)
        for arg, value in (
            ("query_modality", query_modality),
            ("context_modality", context_modality),
        ):
            if not isinstance(value, str) or not value:
                raise ValueError(f"`{arg}` must be a modality name (str), got {value!r}.")
        if query_modality == context_modality:
            raise ValueError(
                f"`query_modality` and `context_modality` must differ, both are {query_modality!r}."
            )
        if modalities is not None and sorted(modalities) != sorted(
            [query_modality, context_modality]
        ):
            raise ValueError(
                f"CrossAttentionFusion fuses exactly two modalities, `query_modality`="
                f"{query_modality!r} and `context_modality`={context_modality!r}; got "
                f"`modalities`={modalities!r}. Use another fusion for more modalities."
            )
        super().__init__(modalities=[query_modality, context_modality], **kwargs)
        self.set_transformer_arguments(
            hidden_dim, num_layers, num_heads, mlp_dim, dropout, output_dim, layer_norm_epsilon
        )
        self.query_modality = query_modality
        self.context_modality = context_modality
        self.co_attention = bool(co_attention)
        self.null_attention = bool(null_attention)

    def _resolve_names(self, keys):
        extra = [k for k in keys if k not in self.modalities]
        if extra:
            raise ValueError(
                f"CrossAttentionFusion fuses exactly two modalities ({self.modalities}); "
                f"`inputs` also has {extra}. Use another fusion for more modalities."
            )
        return super()._resolve_names(keys)

    def _stream_layers(self, prefix, index):
        hidden = self.hidden_dim
        seq = (None, None, hidden)
        norm = dict(epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy)
        query_norm = keras.layers.LayerNormalization(name=f"{prefix}_query_norm_{index}", **norm)
        key_norm = keras.layers.LayerNormalization(name=f"{prefix}_key_norm_{index}", **norm)
        attention = _CrossAttention(
            self.num_heads,
            null_attention=self.null_attention,
            dtype=self.dtype_policy,
            name=f"{prefix}_cross_attention_{index}",
        )
        block = self.transformer_block(f"{prefix}_block_{index}")
        query_norm.build(seq)
        key_norm.build(seq)
        attention.build(seq, seq)
        return [query_norm, key_norm, attention, block]

    def build_fusion(self, entries):
        hidden = self.hidden_dim
        # === Layers ===
        self.projections = self.token_projections(entries)
        self.final_norms = []
        for name in entries:
            final_norm = keras.layers.LayerNormalization(
                epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name=f"{name}_final_norm"
            )
            final_norm.build((None, None, hidden))
            self.final_norms.append(final_norm)
        # Flat lists, four layers per depth: query norm, key norm, attention, block.
        self.query_layers = []
        self.context_layers = []
        for i in range(self.num_layers):
            self.query_layers.extend(self._stream_layers("query", i))
            if self.co_attention:
                self.context_layers.extend(self._stream_layers("context", i))
        self.dropout_layer = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy)
        self.output_projection = keras.layers.Dense(
            self.output_dim, dtype=self.dtype_policy, name="output_projection"
        )
        self.output_projection.build((None, 2 * hidden + 2))

    def _attend(self, layers, x, other, other_mask, other_present, training):
        query_norm, key_norm, attention, _ = layers
        update = attention(query_norm(x), key_norm(other), other_mask)
        update = ops.where(other_present[:, None, None], update, ops.zeros_like(update))
        return x + self.dropout_layer(update, training=training)

    def call(self, inputs, presence=None, training=None):
        query_view, context_view = self.modality_views(inputs, presence)
        q = self.projections[0](query_view["tokens"])
        c = self.projections[1](context_view["tokens"])
        q_mask, c_mask = query_view["token_mask"], context_view["token_mask"]
        q_present, c_present = query_view["present"], context_view["present"]
        for index in range(self.num_layers):
            layers = self.query_layers[4 * index : 4 * index + 4]
            new_q = self._attend(layers, q, c, c_mask, c_present, training)
            new_q = layers[3](new_q, padding_mask=q_mask, training=training)
            if self.co_attention:
                layers = self.context_layers[4 * index : 4 * index + 4]
                c = self._attend(layers, c, q, q_mask, q_present, training)
                c = layers[3](c, padding_mask=c_mask, training=training)
            q = new_q
        pooled = []
        for stream, mask, present, norm in (
            (q, q_mask, q_present, self.final_norms[0]),
            (c, c_mask, c_present, self.final_norms[1]),
        ):
            vector = masked_mean(norm(stream), mask)
            pooled.append(ops.where(present[:, None], vector, ops.zeros_like(vector)))
        flags = [ops.cast(p, pooled[0].dtype)[:, None] for p in (q_present, c_present)]
        return self.output_projection(ops.concatenate(pooled + flags, axis=-1))

    # === Config ===
    def get_config(self):
        config = super().get_config()
        config.pop("modalities", None)
        config.update(
            {
                "hidden_dim": self.hidden_dim,
                "output_dim": self._output_dim_arg,
                "query_modality": self.query_modality,
                "context_modality": self.context_modality,
                "num_layers": self.num_layers,
                "num_heads": self.num_heads,
                "mlp_dim": self.mlp_dim,
                "co_attention": self.co_attention,
                "null_attention": self.null_attention,
                "dropout": self.dropout,
                "layer_norm_epsilon": self.layer_norm_epsilon,
            }
        )
        return config


class _CrossAttention(keras.layers.Layer):
    """Multi-head attention of `x [B, T, D]` to `context [B, S, D]` with a key padding mask.

    Internal to `CrossAttentionFusion` (rebuilt by it, so not registered): a
    query projection, a fused key/value projection, `ops.dot_product_attention`
    and an output projection; with `null_attention`, a learned null key and
    value (zeros at first) put before the context's and never masked.
    """

    def __init__(self, num_heads, null_attention=False, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = int(num_heads)
        self.null_attention = bool(null_attention)

    def build(self, x_shape, context_shape=None, context_mask_shape=None):
        width = x_shape[-1]
        self.width, self.head_dim = width, width // self.num_heads
        dense = dict(dtype=self.dtype_policy)
        self.query = keras.layers.Dense(width, name="query", **dense)
        self.key_value = keras.layers.Dense(2 * width, name="key_value", **dense)
        self.output_dense = keras.layers.Dense(width, name="output", **dense)
        for layer in (self.query, self.key_value, self.output_dense):
            layer.build((None, None, width))
        if self.null_attention:
            self.null_key_value = self.add_weight(
                name="null_key_value", shape=(1, 1, 2, self.num_heads, self.head_dim), initializer="zeros"
            )

    def call(self, x, context, context_mask):
        batch, length = ops.shape(x)[0], ops.shape(x)[1]
        context_length = ops.shape(context)[1]
        query = ops.reshape(self.query(x), (batch, length, self.num_heads, self.head_dim))
        key_value = ops.reshape(
            self.key_value(context), (batch, context_length, 2, self.num_heads, self.head_dim)
        )
        if self.null_attention:
            null = ops.broadcast_to(
                ops.cast(self.null_key_value, key_value.dtype), (batch, 1, 2, self.num_heads, self.head_dim)
            )
            key_value = ops.concatenate([null, key_value], axis=1)
            context_mask = ops.concatenate(
                [ops.ones((batch, 1), "bool"), ops.cast(context_mask, "bool")], axis=1
            )
        attended = ops.dot_product_attention(
            query, key_value[:, :, 0], key_value[:, :, 1], mask=merge_attention_masks(context_mask)
        )
        return self.output_dense(ops.reshape(attended, (batch, length, self.width)))
