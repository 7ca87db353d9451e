import keras
import numpy as np
import pytest
import tensorflow as tf

from mmkeras.metrics.masked_token_accuracy import MaskedTokenAccuracy

RNG = np.random.default_rng(0)


def test_accumulates_over_real_tokens_only():
    metric = MaskedTokenAccuracy()
    hits = total = 0
    for _ in range(3):
        y_true = RNG.integers(0, 5, (4, 6)).astype("int32")
        logits = RNG.normal(size=(4, 6, 5)).astype("float32")
        metric.update_state(y_true, logits)
        mask = y_true != 0
        hits += ((logits.argmax(-1) == y_true) & mask).sum()
        total += mask.sum()
    np.testing.assert_allclose(float(metric.result()), hits / total, rtol=1e-6)
    metric.reset_state()
    assert float(metric.result()) == 0.0


def test_pad_predictions_and_sample_weight():
    metric = MaskedTokenAccuracy()
    y_true = np.array([[4, 3, 0, 0]], "int32")
    logits = np.eye(5, dtype="float32")[[[4, 1, 0, 0]]]  # right, wrong, (pad), (pad)
    metric.update_state(y_true, logits)
    assert float(metric.result()) == 0.5
    weighted = MaskedTokenAccuracy()
    weighted.update_state(
        np.concatenate([y_true, y_true]),
        np.concatenate([logits, np.eye(5, dtype="float32")[[[4, 3, 0, 0]]]]),
        sample_weight=np.array([1.0, 3.0], "float32"),
    )
    np.testing.assert_allclose(float(weighted.result()), (1 + 3 * 2) / 8)


def test_config_jit_and_bf16():
    metric = MaskedTokenAccuracy(pad_id=1, name="acc")
    clone = MaskedTokenAccuracy.from_config(metric.get_config())
    assert (
        clone.get_config()
        == metric.get_config()
        == {"pad_id": 1, "name": "acc", "dtype": "float32"}
    )
    y_true = np.array([[4, 1, 2]], "int32")
    logits = np.eye(5, dtype="float32")[[[4, 0, 0]]]
    tf.function(clone.update_state, jit_compile=True)(y_true, tf.cast(logits, tf.bfloat16))
    assert float(clone.result()) == 0.5
    assert isinstance(
        keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(metric)),
        MaskedTokenAccuracy,
    )
    with pytest.raises(ValueError, match="y_pred"):
        metric.update_state(y_true, logits[:, :, 0])
