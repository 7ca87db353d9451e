import keras
from keras import ops

from mmkeras.config_fields import config_fields
from mmkeras.layers.fusions.fusion import Fusion, presence_matrix
from mmkeras.validation import check_int


@keras.saving.register_keras_serializable(package="mmkeras")
class SumFusion(Fusion):
    """Sum of projections: `act(sum_m W_m x_m + b)` over the present modalities.

    Each modality's pooled features get their own bias-free projection `W_m`;
    one shared bias `b` is added after the sum. With `normalize=True` the sum is
    divided by the number of present modalities (a mean), so the scale does not
    depend on how many are missing.

    Args:
        output_dim: int, width of the fused features.
        activation: activation applied after the sum (`None` for linear).
        normalize: bool, divide the sum by the number of present modalities.
        modalities: optional list fixing the modality names and order.
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments: `inputs` and `presence`, as for every `Fusion`.

    Returns:
        `[B, output_dim]`.

    Example:

    >>> import numpy as np
    >>> fusion = SumFusion(output_dim=4, normalize=True)
    >>> inputs = {"image": {"pooled": np.ones((2, 6), "float32")},
    ...           "text": {"pooled": np.ones((2, 5), "float32")}}
    >>> fusion(inputs).shape
    TensorShape([2, 4])
    """

    def __init__(self, output_dim, activation="relu", normalize=False, modalities=None, **kwargs):
        super().__init__(modalities=modalities, **kwargs)
        output_dim = check_int("output_dim", output_dim, minimum=1)
        self.output_dim = int(output_dim)
        self.activation = activation
        self.normalize = bool(normalize)
        self._activation_fn = keras.activations.get(activation)

    def build_fusion(self, entries):
        # === Layers ===
        self.projections = []
        for name, entry in entries.items():
            dense = keras.layers.Dense(
                self.output_dim, use_bias=False, dtype=self.dtype_policy, name=f"{name}_projection"
            )
            dense.build((None, self.pooled_width(entry)))
            self.projections.append(dense)
        self.bias = self.add_weight(shape=(self.output_dim,), initializer="zeros", name="bias")

    def call(self, inputs, presence=None, training=None):
        views = self.modality_views(inputs, presence)
        total = 0
        for view, projection in zip(views, self.projections):
            projected = projection(view["pooled"])
            total = total + ops.where(
                view["present"][:, None], projected, ops.zeros_like(projected)
            )
        if self.normalize:
            count = ops.sum(presence_matrix(views, total.dtype), axis=1, keepdims=True)
            total = total / ops.maximum(count, ops.cast(1.0, total.dtype))
        return self._activation_fn(total + ops.cast(self.bias, total.dtype))

    # === Config ===
    def get_config(self):
        return {**super().get_config(), **config_fields(self, "output_dim activation normalize")}
