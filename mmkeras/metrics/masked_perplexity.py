import keras
from keras import ops


@keras.saving.register_keras_serializable(package="mmkeras")
class MaskedPerplexity(keras.metrics.Metric):
    """Perplexity `exp(mean NLL)` over real (non-padding) target tokens.

    The negative log-likelihood of each target token (log-softmax of the
    logits in float32) is summed over every position whose target is not
    `pad_id` and over batches; the result is `exp(sum NLL / number of real
    tokens)`. An optional `sample_weight` (`[B]` or `[B, L]`) weights tokens.

    Args:
        pad_id: int, the target id that never counts.
        name: metric name.
        dtype: dtype of the metric variables.

    Example:

    >>> import numpy as np
    >>> metric = MaskedPerplexity()
    >>> metric.update_state(np.array([[4, 3, 0]], "int32"), np.zeros((1, 3, 8), "float32"))
    >>> round(float(metric.result()), 4)  # uniform over 8 tokens
    8.0
    """

    def __init__(self, pad_id=0, name="masked_perplexity", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.pad_id = int(pad_id)
        self.total_nll = self.add_variable(
            shape=(), initializer="zeros", name="total_nll", dtype="float32"
        )
        self.count = self.add_variable(shape=(), initializer="zeros", name="count", dtype="float32")

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
        log_probs = ops.log_softmax(ops.cast(y_pred, "float32"), axis=-1)
        nll = -ops.squeeze(ops.take_along_axis(log_probs, y_true[..., None], axis=-1), axis=-1)
        self.total_nll.assign_add(ops.sum(nll * weights))
        self.count.assign_add(ops.sum(weights))

    def result(self):
        return ops.exp(ops.divide_no_nan(self.total_nll, self.count))

    def reset_state(self):
        self.total_nll.assign(0.0)
        self.count.assign(0.0)

    def get_config(self):
        return {"pad_id": self.pad_id, "name": self.name, "dtype": self.dtype}
