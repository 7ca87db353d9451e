import keras
import numpy as np
import pytest
import tensorflow as tf

from mmkeras.losses import ClipLoss, LogitScale


def _numpy_clip(image, text, scale):
    image, text = image.astype("float64"), text.astype("float64")
    logits = scale * image @ text.T

    def cross_entropy(rows):
        top = rows.max(axis=1, keepdims=True)
        logsumexp = top[:, 0] + np.log(np.exp(rows - top).sum(axis=1))
        return np.mean(logsumexp - np.diag(rows))

    return 0.5 * (cross_entropy(logits) + cross_entropy(logits.T))


def test_matches_numpy_reference(embeddings):
    image, text = embeddings(6)
    for scale in (1.0, 14.285714, 100.0):
        loss = ClipLoss()(image, text, scale)
        assert loss.dtype == tf.float32 and loss.shape == ()
        np.testing.assert_allclose(float(loss), _numpy_clip(image, text, scale), rtol=1e-5, atol=1e-5)


def test_gradient_matches_numpy_finite_differences(embeddings):
    image, text = embeddings(4, dim=3, seed=1)
    image_t, scale_t = tf.constant(image), tf.constant(5.0)
    with tf.GradientTape() as tape:
        tape.watch([image_t, scale_t])
        loss = ClipLoss()(image_t, text, scale_t)
    d_image, d_scale = tape.gradient(loss, [image_t, scale_t])
    eps = 1e-5
    numeric_scale = (_numpy_clip(image, text, 5.0 + eps) - _numpy_clip(image, text, 5.0 - eps)) / (2 * eps)
    np.testing.assert_allclose(float(d_scale), numeric_scale, atol=1e-5)
    numeric_image = np.zeros_like(image, dtype="float64")
    for index in np.ndindex(*image.shape):
        step = np.zeros(image.shape)
        step[index] = eps
        numeric_image[index] = (
            _numpy_clip(image + step, text, 5.0) - _numpy_clip(image - step, text, 5.0)
        ) / (2 * eps)
    np.testing.assert_allclose(d_image.numpy(), numeric_image, atol=1e-5)


def test_perfect_alignment_beats_random_and_symmetry(embeddings):
    image, text = embeddings(6)
    aligned = float(ClipLoss()(image, image, 10.0))
    random = float(ClipLoss()(image, text, 10.0))
    assert aligned < random
    # Symmetric: swapping the modalities gives the same loss.
    np.testing.assert_allclose(float(ClipLoss()(text, image, 10.0)), random, rtol=1e-6)


def test_call_forms_agree(embeddings):
    image, text = embeddings(6)
    expected = float(ClipLoss()(image, text, 3.0))
    y_pred = {"image_embeddings": image, "text_embeddings": text, "logit_scale": 3.0}
    loss = ClipLoss()
    np.testing.assert_allclose(float(loss(y_pred)), expected, rtol=1e-6)
    np.testing.assert_allclose(float(loss(None, y_pred)), expected, rtol=1e-6)
    np.testing.assert_allclose(float(loss(None, y_pred, None)), expected, rtol=1e-6)
    np.testing.assert_allclose(float(loss.call(None, y_pred)), expected, rtol=1e-6)
    # A bias (e.g. from a SigLIP-style LogitScale) cancels in the softmax.
    np.testing.assert_allclose(
        float(loss(image, text, logit_scale=3.0, logit_bias=-10.0)), expected, rtol=1e-6
    )
    layer = LogitScale()
    np.testing.assert_allclose(
        float(loss(image, text, **layer())), _numpy_clip(image, text, 1 / 0.07), rtol=1e-5
    )


def test_bfloat16_inputs_give_float32_loss(embeddings):
    image, text = embeddings(6)
    loss = ClipLoss()(tf.cast(image, "bfloat16"), tf.cast(text, "bfloat16"), tf.constant(10.0, "bfloat16"))
    assert loss.dtype == tf.float32
    np.testing.assert_allclose(float(loss), _numpy_clip(image, text, 10.0), atol=5e-2)


def test_jit_compile_matches_eager(embeddings):
    image, text = embeddings(6)
    loss_fn = ClipLoss()

    def loss_and_grad(image, text, scale):
        with tf.GradientTape() as tape:
            tape.watch([image, scale])
            value = loss_fn(image, text, scale)
        return value, *tape.gradient(value, [image, scale])

    args = (tf.constant(image), tf.constant(text), tf.constant(7.0))
    eager = loss_and_grad(*args)
    compiled = tf.function(loss_and_grad, jit_compile=True)(*args)
    for a, b in zip(compiled, eager):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5)


def test_config_and_serialization_round_trip():
    loss = ClipLoss(gather_across_replicas=False, name="my_clip")
    config = loss.get_config()
    assert config == {"name": "my_clip", "gather_across_replicas": False}
    assert ClipLoss.from_config(config).get_config() == config
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored, ClipLoss) and restored.get_config() == config
    assert keras.saving.get_registered_name(ClipLoss) == "mmkeras>ClipLoss"


def test_bad_input_raises_value_error(embeddings):
    image, text = embeddings(6)
    loss = ClipLoss()
    with pytest.raises(ValueError, match="logit_scale"):
        loss(image, text)
    with pytest.raises(ValueError, match="logit_scale.*scalar"):
        loss(image, text, np.ones((2,), "float32"))
    with pytest.raises(ValueError, match="batch size"):
        loss(image, text[:4], 1.0)
    with pytest.raises(ValueError, match="embedding dim"):
        loss(image, text[:, :3], 1.0)
    with pytest.raises(ValueError, match="image_embeddings.*\\[batch, dim\\]"):
        loss(image[0], text, 1.0)
    with pytest.raises(ValueError, match="text_embeddings"):
        loss(image)
    with pytest.raises(ValueError, match="missing the keys \\['logit_scale'\\]"):
        loss({"image_embeddings": image, "text_embeddings": text})
    with pytest.raises(ValueError, match="sample_weight"):
        loss(None, {"image_embeddings": image, "text_embeddings": text, "logit_scale": 1.0}, np.ones(6))
    with pytest.raises(ValueError, match="gather_across_replicas"):
        ClipLoss(gather_across_replicas="yes")
