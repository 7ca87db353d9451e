import keras
import numpy as np
import pytest
import tensorflow as tf

from mmkeras.metrics.masked_perplexity import MaskedPerplexity

RNG = np.random.default_rng(1)


def test_exp_of_masked_mean_nll_over_batches():
    metric = MaskedPerplexity()
    nll = count = 0.0
    for _ in range(3):
        y_true = RNG.integers(0, 7, (3, 5)).astype("int32")
        logits = RNG.normal(0, 2, (3, 5, 7)).astype("float32")
        metric.update_state(y_true, logits)
        log_probs = logits - np.log(np.exp(logits.astype("float64")).sum(-1, keepdims=True))
        token_nll = -np.take_along_axis(log_probs, y_true[..., None], -1)[..., 0]
        nll += (token_nll * (y_true != 0)).sum()
        count += (y_true != 0).sum()
    np.testing.assert_allclose(float(metric.result()), np.exp(nll / count), rtol=1e-5)
    metric.reset_state()
    assert float(metric.result()) == 1.0


def test_uniform_prediction_and_sample_weight():
    metric = MaskedPerplexity()
    metric.update_state(np.array([[4, 3, 0]], "int32"), np.zeros((1, 3, 8), "float32"))
    np.testing.assert_allclose(float(metric.result()), 8.0, rtol=1e-6)
    weighted = MaskedPerplexity()
    logits = np.log(np.array([[[0.5, 0.5]], [[0.25, 0.75]]], "float32"))
    weighted.update_state(
        np.array([[1], [1]], "int32"), logits, sample_weight=np.array([1.0, 0.0], "float32")
    )
    np.testing.assert_allclose(float(weighted.result()), 2.0, rtol=1e-5)


def test_config_jit_and_bf16():
    metric = MaskedPerplexity(pad_id=0, name="ppl")
    clone = MaskedPerplexity.from_config(metric.get_config())
    assert clone.get_config() == metric.get_config()
    tf.function(clone.update_state, jit_compile=True)(
        np.array([[4, 3, 0]], "int32"), tf.zeros((1, 3, 8), tf.bfloat16)
    )
    np.testing.assert_allclose(float(clone.result()), 8.0, rtol=1e-5)
    assert isinstance(
        keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(metric)),
        MaskedPerplexity,
    )
    with pytest.raises(ValueError, match="y_pred"):
        metric.update_state(np.array([[4, 3]], "int32"), np.zeros((1, 2), "float32"))
