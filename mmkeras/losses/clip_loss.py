import keras
from keras import ops

from mmkeras.losses.contrastive_loss import ContrastiveLoss
from mmkeras.losses.cross_replica import gather_global_batch


@keras.saving.register_keras_serializable(package="mmkeras")
class ClipLoss(ContrastiveLoss):
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
        super().__init__(gather_across_replicas=gather_across_replicas, name=name)

    def batch_loss(self, image_embeddings, text_embeddings, logit_scale, logit_bias):
        del logit_bias  # a constant shift cancels in the softmax
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
