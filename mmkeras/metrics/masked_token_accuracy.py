import keras
from keras import ops

from mmkeras.metrics.masked_token_metric import MaskedTokenMetric
from mmkeras.preprocessing.special_tokens import PAD_ID


@keras.saving.register_keras_serializable(package="mmkeras")
class MaskedTokenAccuracy(MaskedTokenMetric):
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

    def __init__(self, pad_id=PAD_ID, name="masked_token_accuracy", dtype=None):
        super().__init__(pad_id=pad_id, name=name, dtype=dtype)

    def token_values(self, y_true, y_pred):
        predicted = ops.cast(ops.argmax(y_pred, axis=-1), "int32")
        return ops.cast(ops.equal(predicted, y_true), "float32")
