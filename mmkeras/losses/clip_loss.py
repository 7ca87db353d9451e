from collections.abc import Mapping

import keras
from keras import ops

from mmkeras.losses.cross_replica import gather_global_batch


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


def _dispatch_contrastive_call(loss, image_embeddings, text_embeddings, logit_scale, logit_bias):
    """Routes the three call forms of a contrastive loss to `loss.call`.

    Shared by `ClipLoss` and `SigLipLoss`: `loss(img, txt, scale[, bias])`,
    `loss(y_pred_dict)` and the Keras form `loss(y_true, y_pred_dict[, None])`.
    """
    if isinstance(image_embeddings, Mapping):
        if text_embeddings is not None or logit_scale is not None or logit_bias is not None:
            raise ValueError(
                f"{loss.name}: when the first argument is a `y_pred` dict, pass nothing else."
            )
        y_pred = image_embeddings
    elif isinstance(text_embeddings, Mapping):
        # Keras form: loss(y_true, y_pred, sample_weight). y_true is ignored.
        if logit_scale is not None:
            raise ValueError(
                f"{loss.name}: `sample_weight` is not supported by contrastive losses, got "
                f"{logit_scale!r}."
            )
        if logit_bias is not None:
            raise ValueError(f"{loss.name}: too many arguments for the (y_true, y_pred) form.")
        y_pred = text_embeddings
    else:
        if text_embeddings is None:
            raise ValueError(f"{loss.name}: `text_embeddings` is required, got None.")
        y_pred = {
            "image_embeddings": image_embeddings,
            "text_embeddings": text_embeddings,
            "logit_scale": logit_scale,
        }
        if logit_bias is not None:
            y_pred["logit_bias"] = logit_bias
    with keras.name_scope(loss.name):
        return loss.call(None, y_pred)


@keras.saving.register_keras_serializable(package="mmkeras")
class ClipLoss(keras.losses.Loss):
    """Symmetric InfoNCE (CLIP) loss with negatives from every replica.

    With `logits = logit_scale * image_embeddings @ text_embeddings^T` over the
    global batch of `B` pairs (pair `i` is the positive of row/column `i`), the
    loss is the mean of the image->text and text->image cross-entropies:

        loss = (sum_i CE(logits[i, :], i) + sum_j CE(logits[:, j], j)) / (2 B)

    The embeddings should be L2-normalised (the loss does not normalise them).
    They are cast to float32 before the logits, so bf16 inputs give a float32
    loss.

    Under a `tf.distribute` strategy with several replicas (inside
    `strategy.run`, e.g. in `Model.compute_loss` during `fit`), each replica
    contrasts its local images against the texts gathered from all replicas and
    its local texts against all images, and returns its SHARE of the global
    loss (its terms divided by `2 B`). Keras sums the replicas' gradients, so
    training equals single-device training on the global batch; see
    `mmkeras.losses.cross_replica`. With one replica it is the plain loss.

    Call forms (all return a float32 scalar):

    - `loss(image_embeddings, text_embeddings, logit_scale)`; a `logit_bias`
      is accepted and ignored (a constant shift cancels in the softmax), so
      `loss(img, txt, **LogitScale()())` works with either layer setting;
    - `loss(y_pred)` or the `keras.losses.Loss` form `loss(y_true, y_pred)`
      with `y_pred` a dict holding `"image_embeddings"`, `"text_embeddings"`,
      `"logit_scale"` (and optionally `"logit_bias"`); `y_true` is ignored and
      `sample_weight` is not supported. Note that `Model.compile(loss=...)`
      maps a single loss onto each output of a dict-output model, so call the
      loss from `Model.compute_loss` instead.

    Args:
        gather_across_replicas: bool. If `False`, each replica only uses its
            local batch as negatives (the loss keeps the same scale).
        name: name of the loss.

    Example:

    >>> import numpy as np
    >>> x = np.eye(4, dtype="float32")
    >>> loss = ClipLoss()(x, x, logit_scale=2.0)  # log(1 + 3 exp(-2))
    >>> round(float(loss), 4)
    0.3408
    """

    def __init__(self, gather_across_replicas=True, name="clip_loss"):
        super().__init__(name=name, reduction="sum_over_batch_size", dtype="float32")
        if not isinstance(gather_across_replicas, bool):
            raise ValueError(
                f"`gather_across_replicas` must be a bool, got {gather_across_replicas!r}."
            )
        self.gather_across_replicas = gather_across_replicas

    def __call__(self, image_embeddings, text_embeddings=None, logit_scale=None, logit_bias=None):
        return _dispatch_contrastive_call(
            self, image_embeddings, text_embeddings, logit_scale, logit_bias
        )

    def call(self, y_true, y_pred):
        del y_true
        image_embeddings, text_embeddings, logit_scale, _ = _unpack_y_pred(y_pred, self.name)
        image_embeddings, text_embeddings = _as_float32_embeddings(image_embeddings, text_embeddings)
        logit_scale = _as_float32_scalar(logit_scale, "logit_scale")

        (all_images, all_texts), row_offset, global_size = gather_global_batch(
            [image_embeddings, text_embeddings], gather=self.gather_across_replicas
        )
        local_size = ops.shape(image_embeddings)[0]
        labels = ops.expand_dims(row_offset + ops.arange(local_size, dtype="int32"), 1)

        def cross_entropy_sum(queries, keys):
            logits = logit_scale * ops.matmul(queries, ops.transpose(keys))
            positives = ops.take_along_axis(logits, labels, axis=1)[:, 0]
            return ops.sum(ops.logsumexp(logits, axis=1) - positives)

        total = cross_entropy_sum(image_embeddings, all_texts) + cross_entropy_sum(
            text_embeddings, all_images
        )
        return total / (2.0 * ops.cast(ops.maximum(global_size, 1), "float32"))

    def get_config(self):
        return {"name": self.name, "gather_across_replicas": self.gather_across_replicas}
