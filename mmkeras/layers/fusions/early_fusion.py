import keras
from keras import ops

from mmkeras.config_fields import config_fields
from mmkeras.layers.fusions.fusion import Fusion, masked_mean
from mmkeras.layers.modality_type_embedding import ModalityTypeEmbedding


@keras.saving.register_keras_serializable(package="mmkeras")
class EarlyFusion(Fusion):
    """Early fusion: one joint Transformer over the tokens of every modality.

    Each modality's tokens (its sequence, or its pooled vector as one token) are
    projected to `hidden_dim`, tagged with a `ModalityTypeEmbedding` row, and
    concatenated after a learned fusion `[CLS]` token. Padding masks and
    presence masks together form the key mask, so no token attends to padding
    or to an absent modality. The output is the final (layer-normed) `[CLS]`
    state, or with `pooling="mean"` the mean of every final token that is
    neither padding nor an absent modality's (the `[CLS]` included), optionally
    projected to `output_dim`. The mean reads what the last block computed at
    every token, where the `[CLS]` state gathers it through one more
    attention. Positions are not re-embedded: the towers' sequences already
    carry their own position information.

    Args:
        hidden_dim: int, width of the joint Transformer.
        num_layers: int, number of `TransformerEncoderBlock`s.
        num_heads: int, attention heads; must divide `hidden_dim`.
        mlp_dim: optional int, feed-forward width (default `4 * hidden_dim`).
        dropout: float, dropout inside the blocks.
        output_dim: optional int; adds a final linear projection to this width.
        layer_norm_epsilon: float, epsilon of the layer norms.
        pooling: "cls" (the `[CLS]` token's final state) or "mean" (the masked
            mean of the final tokens).
        modalities: optional list fixing the modality names and order.
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments: `inputs`, `presence` and `training`, as for every `Fusion`.

    Returns:
        `[B, output_dim or hidden_dim]`.

    Example:

    >>> import numpy as np
    >>> fusion = EarlyFusion(hidden_dim=8, num_layers=1, num_heads=2)
    >>> inputs = {"image": {"sequence": np.ones((2, 4, 6), "float32")},
    ...           "numeric": {"pooled": np.ones((2, 3), "float32")}}
    >>> fusion(inputs, presence={"numeric": np.array([1.0, 0.0], "float32")}).shape
    TensorShape([2, 8])
    """

    def __init__(self, hidden_dim, num_layers=2, num_heads=4, mlp_dim=None, dropout=0.0, output_dim=None,
                 layer_norm_epsilon=1e-6, pooling="cls", modalities=None, **kwargs):
        super().__init__(modalities=modalities, **kwargs)
        if pooling not in ("cls", "mean"):
            raise ValueError(f"EarlyFusion `pooling` must be 'cls' or 'mean', got {pooling!r}.")
        self.pooling = pooling
        self.set_transformer_arguments(
            hidden_dim, num_layers, num_heads, mlp_dim, dropout, output_dim, layer_norm_epsilon
        )

    def build_fusion(self, entries):
        hidden = self.hidden_dim
        # === Layers ===
        self.projections = self.token_projections(entries)
        self.type_embedding = ModalityTypeEmbedding(
            len(entries), dtype=self.dtype_policy, name="modality_type_embedding"
        )
        self.type_embedding.build((None, None, hidden))
        self.cls_token = self.add_weight(
            shape=(1, 1, hidden),
            initializer=keras.initializers.RandomNormal(stddev=0.02),
            name="cls_token",
        )
        self.blocks = [self.transformer_block(f"block_{i}") for i in range(self.num_layers)]
        self.final_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name="final_norm"
        )
        self.final_norm.build((None, hidden))
        self.output_projection = None
        if self._output_dim_arg is not None:
            self.output_projection = keras.layers.Dense(
                self.output_dim, dtype=self.dtype_policy, name="output_projection"
            )
            self.output_projection.build((None, hidden))

    def call(self, inputs, presence=None, training=None):
        views = self.modality_views(inputs, presence)
        batch = ops.shape(views[0]["tokens"])[0]
        cls = ops.broadcast_to(
            ops.cast(self.cls_token, self.compute_dtype), (batch, 1, self.hidden_dim)
        )
        tokens, masks = [cls], [ops.ones((batch, 1), "bool")]
        for index, (view, projection) in enumerate(zip(views, self.projections)):
            tokens.append(self.type_embedding(projection(view["tokens"]), modality_index=index))
            masks.append(view["token_mask"])
        x = ops.concatenate(tokens, axis=1)
        mask = ops.concatenate(masks, axis=1)
        for block in self.blocks:
            x = block(x, padding_mask=mask, training=training)
        x = self.final_norm(x[:, 0] if self.pooling == "cls" else masked_mean(x, mask))
        if self.output_projection is not None:
            x = self.output_projection(x)
        return x

    # === Config ===
    def get_config(self):
        return {**super().get_config(), **config_fields(
            self, "hidden_dim num_layers num_heads mlp_dim dropout layer_norm_epsilon pooling",
            output_dim="_output_dim_arg")}
