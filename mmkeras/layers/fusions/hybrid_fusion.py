import keras
from keras import ops

from mmkeras.layers.fusions.fusion import Fusion, presence_matrix


@keras.saving.register_keras_serializable(package="mmkeras")
class HybridFusion(Fusion):
    """Multi-layer (hybrid) fusion: modality streams meet at every depth via bottleneck tokens.

    What it implements (attention bottlenecks, after Nagrani et al. 2021): every
    modality keeps its own token stream (projected to `hidden_dim`) and its own
    `TransformerEncoderBlock` per depth, so within a depth the streams are
    processed separately (late-fusion-like); `num_bottleneck_tokens` shared
    learned tokens are appended to every stream, and after each depth the
    bottleneck tokens are averaged over the present modalities, so information
    crosses modalities at every depth (early-fusion-like) but only through the
    narrow bottleneck. The mean of the bottleneck tokens after each depth is a
    per-depth fused vector; these are layer-normed, concatenated and projected
    to `output_dim`, so the output combines fusion at all depths.

    The depths are those of this fusion stack, on top of the towers' final
    sequences; it does not tap the towers' intermediate layers. An absent
    modality's stream is excluded from the bottleneck average; with nothing
    present the bottleneck keeps its learned value.

    Args:
        hidden_dim: int, width of the streams.
        output_dim: optional int, output width (default `hidden_dim`).
        num_layers: int, number of fusion depths.
        num_heads: int, attention heads; must divide `hidden_dim`.
        mlp_dim: optional int, feed-forward width (default `4 * hidden_dim`).
        num_bottleneck_tokens: int, number of shared bottleneck tokens.
        dropout: float, dropout inside the blocks.
        layer_norm_epsilon: float, epsilon of the layer norms.
        modalities: optional list fixing the modality names and order.
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments (`presence` and `training` as for every `Fusion`):
        inputs: dict `{modality: {"sequence", "pooled", "padding_mask"}}` (a
            pooled-only modality is one token).

    Returns:
        `[B, output_dim]`.

    Example:

    >>> import numpy as np
    >>> fusion = HybridFusion(hidden_dim=8, num_layers=2, num_heads=2)
    >>> inputs = {"image": {"sequence": np.ones((2, 4, 6), "float32")},
    ...           "text": {"sequence": np.ones((2, 3, 5), "float32")}}
    >>> fusion(inputs).shape
    TensorShape([2, 8])
    """

    def __init__(
        self,
        hidden_dim,
        output_dim=None,
        num_layers=2,
        num_heads=4,
        mlp_dim=None,
        num_bottleneck_tokens=4,
        dropout=0.0,
        layer_norm_epsilon=1e-6,
        modalities=None,
        **kwargs,
    ):
        super().__init__(modalities=modalities, **kwargs)
        self.set_transformer_arguments(
            hidden_dim, num_layers, num_heads, mlp_dim, dropout, output_dim, layer_norm_epsilon,
            num_bottleneck_tokens=num_bottleneck_tokens,
        )

    def build_fusion(self, entries):
        hidden = self.hidden_dim
        # === Layers ===
        self.projections = self.token_projections(entries)
        self.bottleneck = self.add_weight(
            shape=(1, self.num_bottleneck_tokens, hidden),
            initializer=keras.initializers.RandomNormal(stddev=0.02),
            name="bottleneck",
        )
        # Flat list: the block of modality i at depth d is blocks[d * M + i].
        self.blocks, self.depth_norms = [], []
        for depth in range(self.num_layers):
            for name in entries:
                self.blocks.append(self.transformer_block(f"{name}_block_{depth}"))
            norm = keras.layers.LayerNormalization(
                epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name=f"depth_norm_{depth}"
            )
            norm.build((None, hidden))
            self.depth_norms.append(norm)
        self.output_projection = keras.layers.Dense(
            self.output_dim, dtype=self.dtype_policy, name="output_projection"
        )
        self.output_projection.build((None, self.num_layers * hidden))

    def call(self, inputs, presence=None, training=None):
        views = self.modality_views(inputs, presence)
        count = len(views)
        streams = [p(v["tokens"]) for v, p in zip(views, self.projections)]
        batch = ops.shape(streams[0])[0]
        size = self.num_bottleneck_tokens
        bottleneck = ops.broadcast_to(
            ops.cast(self.bottleneck, self.compute_dtype), (batch, size, self.hidden_dim)
        )
        bottleneck_mask = ops.ones((batch, size), "bool")
        flags = presence_matrix(views, self.compute_dtype)
        num_present = ops.sum(flags, axis=1)[:, None, None]
        any_present = ops.greater(num_present, 0)
        depth_vectors = []
        for depth in range(self.num_layers):
            total = ops.zeros_like(bottleneck)
            for i, view in enumerate(views):
                length = ops.shape(streams[i])[1]
                x = ops.concatenate([streams[i], bottleneck], axis=1)
                mask = ops.concatenate([view["token_mask"], bottleneck_mask], axis=1)
                x = self.blocks[depth * count + i](x, padding_mask=mask, training=training)
                streams[i] = x[:, :length]
                total = total + ops.where(
                    view["present"][:, None, None], x[:, length:], ops.zeros_like(bottleneck)
                )
            averaged = total / ops.maximum(num_present, ops.cast(1.0, total.dtype))
            bottleneck = ops.where(any_present, averaged, bottleneck)
            depth_vectors.append(self.depth_norms[depth](ops.mean(bottleneck, axis=1)))
        return self.output_projection(ops.concatenate(depth_vectors, axis=-1))

    # === Config ===
    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_dim": self.hidden_dim,
                "output_dim": self._output_dim_arg,
                "num_layers": self.num_layers,
                "num_heads": self.num_heads,
                "mlp_dim": self.mlp_dim,
                "num_bottleneck_tokens": self.num_bottleneck_tokens,
                "dropout": self.dropout,
                "layer_norm_epsilon": self.layer_norm_epsilon,
            }
        )
        return config
