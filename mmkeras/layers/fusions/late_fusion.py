import keras
from keras import ops

from mmkeras.config_fields import config_fields
from mmkeras.layers.fusions.fusion import _NEG, Fusion, presence_matrix
from mmkeras.validation import check_int
from mmkeras.validation import check_rate

_COMBINES = ("mean", "learned", "product")
_ACTIVATIONS = ("softmax", "sigmoid")


@keras.saving.register_keras_serializable(package="mmkeras")
class LateFusion(Fusion):
    """Late fusion: a classifier head per modality, predictions combined.

    Every modality's pooled features go through its own head (a linear layer,
    or an MLP with `hidden_dim`), giving per-modality logits. They are combined
    over the modalities present in each example, so an absent modality simply
    drops out:

    - `"mean"`: the mean of the present modalities' probabilities;
    - `"learned"`: a weighted mean, weights `softmax(w)` over learned scalars
      `w_m`, renormalised over the present modalities;
    - `"product"`: a product of experts, `p ∝ prod_m p_m` over the present
      modalities (the sum of their log-probabilities, renormalised).

    With `activation="softmax"` classes are exclusive; with `"sigmoid"` each
    class is an independent binary label and the combination is per class. The
    output is logits, `log p` up to a constant, so `softmax` (or `sigmoid`) of
    the output is the combined probability and any `from_logits=True` Keras
    loss applies; `return_probabilities=True` returns the probabilities instead.
    An example with no modality present gets zero logits (uniform). The
    combination runs in float32.

    Args:
        num_classes: int, number of classes (labels for sigmoid).
        combine: one of `"mean"`, `"learned"`, `"product"`.
        activation: `"softmax"` or `"sigmoid"`.
        return_probabilities: bool, return probabilities instead of logits.
        hidden_dim: optional int, hidden width of every head.
        head_activation: activation of the heads' hidden layer.
        dropout: float, dropout before the heads' output layer.
        modalities: optional list fixing the modality names and order.
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments: `inputs`, `presence` and `training`, as for every `Fusion`.

    Returns:
        float32 `[B, num_classes]`.

    Example:

    >>> import numpy as np
    >>> fusion = LateFusion(num_classes=3, combine="product")
    >>> inputs = {"image": {"pooled": np.ones((2, 6), "float32")},
    ...           "text": {"pooled": np.ones((2, 5), "float32")}}
    >>> logits = fusion(inputs, presence={"image": np.array([1.0, 0.0], "float32")})
    >>> logits.shape
    TensorShape([2, 3])
    """

    def __init__(
        self,
        num_classes,
        combine="mean",
        activation="softmax",
        return_probabilities=False,
        hidden_dim=None,
        head_activation="relu",
        dropout=0.0,
        modalities=None,
        **kwargs,
    ):
        super().__init__(modalities=modalities, **kwargs)
        num_classes = check_int("num_classes", num_classes, minimum=1)
        if combine not in _COMBINES:
            raise ValueError(f"`combine` must be one of {list(_COMBINES)}, got {combine!r}.")
        if activation not in _ACTIVATIONS:
            raise ValueError(
                f"`activation` must be one of {list(_ACTIVATIONS)}, got {activation!r}."
            )
        hidden_dim = check_int("hidden_dim", hidden_dim, minimum=1, allow_none=True)
        dropout = check_rate("dropout", dropout)
        self.num_classes = int(num_classes)
        self.output_dim = self.num_classes
        self.combine = combine
        self.activation = activation
        self.return_probabilities = bool(return_probabilities)
        self.hidden_dim = None if hidden_dim is None else int(hidden_dim)
        self.head_activation = head_activation
        self.dropout = float(dropout)

    def build_fusion(self, entries):
        # === Layers ===
        self.dropout_layer = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy)
        self.hidden_layers, self.heads = [], []
        for name, entry in entries.items():
            width = self.pooled_width(entry)
            if self.hidden_dim is not None:
                hidden = keras.layers.Dense(
                    self.hidden_dim,
                    activation=self.head_activation,
                    dtype=self.dtype_policy,
                    name=f"{name}_hidden",
                )
                hidden.build((None, width))
                self.hidden_layers.append(hidden)
                width = self.hidden_dim
            head = keras.layers.Dense(
                self.num_classes, dtype=self.dtype_policy, name=f"{name}_head"
            )
            head.build((None, width))
            self.heads.append(head)
        self.modality_logits = None
        if self.combine == "learned":
            self.modality_logits = self.add_weight(
                shape=(len(entries),), initializer="zeros", name="modality_logits"
            )

    def modality_logits_for(self, inputs, training=None):
        """Per-modality logits `[B, M, num_classes]` (float32), ignoring presence."""
        views = self.modality_views(inputs)
        return self._head_logits(views, training)

    def _head_logits(self, views, training):
        logits = []
        for i, view in enumerate(views):
            x = view["pooled"]
            if self.hidden_layers:
                x = self.hidden_layers[i](x)
            logits.append(
                ops.cast(self.heads[i](self.dropout_layer(x, training=training)), "float32")
            )
        return ops.stack(logits, axis=1)

    def call(self, inputs, presence=None, training=None):
        views = self.modality_views(inputs, presence)
        logits = self._head_logits(views, training)  # [B, M, C]
        present = ops.cast(presence_matrix(views, "float32"), "bool")  # [B, M]
        any_present = ops.any(present, axis=1, keepdims=True)  # [B, 1]
        if self.combine == "product":
            if self.activation == "softmax":
                terms = ops.log_softmax(logits, axis=-1)
            else:
                terms = logits  # product of Bernoulli experts: sum of log-odds
            combined = ops.sum(ops.where(present[..., None], terms, 0.0), axis=1)
        else:
            scores = ops.zeros_like(logits[:, :, 0])
            if self.combine == "learned":
                scores = scores + ops.cast(self.modality_logits, "float32")[None, :]
            log_weights = ops.log_softmax(ops.where(present, scores, _NEG), axis=1)
            log_weights = ops.where(present, log_weights, _NEG)[..., None]  # [B, M, 1]
            if self.activation == "softmax":
                combined = ops.logsumexp(log_weights + ops.log_softmax(logits, axis=-1), axis=1)
            else:
                log_p = ops.logsumexp(log_weights + ops.log_sigmoid(logits), axis=1)
                log_q = ops.logsumexp(log_weights + ops.log_sigmoid(-logits), axis=1)
                combined = log_p - log_q
        combined = ops.where(any_present, combined, 0.0)
        if self.return_probabilities:
            if self.activation == "softmax":
                return ops.softmax(combined, axis=-1)
            return ops.sigmoid(combined)
        return combined

    # === Config ===
    def get_config(self):
        return {**super().get_config(), **config_fields(
            self, "num_classes combine activation return_probabilities hidden_dim head_activation dropout")}
