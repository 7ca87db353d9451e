import keras
from keras import ops

from mmkeras.metrics.masked_token_metric import MaskedTokenMetric
from mmkeras.preprocessing.special_tokens import PAD_ID


@keras.saving.register_keras_serializable(package="mmkeras")
class MaskedPerplexity(MaskedTokenMetric):
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

    def __init__(self, pad_id=PAD_ID, name="masked_perplexity", dtype=None):
        super().__init__(pad_id=pad_id, name=name, dtype=dtype)

    def token_values(self, y_true, y_pred):
        log_probs = ops.log_softmax(ops.cast(y_pred, "float32"), axis=-1)
        return -ops.squeeze(ops.take_along_axis(log_probs, y_true[..., None], axis=-1), axis=-1)

    def transform_mean(self, mean):
        return ops.exp(mean)
