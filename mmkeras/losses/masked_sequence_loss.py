import keras
import tensorflow as tf
from keras import ops

from mmkeras.preprocessing.special_tokens import PAD_ID
from mmkeras.validation import check_rate

REDUCTIONS = ("sum_over_batch_size", "mean", "sum", "none", None)


@keras.saving.register_keras_serializable(package="mmkeras")
class MaskedSequenceLoss(keras.losses.Loss):
    """Token-level cross-entropy over a padded sequence, padding excluded.

    For targets `y_true [B, L]` (int ids, `pad_id` marks padding) and logits
    `y_pred [B, L, V]`, the loss is

        sum over real tokens of CE(q_t, softmax(logits_t)) / number of real tokens

    where `q_t = (1 - label_smoothing) * one_hot(y_t) + label_smoothing / V`
    (the Keras label-smoothing convention: the smoothing mass is spread over
    the whole vocabulary). A `sample_weight` of shape `[B]` or `[B, L]`
    multiplies the per-token losses; the divisor stays the number of real
    tokens. The softmax is computed in float32 whatever the logits' dtype.

    Under a `tf.distribute` strategy with several replicas (inside
    `strategy.run`, as in `fit`), the divisor is the number of real tokens of
    the GLOBAL batch (summed over the replicas), so each replica returns its
    share of the global-batch loss and the summed gradients equal
    single-device training on the global batch.

    Args:
        label_smoothing: float in [0, 1).
        pad_id: int, the id of padding targets (never counted).
        from_logits: bool; must be True (the model outputs logits).
        reduction: "sum_over_batch_size" (default; "mean" is the same): the
            summed loss divided by the number of real tokens; "sum"; or None /
            "none" for per-token losses `[B, L]`.
        name: loss name.
        dtype: dtype of the loss computation (float32 by default).

    Example:

    >>> import numpy as np
    >>> loss = MaskedSequenceLoss(label_smoothing=0.1)
    >>> y_true = np.array([[5, 3, 0, 0]], "int32")
    >>> logits = np.zeros((1, 4, 8), "float32")
    >>> round(float(loss(y_true, logits)), 4)  # log(8): uniform prediction
    2.0794
    """

    def __init__(
        self,
        label_smoothing=0.0,
        pad_id=PAD_ID,
        from_logits=True,
        reduction="sum_over_batch_size",
        name="masked_sequence_loss",
        dtype=None,
    ):
        if reduction not in REDUCTIONS:
            raise ValueError(f"`reduction` must be one of {REDUCTIONS}, got {reduction!r}.")
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        label_smoothing = check_rate("label_smoothing", label_smoothing)
        if not from_logits:
            raise ValueError("`from_logits` must be True: MaskedSequenceLoss takes logits.")
        self.label_smoothing = float(label_smoothing)
        self.pad_id = int(pad_id)
        self.from_logits = True

    def call(self, y_true, y_pred):
        y_pred = ops.convert_to_tensor(y_pred)
        y_true = ops.convert_to_tensor(y_true)
        if len(y_pred.shape) != 3:
            raise ValueError(
                f"`y_pred` must be logits of shape [batch, length, vocabulary], got {tuple(y_pred.shape)}."
            )
        if len(y_true.shape) != 2:
            raise ValueError(f"`y_true` must be token ids of shape [batch, length], got {tuple(y_true.shape)}.")
        targets = ops.cast(y_true, "int32")
        log_probs = ops.log_softmax(ops.cast(y_pred, "float32"), axis=-1)
        nll = -ops.squeeze(ops.take_along_axis(log_probs, targets[..., None], axis=-1), axis=-1)
        if self.label_smoothing:
            uniform = -ops.mean(log_probs, axis=-1)
            nll = (1.0 - self.label_smoothing) * nll + self.label_smoothing * uniform
        return ops.where(ops.not_equal(targets, self.pad_id), nll, 0.0)

    def __call__(self, y_true, y_pred, sample_weight=None):
        with keras.name_scope(self.name):
            losses = self.call(y_true, y_pred)
            if sample_weight is not None:
                sample_weight = ops.cast(ops.convert_to_tensor(sample_weight), losses.dtype)
                if len(sample_weight.shape) == 1:
                    sample_weight = sample_weight[:, None]
                losses = losses * sample_weight
            if self.reduction in (None, "none"):
                return losses
            loss = ops.sum(losses)
            if self.reduction == "sum":
                return loss
            real_tokens = ops.sum(ops.cast(ops.not_equal(ops.cast(y_true, "int32"), self.pad_id), "float32"))
            context = tf.distribute.get_replica_context()
            if context is not None and context.num_replicas_in_sync > 1:
                # Each replica returns its SHARE of the global-batch loss: its
                # token losses over the real tokens of ALL replicas. Keras sums
                # the replicas' gradients, so they equal the single-device
                # gradients even when replicas hold different numbers of real
                # tokens (dividing each replica's mean by the replica count
                # would not).
                real_tokens = context.all_reduce(tf.distribute.ReduceOp.SUM, real_tokens)
                return loss / ops.maximum(real_tokens, 1.0)
            loss = loss / ops.maximum(real_tokens, 1.0)
            # Cross-replica context of a multi-replica strategy: scaled like Keras losses.
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            return loss / replicas if replicas > 1 else loss

    def get_config(self):
        config = super().get_config()
        config.update(
            {"label_smoothing": self.label_smoothing, "pad_id": self.pad_id, "from_logits": self.from_logits}
        )
        return config
