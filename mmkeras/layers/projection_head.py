import keras
from keras import ops

from mmkeras.config_fields import config_fields
from mmkeras.validation import check_int


@keras.saving.register_keras_serializable(package="mmkeras")
class ProjectionHead(keras.layers.Layer):
    """Projects pooled features into a shared embedding space.

    A linear projection (or a one-hidden-layer MLP when `hidden_dim` is set),
    optionally L2-normalised. The normalisation runs in float32 so that
    embeddings stay unit-norm under `mixed_bfloat16`.

    Args:
        output_dim: int, embedding width.
        hidden_dim: optional int; adds a hidden layer with `activation`.
        activation: activation of the hidden layer.
        dropout: float, dropout before the last projection.
        normalize: bool, L2-normalise the output (float32 output).
        use_bias: bool, bias in the projections.
        **kwargs: standard `keras.layers.Layer` arguments.

    Example:

    >>> import numpy as np
    >>> head = ProjectionHead(output_dim=4)
    >>> out = head(np.ones((2, 8), "float32"))
    >>> out.shape, bool(np.allclose(np.linalg.norm(out, axis=-1), 1.0, atol=1e-5))
    (TensorShape([2, 4]), True)
    """

    def __init__(
        self,
        output_dim,
        hidden_dim=None,
        activation="gelu",
        dropout=0.0,
        normalize=True,
        use_bias=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        output_dim = check_int("output_dim", output_dim, minimum=1)
        hidden_dim = check_int("hidden_dim", hidden_dim, minimum=1, allow_none=True)
        self.output_dim = int(output_dim)
        self.hidden_dim = None if hidden_dim is None else int(hidden_dim)
        self.activation = activation
        self.dropout = float(dropout)
        self.normalize = bool(normalize)
        self.use_bias = bool(use_bias)

        # === Layers ===
        self.hidden = None
        if self.hidden_dim is not None:
            self.hidden = keras.layers.Dense(
                self.hidden_dim, activation=activation, dtype=self.dtype_policy, name="hidden"
            )
        self.dropout_layer = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy)
        self.projection = keras.layers.Dense(
            self.output_dim, use_bias=self.use_bias, dtype=self.dtype_policy, name="projection"
        )

    def build(self, input_shape):
        if self.hidden is not None:
            self.hidden.build(input_shape)
            input_shape = tuple(input_shape[:-1]) + (self.hidden_dim,)
        self.projection.build(input_shape)

    def call(self, features, training=None):
        x = features if self.hidden is None else self.hidden(features)
        x = self.projection(self.dropout_layer(x, training=training))
        if self.normalize:
            x = ops.cast(x, "float32")
            x = x / ops.sqrt(ops.maximum(ops.sum(ops.square(x), axis=-1, keepdims=True), 1e-12))
        return x

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.output_dim,)

    # === Config ===
    def get_config(self):
        return {**super().get_config(), **config_fields(
            self, "output_dim hidden_dim activation dropout normalize use_bias")}
