"""A `.keras` file never makes `load_model` fetch or load a SavedModel the caller did not name."""

import json
import zipfile

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_hub as hub

from mmkeras.encoders import TFHubEncoder, TFHubLayer, allow_saved_models

URL = "http://127.0.0.1:9/x"


class _Affine(tf.Module):
    def __init__(self, scale):
        super().__init__()
        self.kernel = tf.Variable(tf.fill((4, 3), scale), name="kernel")

    @tf.function(input_signature=[tf.TensorSpec(None, tf.float32)])
    def __call__(self, x):
        return tf.matmul(tf.reshape(x, [-1, 4]), self.kernel)


@pytest.fixture
def saved_models(tmp_path):
    """Two SavedModels of the same shape: the one the model was built with and another one."""
    paths = {}
    for name, scale in (("built_with", 1.0), ("other", 2.0)):
        paths[name] = str(tmp_path / name)
        tf.saved_model.save(_Affine(scale), paths[name])
    return paths


@pytest.fixture
def loads(monkeypatch):
    """Records every `hub.load` / `tf.saved_model.load`; a URL is refused before any network access."""
    calls = []

    def recording(original):
        def load(handle, *args, **kwargs):
            calls.append(str(handle))
            if "://" in str(handle):
                raise RuntimeError(f"network access to {handle}")
            return original(handle, *args, **kwargs)

        return load

    monkeypatch.setattr(hub, "load", recording(hub.load))
    monkeypatch.setattr(tf.saved_model, "load", recording(tf.saved_model.load))
    return calls


def _keras_file(model, path, old_handle, new_handle):
    """Saves `model` to `path` with its stored handle rewritten to `new_handle`."""
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    config = members["config.json"].decode()
    assert json.dumps(old_handle) in config
    members["config.json"] = config.replace(json.dumps(old_handle), json.dumps(new_handle)).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _layer_model(handle):
    inputs = keras.Input((4,))
    return keras.Model(inputs, TFHubLayer(handle)(inputs))


def _encoder_model(handle):
    return TFHubEncoder(handle, input_shape=(2, 2, 1))


@pytest.mark.parametrize("build", [_layer_model, _encoder_model], ids=["TFHubLayer", "TFHubEncoder"])
def test_load_model_refuses_stored_handles_it_was_not_told_to_load(build, saved_models, loads, tmp_path):
    model = build(saved_models["built_with"])
    for new_handle, why in ((URL, "not a local path"), (saved_models["other"], "not allowed")):
        path = _keras_file(model, str(tmp_path / "model.keras"), saved_models["built_with"], new_handle)
        loads.clear()
        with pytest.raises(ValueError, match=why) as error:
            keras.saving.load_model(path)
        message = str(error.value)
        assert repr(new_handle) in message and "allow_saved_models" in message
        assert "enable_unsafe_deserialization" in message
        assert loads == [], f"load_model loaded {loads}"

    # The handle the caller names is loaded: by an allow-list or by turning safe mode off.
    with allow_saved_models([saved_models["other"]]):
        restored = keras.saving.load_model(path)
    assert set(loads) == {saved_models["other"]}
    x = np.ones((2, *model.input_shape[1:]), "float32")
    np.testing.assert_allclose(_pooled(restored(x)), _pooled(model(x)))
    keras.saving.load_model(path, safe_mode=False)
    with pytest.raises(ValueError, match="not allowed"):  # The allow-list ended with its `with` block.
        keras.saving.load_model(path)


def _pooled(outputs):
    return outputs["pooled"] if isinstance(outputs, dict) else outputs


def test_a_handle_named_in_code_still_loads(saved_models, loads):
    layer = TFHubLayer(saved_models["other"])
    assert layer(np.ones((1, 4), "float32")).shape == (1, 3)
    clone = TFHubLayer.from_config(layer.get_config())  # Outside load_model: the caller's own config.
    assert clone.handle == saved_models["other"] and loads
