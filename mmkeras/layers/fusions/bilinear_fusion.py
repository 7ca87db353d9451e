import keras
from keras import ops

from mmkeras.config_fields import config_fields
from mmkeras.layers.fusions.fusion import Fusion
from mmkeras.validation import check_int
from mmkeras.validation import check_rate


@keras.saving.register_keras_serializable(package="mmkeras")
class BilinearFusion(Fusion):
    """Low-rank bilinear pooling (MFB, Yu et al. 2017; MLB-style for more than two).

    Each modality's pooled features are projected to `output_dim * factor_dim`;
    the projections are multiplied elementwise over the modalities, sum-pooled
    over the `factor_dim` factors of each output unit, then passed through a
    signed square root and L2 normalisation:

        z = sum_k prod_m (U_m x_m)[o, k];   out = l2norm(sign(z) sqrt(|z|)).

    With two modalities this is MFB (a rank-`factor_dim` bilinear form per
    output unit); with M > 2 it is the M-way multilinear product (MLB-style),
    which is a product of all modalities, not a sum of pairwise terms. An
    absent modality's factor is replaced by ones, so the product reduces to the
    present ones (with one present modality, a sum-pooled projection of it).
    The normalisation runs in float32 and the output is float32.

    Args:
        output_dim: int, width of the fused features.
        factor_dim: int, number of factors `k` summed per output unit.
        dropout: float, dropout on the product before sum pooling.
        epsilon: float, added under the signed square root for finite
            gradients at zero.
        modalities: optional list fixing the modality names and order (at
            least two).
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments: `inputs`, `presence` and `training`, as for every `Fusion`.

    Returns:
        float32 `[B, output_dim]`, unit L2 norm.

    Example:

    >>> import numpy as np
    >>> fusion = BilinearFusion(output_dim=4, factor_dim=3)
    >>> inputs = {"image": {"pooled": np.ones((2, 6), "float32")},
    ...           "text": {"pooled": np.ones((2, 5), "float32")}}
    >>> out = fusion(inputs)
    >>> out.shape, bool(np.allclose(np.linalg.norm(out, axis=-1), 1.0, atol=1e-4))
    (TensorShape([2, 4]), True)
    """

    min_modalities = 2

    def __init__(
        self, output_dim, factor_dim=5, dropout=0.0, epsilon=1e-6, modalities=None, **kwargs
    ):
        super().__init__(modalities=modalities, **kwargs)
        output_dim = check_int("output_dim", output_dim, minimum=1)
        factor_dim = check_int("factor_dim", factor_dim, minimum=1)
        dropout = check_rate("dropout", dropout)
        if not float(epsilon) > 0.0:
            raise ValueError(f"`epsilon` must be > 0, got {epsilon!r}.")
        self.output_dim = int(output_dim)
        self.factor_dim = int(factor_dim)
        self.dropout = float(dropout)
        self.epsilon = float(epsilon)

    def build_fusion(self, entries):
        # === Layers ===
        self.projections = []
        for name, entry in entries.items():
            dense = keras.layers.Dense(
                self.output_dim * self.factor_dim,
                dtype=self.dtype_policy,
                name=f"{name}_projection",
            )
            dense.build((None, self.pooled_width(entry)))
            self.projections.append(dense)
        # The product is kept in float32 (it can be large), so its dropout is too.
        self.dropout_layer = keras.layers.Dropout(self.dropout, dtype="float32")

    def call(self, inputs, presence=None, training=None):
        views = self.modality_views(inputs, presence)
        product = None
        for view, projection in zip(views, self.projections):
            factor = ops.cast(projection(view["pooled"]), "float32")
            factor = ops.where(view["present"][:, None], factor, ops.ones_like(factor))
            product = factor if product is None else product * factor
        product = self.dropout_layer(product, training=training)
        z = ops.sum(ops.reshape(product, (-1, self.output_dim, self.factor_dim)), axis=-1)
        z = ops.sign(z) * (ops.sqrt(ops.abs(z) + self.epsilon) - self.epsilon**0.5)
        norm = ops.sqrt(ops.maximum(ops.sum(ops.square(z), axis=-1, keepdims=True), 1e-12))
        return z / norm

    # === Config ===
    def get_config(self):
        return {**super().get_config(), **config_fields(self, "output_dim factor_dim dropout epsilon")}
