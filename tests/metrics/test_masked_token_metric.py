"""What `MaskedTokenMetric` gives each of its metrics: a token-weighted mean over the real
(non-padding) targets of all batches, config and serialization, XLA with bfloat16 logits,
and a clear error for logits of the wrong rank. Each metric's own values are tested in its file."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mmkeras.metrics.masked_perplexity import MaskedPerplexity
from mmkeras.metrics.masked_token_accuracy import MaskedTokenAccuracy


def _hits(y_true, logits):
    return (logits.argmax(-1) == y_true).astype("float64")


def _nll(y_true, logits):
    logits = logits.astype("float64")
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    return -np.take_along_axis(log_probs, y_true[..., None], -1)[..., 0]


# (metric class, the value of each target token, the result from the token-weighted mean)
METRICS = [
    pytest.param(MaskedTokenAccuracy, _hits, lambda mean: mean, id="accuracy"),
    pytest.param(MaskedPerplexity, _nll, np.exp, id="perplexity"),
]


def _batch(rng, batch=4, length=6, vocabulary=5):
    y_true = rng.integers(0, vocabulary, (batch, length)).astype("int32")
    logits = rng.normal(0, 2, (batch, length, vocabulary)).astype("float32")
    return y_true, logits


def _expected(token_value, result_of, y_true, logits, pad_id):
    mask = y_true != pad_id
    return result_of((token_value(y_true, logits) * mask).sum() / mask.sum())


@pytest.mark.parametrize("metric_cls, token_value, result_of", METRICS)
def test_token_weighted_mean_over_batches(metric_cls, token_value, result_of):
    rng = np.random.default_rng(0)
    metric = metric_cls()
    batches = [_batch(rng) for _ in range(3)]
    for y_true, logits in batches:
        metric.update_state(y_true, logits)
    y_true, logits = (np.concatenate(parts) for parts in zip(*batches))
    expected = _expected(token_value, result_of, y_true, logits, pad_id=0)
    np.testing.assert_allclose(float(metric.result()), expected, rtol=1e-5)
    metric.reset_state()
    assert float(metric.result()) == result_of(0.0)


@pytest.mark.parametrize("metric_cls, token_value, result_of", METRICS)
def test_config_serialization_and_xla_with_bfloat16(metric_cls, token_value, result_of):
    metric = metric_cls(pad_id=1, name="m")
    clone = metric_cls.from_config(metric.get_config())
    assert clone.get_config() == metric.get_config() == {"pad_id": 1, "name": "m", "dtype": "float32"}
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(metric))
    assert isinstance(restored, metric_cls)
    y_true, logits = _batch(np.random.default_rng(1))
    logits = tf.cast(logits, tf.bfloat16)
    tf.function(clone.update_state, jit_compile=True)(y_true, logits)
    rounded = tf.cast(logits, tf.float32).numpy()
    expected = _expected(token_value, result_of, y_true, rounded, pad_id=1)
    np.testing.assert_allclose(float(clone.result()), expected, rtol=1e-5)
    with pytest.raises(ValueError, match="y_pred"):
        metric.update_state(y_true, logits[..., 0])
