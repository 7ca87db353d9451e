"""The base of the image-text contrastive losses (`ClipLoss`, `SigLipLoss`)."""

from collections.abc import Mapping

import keras
from keras import ops


def _as_float32_embeddings(image_embeddings, text_embeddings):
    """Casts both embedding matrices to float32 and checks their shapes."""
    image_embeddings = ops.cast(ops.convert_to_tensor(image_embeddings), "float32")
    text_embeddings = ops.cast(ops.convert_to_tensor(text_embeddings), "float32")
    for name, value in (("image_embeddings", image_embeddings), ("text_embeddings", text_embeddings)):
        if len(value.shape) != 2:
            raise ValueError(f"`{name}` must have shape [batch, dim], got shape {tuple(value.shape)}.")
    image_shape, text_shape = tuple(image_embeddings.shape), tuple(text_embeddings.shape)
    for axis, what in ((0, "batch size"), (1, "embedding dim")):
        a, b = image_shape[axis], text_shape[axis]
        if a is not None and b is not None and a != b:
            raise ValueError(
                f"`image_embeddings` and `text_embeddings` must have the same {what}, got "
                f"shapes {image_shape} and {text_shape}."
            )
    return image_embeddings, text_embeddings


def _as_float32_scalar(value, name):
    if value is None:
        raise ValueError(f"`{name}` is required (a scalar, e.g. from `LogitScale`), got None.")
    value = ops.cast(ops.convert_to_tensor(value), "float32")
    if len(value.shape) > 1 or (len(value.shape) == 1 and value.shape[0] != 1):
        raise ValueError(f"`{name}` must be a scalar, got shape {tuple(value.shape)}.")
    return ops.reshape(value, ())


def _unpack_y_pred(y_pred, loss_name):
    if not isinstance(y_pred, Mapping):
        raise ValueError(
            f"{loss_name}: `y_pred` must be a dict with keys 'image_embeddings', "
            f"'text_embeddings', 'logit_scale' and optionally 'logit_bias', got {type(y_pred).__name__}."
        )
    missing = [k for k in ("image_embeddings", "text_embeddings", "logit_scale") if k not in y_pred]
    if missing:
        raise ValueError(
            f"{loss_name}: `y_pred` is missing the keys {missing}; it has {sorted(y_pred)}."
        )
    return (
        y_pred["image_embeddings"],
        y_pred["text_embeddings"],
        y_pred["logit_scale"],
        y_pred.get("logit_bias"),
    )


class ContrastiveLoss(keras.losses.Loss):
    """An image-text contrastive loss: its call forms, float32 inputs and the replica switch.

    Subclasses define `batch_loss(image_embeddings, text_embeddings,
    logit_scale, logit_bias)` on the local batch (float32 `[B, D]` embeddings
    of matching shapes, a float32 scalar scale, the bias as given or None)
    and read `gather_across_replicas` to take their negatives from every
    replica or from the local batch. Every call form returns that value:

    - `loss(image_embeddings, text_embeddings, logit_scale[, logit_bias])`;
    - `loss(y_pred)` or the `keras.losses.Loss` form `loss(y_true, y_pred)`
      with `y_pred` a dict holding `"image_embeddings"`, `"text_embeddings"`,
      `"logit_scale"` and optionally `"logit_bias"` (`y_true` is ignored and
      `sample_weight` is not supported).

    Args:
        gather_across_replicas: bool, negatives from all replicas.
        name: name of the loss.

    Example:

    >>> import numpy as np
    >>> from keras import ops
    >>> class MeanSimilarity(ContrastiveLoss):
    ...     def batch_loss(self, image_embeddings, text_embeddings, logit_scale, logit_bias):
    ...         return -logit_scale * ops.mean(ops.sum(image_embeddings * text_embeddings, axis=1))
    >>> x = np.eye(3, dtype="float32")
    >>> float(MeanSimilarity(name="mean_similarity")({"image_embeddings": x, "text_embeddings": x,
    ...                                               "logit_scale": 2.0}))
    -2.0
    """

    def __init__(self, gather_across_replicas=True, name=None):
        super().__init__(name=name, reduction="sum_over_batch_size", dtype="float32")
        if not isinstance(gather_across_replicas, bool):
            raise ValueError(
                f"`gather_across_replicas` must be a bool, got {gather_across_replicas!r}."
            )
        self.gather_across_replicas = gather_across_replicas

    def __call__(self, image_embeddings, text_embeddings=None, logit_scale=None, logit_bias=None):
        """Routes the call forms (see the class docstring) to `call`."""
        if isinstance(image_embeddings, Mapping):
            if text_embeddings is not None or logit_scale is not None or logit_bias is not None:
                raise ValueError(
                    f"{self.name}: when the first argument is a `y_pred` dict, pass nothing else."
                )
            y_pred = image_embeddings
        elif isinstance(text_embeddings, Mapping):
            # Keras form: loss(y_true, y_pred, sample_weight). y_true is ignored.
            if logit_scale is not None:
                raise ValueError(
                    f"{self.name}: `sample_weight` is not supported by contrastive losses, got "
                    f"{logit_scale!r}."
                )
            if logit_bias is not None:
                raise ValueError(f"{self.name}: too many arguments for the (y_true, y_pred) form.")
            y_pred = text_embeddings
        else:
            if text_embeddings is None:
                raise ValueError(f"{self.name}: `text_embeddings` is required, got None.")
            y_pred = {
                "image_embeddings": image_embeddings,
                "text_embeddings": text_embeddings,
                "logit_scale": logit_scale,
            }
            if logit_bias is not None:
                y_pred["logit_bias"] = logit_bias
        with keras.name_scope(self.name):
            return self.call(None, y_pred)

    def call(self, y_true, y_pred):
        del y_true
        image_embeddings, text_embeddings, logit_scale, logit_bias = _unpack_y_pred(y_pred, self.name)
        image_embeddings, text_embeddings = _as_float32_embeddings(image_embeddings, text_embeddings)
        logit_scale = _as_float32_scalar(logit_scale, "logit_scale")
        return self.batch_loss(image_embeddings, text_embeddings, logit_scale, logit_bias)

    def batch_loss(self, image_embeddings, text_embeddings, logit_scale, logit_bias):
        raise NotImplementedError(f"{type(self).__name__} must define `batch_loss`.")

    def get_config(self):
        return {"name": self.name, "gather_across_replicas": self.gather_across_replicas}
