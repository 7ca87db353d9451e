import keras
from keras import ops

from mmkeras.layers.fusions.fusion import Fusion, masked_softmax, presence_matrix
from mmkeras.validation import check_int

_GATES = ("softmax", "sigmoid")


@keras.saving.register_keras_serializable(package="mmkeras")
class GatedFusion(Fusion):
    """Gated multimodal unit (GMU, Arevalo et al. 2017), for any number of modalities.

    `h_m = tanh(W_m x_m)`; gates `z = gate(W_z [x_1; ...; x_M; presence])` give
    one weight per modality and output unit (`[B, M, output_dim]`); the output is
    `sum_m z_m * h_m`. With `gate="softmax"` the gates of the present modalities
    sum to one per unit (for two modalities this is the paper's
    `z * h_1 + (1 - z) * h_2`); with `"sigmoid"` each gate is independent. An
    absent modality gets gate 0 and its features enter the gate network as
    zeros, so it has no influence; with nothing present the output is 0.

    Args:
        output_dim: int, width of the fused features.
        gate: `"softmax"` or `"sigmoid"`.
        modalities: optional list fixing the modality names and order (at
            least two).
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments: `inputs` and `presence`, as for every `Fusion`.

    Returns:
        `[B, output_dim]`.

    Example:

    >>> import numpy as np
    >>> fusion = GatedFusion(output_dim=4)
    >>> inputs = {"image": {"pooled": np.ones((2, 6), "float32")},
    ...           "text": {"pooled": np.ones((2, 5), "float32")}}
    >>> fusion(inputs).shape
    TensorShape([2, 4])
    """

    min_modalities = 2

    def __init__(self, output_dim, gate="softmax", modalities=None, **kwargs):
        super().__init__(modalities=modalities, **kwargs)
        output_dim = check_int("output_dim", output_dim, minimum=1)
        if gate not in _GATES:
            raise ValueError(f"`gate` must be one of {list(_GATES)}, got {gate!r}.")
        self.output_dim = int(output_dim)
        self.gate = gate

    def build_fusion(self, entries):
        # === Layers ===
        self.projections = []
        for name, entry in entries.items():
            dense = keras.layers.Dense(
                self.output_dim,
                activation="tanh",
                dtype=self.dtype_policy,
                name=f"{name}_projection",
            )
            dense.build((None, self.pooled_width(entry)))
            self.projections.append(dense)
        gate_width = sum(self.pooled_width(e) for e in entries.values()) + len(entries)
        self.gate_dense = keras.layers.Dense(
            len(entries) * self.output_dim, dtype=self.dtype_policy, name="gate"
        )
        self.gate_dense.build((None, gate_width))

    def call(self, inputs, presence=None, training=None):
        views = self.modality_views(inputs, presence)
        count = len(views)
        hidden = ops.stack([p(v["pooled"]) for v, p in zip(views, self.projections)], axis=1)
        flags = presence_matrix(views, self.compute_dtype)
        gate_in = ops.concatenate([v["pooled"] for v in views] + [flags], axis=-1)
        gate_logits = ops.reshape(self.gate_dense(gate_in), (-1, count, self.output_dim))
        present = ops.cast(flags, "bool")[:, :, None]
        if self.gate == "softmax":
            gates = masked_softmax(gate_logits, present, axis=1)
        else:
            gates = ops.where(present, ops.sigmoid(ops.cast(gate_logits, "float32")), 0.0)
        return ops.sum(ops.cast(gates, hidden.dtype) * hidden, axis=1)

    # === Config ===
    def get_config(self):
        config = super().get_config()
        config.update({"output_dim": self.output_dim, "gate": self.gate})
        return config
