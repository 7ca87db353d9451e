import keras
import numpy as np
import pytest
import tensorflow as tf

from mmkeras.losses.masked_sequence_loss import MaskedSequenceLoss

RNG = np.random.default_rng(0)
Y_TRUE = np.array([[5, 7, 3, 0, 0], [2, 4, 6, 8, 3], [9, 3, 0, 0, 0]], "int32")
LOGITS = RNG.normal(0, 2, (3, 5, 11)).astype("float32")


def _reference(y_true, logits, smoothing=0.0, sample_weight=None):
    logits = logits.astype("float64")
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    vocab = logits.shape[-1]
    target = np.eye(vocab)[y_true] * (1 - smoothing) + smoothing / vocab
    per_token = -(target * log_probs).sum(-1)
    mask = (y_true != 0).astype("float64")
    weights = mask if sample_weight is None else mask * np.asarray(sample_weight)[:, None]
    return (per_token * weights).sum() / mask.sum()


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.3])
def test_matches_numpy_reference(smoothing):
    loss = MaskedSequenceLoss(label_smoothing=smoothing)
    np.testing.assert_allclose(float(loss(Y_TRUE, LOGITS)), _reference(Y_TRUE, LOGITS, smoothing), rtol=1e-5)
    weights = np.array([1.0, 0.5, 2.0], "float32")
    np.testing.assert_allclose(
        float(loss(Y_TRUE, LOGITS, sample_weight=weights)),
        _reference(Y_TRUE, LOGITS, smoothing, weights),
        rtol=1e-5,
    )


def test_padding_never_counts():
    loss = MaskedSequenceLoss()
    changed = LOGITS.copy()
    changed[Y_TRUE == 0] = 100.0 * RNG.normal(size=(int((Y_TRUE == 0).sum()), 11))
    np.testing.assert_allclose(float(loss(Y_TRUE, changed)), float(loss(Y_TRUE, LOGITS)), rtol=1e-6)
    logits = tf.Variable(LOGITS)
    with tf.GradientTape() as tape:
        value = loss(Y_TRUE, logits)
    grad = tape.gradient(value, logits).numpy()
    assert np.all(grad[Y_TRUE == 0] == 0) and np.all(np.abs(grad[Y_TRUE != 0]).sum(-1) > 0)
    assert float(loss(np.zeros((2, 3), "int32"), LOGITS[:2, :3])) == 0.0  # no real token: 0, not NaN


def test_reductions():
    per_token = MaskedSequenceLoss(reduction=None)(Y_TRUE, LOGITS).numpy()
    assert per_token.shape == (3, 5) and np.all(per_token[Y_TRUE == 0] == 0)
    total = float(MaskedSequenceLoss(reduction="sum")(Y_TRUE, LOGITS))
    np.testing.assert_allclose(total, per_token.sum(), rtol=1e-5)
    np.testing.assert_allclose(float(MaskedSequenceLoss()(Y_TRUE, LOGITS)), total / (Y_TRUE != 0).sum(), rtol=1e-5)


def test_config_jit_and_bf16():
    loss = MaskedSequenceLoss(label_smoothing=0.2, pad_id=0, name="caption_loss")
    clone = MaskedSequenceLoss.from_config(loss.get_config())
    assert clone.get_config() == loss.get_config()
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert isinstance(restored, MaskedSequenceLoss) and restored.label_smoothing == 0.2
    expected = float(loss(Y_TRUE, LOGITS))
    compiled = tf.function(lambda y, p: loss(y, p), jit_compile=True)
    np.testing.assert_allclose(float(compiled(Y_TRUE, LOGITS)), expected, rtol=1e-5)
    bf16 = loss(Y_TRUE, tf.cast(LOGITS, tf.bfloat16))
    assert bf16.dtype == tf.float32
    np.testing.assert_allclose(float(bf16), expected, rtol=2e-2)


def test_bad_arguments():
    with pytest.raises(ValueError, match="label_smoothing"):
        MaskedSequenceLoss(label_smoothing=1.0)
    with pytest.raises(ValueError, match="from_logits"):
        MaskedSequenceLoss(from_logits=False)
    with pytest.raises(ValueError, match="reduction"):
        MaskedSequenceLoss(reduction="max")
    with pytest.raises(ValueError, match="y_pred"):
        MaskedSequenceLoss()(Y_TRUE, LOGITS[:, 0])
    with pytest.raises(ValueError, match="y_true"):
        MaskedSequenceLoss()(Y_TRUE[:, :, None], LOGITS)
