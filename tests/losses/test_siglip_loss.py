import keras
import numpy as np
import pytest
import tensorflow as tf

from mmkeras.losses import LogitScale, SigLipLoss


def _numpy_siglip(image, text, scale, bias):
    logits = scale * image.astype("float64") @ text.astype("float64").T + bias
    signs = 2.0 * np.eye(len(image)) - 1.0
    x = signs * logits
    log_sigmoid = np.minimum(x, 0.0) - np.log1p(np.exp(-np.abs(x)))
    # big_vision / paper normalisation: sum over all pairs / batch size.
    return -log_sigmoid.sum() / len(image)


def _loss_and_grads(loss_fn, image, text, scale, bias):
    image, text, scale, bias = (tf.convert_to_tensor(x, "float32") for x in (image, text, scale, bias))
    with tf.GradientTape() as tape:
        tape.watch([image, text, scale, bias])
        value = loss_fn(image, text, scale, bias)
    return [value, *tape.gradient(value, [image, text, scale, bias])]


def test_matches_numpy_reference(embeddings):
    image, text = embeddings(8)
    for scale, bias in ((10.0, -10.0), (1.0, 0.0), (3.0, 2.5)):
        for chunk_size in (None, 3):
            loss = SigLipLoss(chunk_size=chunk_size)(image, text, scale, bias)
            assert loss.dtype == tf.float32 and loss.shape == ()
            np.testing.assert_allclose(
                float(loss), _numpy_siglip(image, text, scale, bias), rtol=1e-5, atol=1e-5
            )


def test_gradient_matches_numpy_finite_differences(embeddings):
    image, text = embeddings(4, dim=3, seed=2)
    value, d_image, d_text, d_scale, d_bias = _loss_and_grads(SigLipLoss(), image, text, 4.0, -2.0)
    eps = 1e-5
    ref = lambda i, t, s, b: _numpy_siglip(i, t, s, b)  # noqa: E731
    np.testing.assert_allclose(
        float(d_scale), (ref(image, text, 4 + eps, -2) - ref(image, text, 4 - eps, -2)) / (2 * eps), atol=1e-5
    )
    np.testing.assert_allclose(
        float(d_bias), (ref(image, text, 4, -2 + eps) - ref(image, text, 4, -2 - eps)) / (2 * eps), atol=1e-5
    )
    numeric = np.zeros(text.shape)
    for index in np.ndindex(*text.shape):
        step = np.zeros(text.shape)
        step[index] = eps
        numeric[index] = (ref(image, text + step, 4, -2) - ref(image, text - step, 4, -2)) / (2 * eps)
    np.testing.assert_allclose(d_text.numpy(), numeric, atol=1e-5)


@pytest.mark.parametrize("chunk_size", [1, 3, 4, 8, 11])
def test_chunked_equals_plain_loss_and_gradients(chunk_size, embeddings):
    # 8 columns: chunk sizes dividing it, not dividing it, and larger than it.
    image, text = embeddings(8)
    plain = _loss_and_grads(SigLipLoss(), image, text, 10.0, -10.0)
    chunked = _loss_and_grads(SigLipLoss(chunk_size=chunk_size), image, text, 10.0, -10.0)
    assert float(tf.reduce_max(tf.abs(plain[2]))) > 1e-3
    for name, a, b in zip(["loss", "d_image", "d_text", "d_scale", "d_bias"], chunked, plain):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5, rtol=1e-5, err_msg=name)


def test_chunked_jit_compile_and_unknown_batch_size(embeddings):
    image, text = embeddings(8)
    plain = _loss_and_grads(SigLipLoss(), image, text, 10.0, -10.0)
    loss_fn = SigLipLoss(chunk_size=3)
    compiled = tf.function(
        lambda *args: _loss_and_grads(loss_fn, *args), jit_compile=True
    )(image, text, 10.0, -10.0)
    for a, b in zip(compiled, plain):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5, rtol=1e-5)

    spec = tf.TensorSpec([None, 5], tf.float32)

    @tf.function(input_signature=[spec, spec])
    def dynamic(image, text):
        with tf.GradientTape() as tape:
            tape.watch(text)
            value = loss_fn(image, text, 10.0, -10.0)
        return value, tape.gradient(value, text)

    value, d_text = dynamic(image, text)
    np.testing.assert_allclose(value.numpy(), plain[0].numpy(), atol=1e-5)
    np.testing.assert_allclose(d_text.numpy(), plain[2].numpy(), atol=1e-5)


def _static_shapes(graph):
    """Shapes of every tensor in a graph and in its loop bodies/conditions."""
    shapes = []
    for op in graph.get_operations():
        shapes += [tuple(t.shape.as_list()) for t in op.outputs if t.shape.rank is not None]
        for attr in ("body", "cond"):
            try:
                function_name = op.get_attr(attr).name
            except ValueError:
                continue
            shapes += _static_shapes(graph._get_function(function_name).graph)
    return shapes


def test_chunked_never_forms_full_logits_forward_or_backward():
    batch, dim = 48, 16
    spec = tf.TensorSpec([batch, dim], tf.float32)
    scalar = tf.TensorSpec([], tf.float32)
    shapes = {}
    for chunk_size in (None, 8):
        loss_fn = SigLipLoss(chunk_size=chunk_size)
        step = tf.function(lambda *args, fn=loss_fn: _loss_and_grads(fn, *args))
        shapes[chunk_size] = _static_shapes(step.get_concrete_function(spec, spec, scalar, scalar).graph)
    assert (batch, batch) in shapes[None]  # the probe sees the plain loss's logits
    assert (batch, 8) in shapes[8]
    assert not any(len(s) == 2 and s[0] == batch and s[1] in (batch, None) for s in shapes[8])


def test_bfloat16_inputs_give_float32_loss(embeddings):
    image, text = embeddings(8)
    for chunk_size in (None, 3):
        loss = SigLipLoss(chunk_size=chunk_size)(
            tf.cast(image, "bfloat16"), tf.cast(text, "bfloat16"), tf.constant(10.0, "bfloat16"), -10.0
        )
        assert loss.dtype == tf.float32
        np.testing.assert_allclose(float(loss), _numpy_siglip(image, text, 10.0, -10.0), rtol=2e-2)


def test_call_forms_agree_and_bias_defaults_to_zero(embeddings):
    image, text = embeddings(8)
    loss = SigLipLoss()
    expected = _numpy_siglip(image, text, 10.0, -10.0)
    y_pred = {"image_embeddings": image, "text_embeddings": text, "logit_scale": 10.0, "logit_bias": -10.0}
    for value in (loss(y_pred), loss(None, y_pred), loss.call(None, y_pred)):
        np.testing.assert_allclose(float(value), expected, rtol=1e-5)
    layer = LogitScale(init_scale=10.0, max_scale=None, init_bias=-10.0)
    np.testing.assert_allclose(float(loss(image, text, **layer())), expected, rtol=1e-5)
    np.testing.assert_allclose(
        float(loss(image, text, 10.0)), _numpy_siglip(image, text, 10.0, 0.0), rtol=1e-5
    )


def test_config_and_serialization_round_trip():
    loss = SigLipLoss(chunk_size=16, gather_across_replicas=False, name="s")
    config = loss.get_config()
    assert config == {"name": "s", "chunk_size": 16, "gather_across_replicas": False}
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored, SigLipLoss) and restored.get_config() == config
    assert keras.saving.get_registered_name(SigLipLoss) == "mmkeras>SigLipLoss"


def test_bad_input_raises_value_error(embeddings):
    image, text = embeddings(8)
    for bad in (0, -2, 2.5, True, "8"):
        with pytest.raises(ValueError, match="chunk_size"):
            SigLipLoss(chunk_size=bad)
    with pytest.raises(ValueError, match="gather_across_replicas"):
        SigLipLoss(gather_across_replicas=1)
    with pytest.raises(ValueError, match="logit_bias.*scalar"):
        SigLipLoss()(image, text, 1.0, np.zeros((8,), "float32"))
    with pytest.raises(ValueError, match="logit_scale"):
        SigLipLoss()(image, text)
    with pytest.raises(ValueError, match="batch size"):
        SigLipLoss(chunk_size=2)(image, text[:3], 1.0, 0.0)
    with pytest.raises(ValueError, match="y_pred.*dict"):
        SigLipLoss().call(None, image)
