import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from mmkeras.losses import ClipLoss, LogitScale
from mmkeras.testing.layer_checks import run_layer_checks

SIGLIP = {"init_scale": 10.0, "max_scale": None, "init_bias": -10.0}


def test_clip_layer_checks(tmp_path):
    outputs = run_layer_checks(
        LogitScale,
        {},
        {"inputs": np.ones((2, 4), "float32")},
        str(tmp_path),
        expected_output_shape={"logit_scale": ()},
    )
    np.testing.assert_allclose(float(outputs["logit_scale"]), 1 / 0.07, rtol=1e-6)


def test_siglip_layer_checks(tmp_path):
    outputs = run_layer_checks(
        LogitScale,
        SIGLIP,
        {"inputs": np.ones((2, 4), "float32")},
        str(tmp_path),
        expected_output_shape={"logit_scale": (), "logit_bias": ()},
    )
    np.testing.assert_allclose(float(outputs["logit_scale"]), 10.0, rtol=1e-6)
    np.testing.assert_allclose(float(outputs["logit_bias"]), -10.0, rtol=1e-6)


def test_variables_are_log_scale_and_bias():
    clip = LogitScale()
    clip.build()
    assert [w.name for w in clip.trainable_weights] == ["log_scale"]
    np.testing.assert_allclose(float(clip.log_scale.numpy()), math.log(1 / 0.07), rtol=1e-6)
    siglip = LogitScale(**SIGLIP)
    siglip.build()
    assert [w.name for w in siglip.trainable_weights] == ["log_scale", "bias"]
    np.testing.assert_allclose(float(siglip.log_scale.numpy()), math.log(10.0), rtol=1e-6)
    frozen = LogitScale(trainable=False)
    frozen.build()
    assert frozen.trainable_weights == [] and len(frozen.non_trainable_weights) == 1


def test_scale_is_clamped_at_max_scale():
    layer = LogitScale()
    layer.build()
    layer.log_scale.assign(math.log(1000.0))
    assert float(layer()["logit_scale"]) == pytest.approx(100.0)
    layer.log_scale.assign(math.log(50.0))
    assert float(layer()["logit_scale"]) == pytest.approx(50.0, rel=1e-6)
    unclamped = LogitScale(max_scale=None)
    unclamped.build()
    unclamped.log_scale.assign(math.log(1000.0))
    assert float(unclamped()["logit_scale"]) == pytest.approx(1000.0, rel=1e-5)


def test_optimizer_step_keeps_variable_at_most_log_max_scale():
    layer = LogitScale(init_scale=90.0)
    layer.build()
    optimizer = keras.optimizers.SGD(learning_rate=10.0)
    # Gradient -1 with a big learning rate pushes log_scale far above log(100).
    optimizer.apply_gradients([(tf.constant(-1.0), layer.log_scale)])
    assert float(layer.log_scale.numpy()) == pytest.approx(math.log(100.0), rel=1e-6)
    optimizer.apply_gradients([(tf.constant(1.0), layer.log_scale)])
    assert float(layer.log_scale.numpy()) == pytest.approx(math.log(100.0) - 10.0, rel=1e-6)


def test_gradient_reaches_log_scale_through_the_loss():
    rng = np.random.default_rng(0)
    image = rng.normal(size=(4, 3)).astype("float32")
    text = rng.normal(size=(4, 3)).astype("float32")
    layer = LogitScale(init_scale=5.0)
    with tf.GradientTape() as tape:
        loss = ClipLoss()(image, text, **layer())
    (grad,) = tape.gradient(loss, layer.trainable_weights)
    # d loss / d log_scale = scale * d loss / d scale.
    with tf.GradientTape() as tape:
        scale = tf.constant(5.0)
        tape.watch(scale)
        loss = ClipLoss()(image, text, scale)
    np.testing.assert_allclose(float(grad), 5.0 * float(tape.gradient(loss, scale)), rtol=1e-5)


def test_float32_under_mixed_bfloat16():
    layer = LogitScale(dtype="mixed_bfloat16", **SIGLIP)
    outputs = layer(np.ones((2, 4), "float32"))
    assert layer.log_scale.dtype == "float32" and layer.bias.dtype == "float32"
    assert outputs["logit_scale"].dtype == tf.float32 and outputs["logit_bias"].dtype == tf.float32
    # float32 precision: bf16 would round exp(log(10)) to 10.0625 or 9.9375.
    assert float(outputs["logit_scale"]) == pytest.approx(10.0, abs=1e-5)


def test_bad_arguments_raise_value_error():
    for kwargs, field in (
        ({"init_scale": 0.0}, "init_scale"),
        ({"init_scale": -1.0}, "init_scale"),
        ({"init_scale": "big"}, "init_scale"),
        ({"max_scale": 0.0}, "max_scale"),
        ({"init_scale": 200.0}, "max_scale"),
        ({"init_bias": "zero"}, "init_bias"),
    ):
        with pytest.raises(ValueError, match=field):
            LogitScale(**kwargs)
