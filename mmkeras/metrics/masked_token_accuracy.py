import keras
from keras import ops


@keras.saving.register_keras_serializable(package="mmkeras")
class MaskedTokenAccuracy(keras.metrics.Metric):
    """Next-token accuracy over real (non-padding) target tokens.

    `argmax(y_pred) == y_true`, averaged over every position whose target is
    not `pad_id`, accumulated over batches (a token-weighted mean, not a mean
    of per-batch means). An optional `sample_weight` (`[B]` or `[B, L]`)
    weights the tokens.

    Args:
        pad_id: int, the target id that never counts.
        name: metric name.
        dtype: dtype of the metric variables.

    Example:

    >>> import numpy as np
    >>> metric = MaskedTokenAccuracy()
    >>> y_true = np.array([[4, 3, 0]], "int32")
    >>> logits = np.eye(5, dtype="float32")[[[4, 1, 0]]]  # predicts 4, 1, 0
    >>> metric.update_state(y_true, logits)
    >>> float(metric.result())
    0.5
    """

    def __init__(self, pad_id=0, name="masked_token_accuracy", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.pad_id = int(pad_id)
        self.correct = self.add_variable(
            shape=(), initializer="zeros", name="correct", dtype="float32"
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
        predicted = ops.cast(ops.argmax(y_pred, axis=-1), "int32")
        hits = ops.cast(ops.equal(predicted, y_true), "float32")
        self.correct.assign_add(ops.sum(hits * weights))
        self.count.assign_add(ops.sum(weights))

    def result(self):
        return ops.divide_no_nan(self.correct, self.count)

    def reset_state(self):
        self.correct.assign(0.0)
        self.count.assign(0.0)

    def get_config(self):
        return {"pad_id": self.pad_id, "name": self.name, "dtype": self.dtype}
