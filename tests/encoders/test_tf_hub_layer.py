import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from mmkeras.encoders.tf_hub_layer import TFHubLayer, allow_saved_models
from mmkeras.testing.layer_checks import run_layer_checks


class _Affine(tf.Module):
    """y = x @ kernel + bias; a non-trainable counter; a dict-output signature."""

    def __init__(self):
        super().__init__()
        rng = np.random.default_rng(0)
        self.kernel = tf.Variable(rng.normal(size=(4, 3)).astype("float32"), name="kernel")
        self.bias = tf.Variable(np.full((3,), 0.5, "float32"), name="bias")
        self.count = tf.Variable(7, trainable=False, name="count")

    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32)])
    def __call__(self, x):
        return tf.matmul(x, self.kernel) + self.bias

    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32)])
    def serve(self, x):
        y = self(x)
        return {"features": y, "doubled": 2.0 * y}

    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32)])
    def serve_one(self, x):
        return {"only": self(x)}


class _WithTraining(tf.Module):
    """Returns 2 * x @ kernel when training, x @ kernel otherwise."""

    def __init__(self):
        super().__init__()
        self.kernel = tf.Variable(tf.ones((4, 3)), name="kernel")

    @tf.function
    def __call__(self, x, training=False):
        return tf.matmul(x, self.kernel) * (2.0 if training else 1.0)


@pytest.fixture(scope="module")
def affine_path(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("hub") / "affine")
    module = _Affine()
    tf.saved_model.save(
        module,
        path,
        signatures={"serving_default": module.serve, "one": module.serve_one},
    )
    return path


@pytest.fixture(scope="module")
def training_path(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("hub") / "training")
    module = _WithTraining()
    for training in (False, True):
        module.__call__.get_concrete_function(tf.TensorSpec([None, 4], tf.float32), training)
    tf.saved_model.save(module, path)
    return path


def _x(n=2):
    return np.random.default_rng(1).normal(size=(n, 4)).astype("float32")


def _reference(x):
    module = _Affine()
    return x @ module.kernel.numpy() + module.bias.numpy()


def test_layer_checks(affine_path, tmp_path):
    x = _x()
    with allow_saved_models(affine_path):  # The checks reload a `.keras` file.
        out = run_layer_checks(
            TFHubLayer, {"handle": affine_path}, {"inputs": x}, str(tmp_path), expected_output_shape=(2, 3)
        )
    np.testing.assert_allclose(out, _reference(x), rtol=1e-5, atol=1e-5)


def test_symbolic_call_in_functional_model(affine_path):
    inputs = keras.Input((4,))
    outputs = TFHubLayer(affine_path)(inputs)
    assert tuple(outputs.shape) == (None, 3)
    model = keras.Model(inputs, keras.layers.Dense(2)(outputs))
    assert model(_x(5)).shape == (5, 2)


def test_weights_share_the_savedmodel_variables(affine_path):
    layer = TFHubLayer(affine_path, trainable=True)
    module = layer.hub_module
    assert [w.name for w in layer.trainable_weights] == ["kernel", "bias"]
    assert [w.name for w in layer.non_trainable_weights] == ["count"]
    assert layer.trainable_weights[0].value is module.kernel
    layer.trainable_weights[1].assign(np.zeros(3, "float32"))
    np.testing.assert_allclose(module.bias.numpy(), 0.0)
    frozen = TFHubLayer(affine_path)
    assert frozen.trainable_weights == [] and len(frozen.weights) == 3


def _fit_once(layer):
    inputs = keras.Input((4,))
    model = keras.Model(inputs, layer(inputs))
    model.compile(keras.optimizers.SGD(0.1), "mse")
    model.fit(_x(8), np.ones((8, 3), "float32"), batch_size=8, epochs=1, verbose=0)
    return model


def test_fit_updates_hub_variables_only_when_trainable(affine_path):
    original = _Affine().kernel.numpy()
    tuned = TFHubLayer(affine_path, trainable=True)
    _fit_once(tuned)
    assert not np.allclose(tuned.hub_module.kernel.numpy(), original)
    assert not np.allclose(tuned.hub_module.bias.numpy(), 0.5)
    assert int(tuned.hub_module.count.numpy()) == 7

    frozen = TFHubLayer(affine_path, trainable=False)
    with pytest.warns(UserWarning, match="does not have any trainable weights"):
        model = _fit_once(frozen)
    assert model.trainable_weights == []
    np.testing.assert_array_equal(frozen.hub_module.kernel.numpy(), original)
    frozen.trainable = True  # Unfreezing exposes the SavedModel's trainable variables again.
    assert [w.name for w in model.trainable_weights] == ["kernel", "bias"]


def test_gradient_matches_analytic(affine_path):
    layer = TFHubLayer(affine_path, trainable=True)
    x = _x(3)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(x))
    grads = tape.gradient(loss, layer.trainable_weights)
    np.testing.assert_allclose(grads[0].numpy(), np.repeat(x.sum(0)[:, None], 3, axis=1), rtol=1e-5)
    np.testing.assert_allclose(grads[1].numpy(), np.full(3, 3.0), rtol=1e-6)


def test_keras_file_restores_fine_tuned_values(affine_path, tmp_path):
    layer = TFHubLayer(affine_path, trainable=True)
    model = _fit_once(layer)
    tuned_kernel = layer.hub_module.kernel.numpy()
    path = str(tmp_path / "tuned.keras")
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=False)  # The caller trusts its own file.
    restored_layer = [lyr for lyr in restored.layers if isinstance(lyr, TFHubLayer)][0]
    assert restored_layer.trainable
    np.testing.assert_allclose(restored_layer.hub_module.kernel.numpy(), tuned_kernel)
    assert not np.allclose(restored_layer.hub_module.kernel.numpy(), _Affine().kernel.numpy())
    np.testing.assert_allclose(restored(_x()), model(_x()), rtol=1e-6)


def test_config_round_trip(affine_path):
    layer = TFHubLayer(affine_path, signature="serving_default", output_key="doubled", name="hub")
    config = layer.get_config()
    assert config["handle"] == affine_path and config["output_key"] == "doubled"
    clone = TFHubLayer.from_config(config)
    assert clone.get_config() == config
    np.testing.assert_allclose(clone(_x()), 2 * _reference(_x()), rtol=1e-5)


def test_signature_outputs(affine_path):
    x = _x()
    as_dict = TFHubLayer(affine_path, signature="serving_default", signature_outputs_as_dict=True)
    out = as_dict(x)
    assert sorted(out) == ["doubled", "features"]
    np.testing.assert_allclose(out["doubled"], 2 * _reference(x), rtol=1e-5)
    symbolic = as_dict(keras.Input((4,)))
    assert tuple(symbolic["features"].shape) == (None, 3)
    single = TFHubLayer(affine_path, signature="one")
    np.testing.assert_allclose(single(x), _reference(x), rtol=1e-5)
    keyed = TFHubLayer(affine_path, signature="serving_default", output_key="features")
    np.testing.assert_allclose(keyed({"x": x}), _reference(x), rtol=1e-5)


def test_mixed_bfloat16_and_xla(affine_path):
    x = _x()
    layer = TFHubLayer(affine_path, dtype="mixed_bfloat16")
    out = layer(x)
    assert out.dtype == tf.bfloat16
    np.testing.assert_allclose(tf.cast(out, "float32"), _reference(x), rtol=2e-2, atol=2e-2)
    compiled = tf.function(lambda t: layer(t), jit_compile=True)
    np.testing.assert_allclose(tf.cast(compiled(tf.constant(x)), "float32"), tf.cast(out, "float32"))


def test_training_argument_only_when_trainable(training_path):
    x = np.ones((1, 4), "float32")
    tuned = TFHubLayer(training_path, trainable=True)
    assert float(tuned(x, training=True)[0, 0]) == 8.0
    assert float(tuned(x, training=False)[0, 0]) == 4.0
    assert float(tuned(x)[0, 0]) == 4.0
    frozen = TFHubLayer(training_path)
    assert float(frozen(x, training=True)[0, 0]) == 4.0


def test_bad_arguments(affine_path, tmp_path):
    with pytest.raises(ValueError, match="handle"):
        TFHubLayer("")
    with pytest.raises(ValueError, match="handle"):
        TFHubLayer(str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="signature"):
        TFHubLayer(affine_path, signature="nope")
    with pytest.raises(ValueError, match="output_key"):
        TFHubLayer(affine_path, signature="serving_default", output_key="nope")
    with pytest.raises(ValueError, match="output_key"):
        TFHubLayer(affine_path, signature="serving_default")
    with pytest.raises(ValueError, match="signature_outputs_as_dict"):
        TFHubLayer(affine_path, signature_outputs_as_dict=True)
    with pytest.raises(ValueError, match="arguments"):
        TFHubLayer(affine_path, arguments=[1])
    no_call = str(tmp_path / "no_call")
    tf.saved_model.save(tf.Module(), no_call)
    with pytest.raises(ValueError, match="__call__"):
        TFHubLayer(no_call)


_MIRRORED_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras, numpy as np
    from mmkeras.encoders.tf_hub_layer import TFHubLayer, allow_saved_models

    handle = sys.argv[1]
    x = np.random.default_rng(1).normal(size=(8, 4)).astype("float32")
    y = np.ones((8, 3), "float32")

    def fit(layer):
        inputs = keras.Input((4,))
        model = keras.Model(inputs, layer(inputs))
        model.compile(keras.optimizers.SGD(0.1), "mse")
        model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
        return model

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        layer = TFHubLayer(handle, trainable=True)
        fit(layer)
    kernel = layer.hub_module.kernel
    reference = TFHubLayer(handle, trainable=True)
    fit(reference)
    print(json.dumps({
        "replicas": strategy.num_replicas_in_sync,
        "distributed": isinstance(kernel, tf.distribute.DistributedValues),
        "per_replica": [v.numpy().tolist() for v in kernel.values],
        "reference": reference.hub_module.kernel.numpy().tolist(),
    }))
    """
)


def test_mirrored_strategy_matches_single_device(affine_path):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [sys.executable, "-c", _MIRRORED_SCRIPT, affine_path],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["replicas"] == 2 and report["distributed"]
    reference = np.array(report["reference"])
    assert not np.allclose(reference, _Affine().kernel.numpy())
    for replica in report["per_replica"]:
        np.testing.assert_allclose(replica, reference, rtol=1e-5, atol=1e-6)
