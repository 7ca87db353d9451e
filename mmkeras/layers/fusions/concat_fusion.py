import keras
from keras import ops

from mmkeras.layers.fusions.fusion import Fusion, presence_matrix
from mmkeras.validation import check_int
from mmkeras.validation import check_ints
from mmkeras.validation import check_rate


@keras.saving.register_keras_serializable(package="mmkeras")
class ConcatFusion(Fusion):
    """Feature-level fusion: concatenate the pooled features, then an MLP.

    Absent modalities contribute zeros, and (with `append_presence`) the `[B, M]`
    presence flags are appended so the MLP can tell "absent" from "all-zero
    features". A modality given only as a sequence is mean-pooled over its
    unpadded tokens.

    Args:
        output_dim: int, width of the fused features.
        hidden_dims: list of ints, hidden layers of the MLP before the output
            layer (default none: one linear layer + activation).
        activation: activation of every MLP layer, the output layer included.
        dropout: float, dropout before each MLP layer.
        append_presence: bool, append the presence flags to the concatenation.
        modalities: optional list fixing the modality names and order.
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments: `inputs`, `presence` and `training`, as for every `Fusion`.

    Returns:
        `[B, output_dim]`.

    Example:

    >>> import numpy as np
    >>> fusion = ConcatFusion(output_dim=4, hidden_dims=[8])
    >>> inputs = {"image": {"pooled": np.ones((2, 6), "float32")},
    ...           "text": {"pooled": np.ones((2, 5), "float32")}}
    >>> fusion(inputs, presence={"text": np.array([1.0, 0.0], "float32")}).shape
    TensorShape([2, 4])
    """

    def __init__(self, output_dim, hidden_dims=(), activation="relu", dropout=0.0, append_presence=True,
                 modalities=None, **kwargs):
        super().__init__(modalities=modalities, **kwargs)
        output_dim = check_int("output_dim", output_dim, minimum=1)
        hidden_dims = list(check_ints("hidden_dims", hidden_dims or [], minimum=1))
        dropout = check_rate("dropout", dropout)
        self.output_dim = int(output_dim)
        self.hidden_dims = hidden_dims
        self.activation = activation
        self.dropout = float(dropout)
        self.append_presence = bool(append_presence)

    def build_fusion(self, entries):
        width = sum(self.pooled_width(e) for e in entries.values())
        width += len(entries) if self.append_presence else 0
        # === Layers ===
        self.dropout_layer = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy)
        self.mlp = []
        for i, units in enumerate(self.hidden_dims + [self.output_dim]):
            name = f"hidden_{i}" if i < len(self.hidden_dims) else "output"
            dense = keras.layers.Dense(
                units, activation=self.activation, dtype=self.dtype_policy, name=name
            )
            dense.build((None, width))
            self.mlp.append(dense)
            width = units

    def call(self, inputs, presence=None, training=None):
        views = self.modality_views(inputs, presence)
        parts = [v["pooled"] for v in views]
        if self.append_presence:
            parts.append(presence_matrix(views, self.compute_dtype))
        x = ops.concatenate(parts, axis=-1)
        for dense in self.mlp:
            x = dense(self.dropout_layer(x, training=training))
        return x

    # === Config ===
    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "output_dim": self.output_dim,
                "hidden_dims": list(self.hidden_dims),
                "activation": self.activation,
                "dropout": self.dropout,
                "append_presence": self.append_presence,
            }
        )
        return config
