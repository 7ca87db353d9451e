import keras
import tensorflow as tf
from keras import ops

from mmkeras.preprocessing.special_tokens import PAD_ID


class MaskedTokenMetric(keras.metrics.Metric):
    """Base of the metrics that average a per-token value over real (non-padding) targets.

    `update_state(y_true [B, L], y_pred [B, L, V], sample_weight=None)` checks
    the shapes, weights every position whose target is not `pad_id` (times an
    optional `sample_weight` of shape `[B]` or `[B, L]`), and accumulates the
    weighted sum of `token_values(y_true, y_pred)` and the weight total over
    batches, so the mean is token-weighted, not a mean of per-batch means.
    Subclasses implement `token_values` and may transform the mean in
    `transform_mean` (perplexity takes its exponential). Under a
    `tf.distribute` strategy the result is the global token-weighted mean,
    also when read inside a replica.

    Args:
        pad_id: int, the target id that never counts.
        name: metric name.
        dtype: dtype of the metric variables.

    Example:

    >>> from mmkeras.metrics import MaskedTokenAccuracy
    >>> isinstance(MaskedTokenAccuracy(), MaskedTokenMetric)
    True
    """

    def __init__(self, pad_id=PAD_ID, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.pad_id = int(pad_id)
        self.total = self.add_variable(shape=(), initializer="zeros", name="total", dtype="float32")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count", dtype="float32")

    def token_values(self, y_true, y_pred):
        """The float32 value `[B, L]` of each target token (int32 `y_true`, logits `y_pred`)."""
        raise NotImplementedError

    def transform_mean(self, mean):
        """The metric's result from the token-weighted mean (identity by default)."""
        return mean

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.cast(ops.convert_to_tensor(y_true), "int32")
        y_pred = ops.convert_to_tensor(y_pred)
        if len(y_pred.shape) != len(y_true.shape) + 1:
            raise ValueError(
                "`y_pred` must be logits `[batch, length, vocabulary]` for `y_true` `[batch, length]`, "
                f"got shapes {tuple(y_pred.shape)} and {tuple(y_true.shape)}."
            )
        weights = ops.cast(ops.not_equal(y_true, self.pad_id), "float32")
        if sample_weight is not None:
            sample_weight = ops.cast(ops.convert_to_tensor(sample_weight), "float32")
            if len(sample_weight.shape) == 1 and len(weights.shape) == 2:
                sample_weight = sample_weight[:, None]
            weights = weights * sample_weight
        self.total.assign_add(ops.sum(self.token_values(y_true, y_pred) * weights))
        self.count.assign_add(ops.sum(weights))

    def result(self):
        total, count = self.total, self.count
        context = tf.distribute.get_replica_context()
        if context is not None and context.num_replicas_in_sync > 1:
            # In a replica (e.g. the per-batch logs of `fit`) the variables
            # read as this replica's partial sums; Keras averages the replicas'
            # results, which for a token-weighted mean is not the global mean
            # when replicas hold different numbers of tokens. Sum first.
            total, count = context.all_reduce(
                tf.distribute.ReduceOp.SUM, [ops.convert_to_tensor(total), ops.convert_to_tensor(count)]
            )
        return self.transform_mean(ops.divide_no_nan(total, count))

    def reset_state(self):
        self.total.assign(0.0)
        self.count.assign(0.0)

    def get_config(self):
        return {"pad_id": self.pad_id, "name": self.name, "dtype": self.dtype}
