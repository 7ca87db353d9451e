import keras
import numpy as np
import pytest
import tensorflow as tf

from mmkeras.encoders.tf_hub_encoder import TFHubEncoder
from mmkeras.encoders.tf_hub_layer import allow_saved_models
from mmkeras.testing.layer_checks import run_layer_checks, run_model_checks

RNG = np.random.default_rng(0)
IMAGES = RNG.uniform(-1, 1, size=(2, 8, 8, 3)).astype("float32")
TOKEN_IDS = np.array([[5, 9, 3, 0], [4, 4, 2, 7]], "int32")


class _ImageVector(tf.Module):
    """images [B, 8, 8, 3] -> a feature vector [B, 5]."""

    def __init__(self):
        super().__init__()
        self.kernel = tf.Variable(np.random.default_rng(1).normal(size=(3, 5)).astype("float32"))

    @tf.function(input_signature=[tf.TensorSpec([None, 8, 8, 3], tf.float32)])
    def __call__(self, images):
        return tf.reduce_mean(tf.tensordot(images, self.kernel, axes=1), axis=[1, 2])


class _ImageMap(tf.Module):
    """images [B, 8, 8, 3] -> a feature map [B, 4, 4, 6]."""

    def __init__(self):
        super().__init__()
        self.kernel = tf.Variable(np.random.default_rng(2).normal(size=(2, 2, 3, 6)).astype("float32"))

    @tf.function(input_signature=[tf.TensorSpec([None, 8, 8, 3], tf.float32)])
    def __call__(self, images):
        return tf.nn.conv2d(images, self.kernel, strides=2, padding="SAME")


class _TextDict(tf.Module):
    """token ids -> {"sequence_output", "pooled_output"}, BERT style."""

    def __init__(self):
        super().__init__()
        self.table = tf.Variable(np.random.default_rng(3).normal(size=(16, 6)).astype("float32"))

    def _encode(self, ids):
        sequence = tf.gather(self.table, ids)
        return {"sequence_output": sequence, "pooled_output": tf.tanh(sequence[:, 0])}


class _TextIds(_TextDict):
    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32)])
    def __call__(self, ids):
        return self._encode(ids)


class _TextBert(_TextDict):
    @tf.function(
        input_signature=[
            {
                "input_word_ids": tf.TensorSpec([None, None], tf.int32),
                "input_mask": tf.TensorSpec([None, None], tf.int32),
                "input_type_ids": tf.TensorSpec([None, None], tf.int32),
            }
        ]
    )
    def __call__(self, inputs):
        outputs = self._encode(inputs["input_word_ids"])
        # Make the mask observable: masked positions become zero.
        mask = tf.cast(inputs["input_mask"], tf.float32)[:, :, None]
        return {
            "sequence_output": outputs["sequence_output"] * mask,
            "pooled_output": outputs["pooled_output"],
        }


class _Strings(tf.Module):
    """raw strings [B] -> a vector [B, 4] (its own 'preprocessing')."""

    def __init__(self):
        super().__init__()
        self.table = tf.Variable(np.random.default_rng(4).normal(size=(10, 4)).astype("float32"))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def __call__(self, text):
        return tf.gather(self.table, tf.strings.to_hash_bucket_fast(text, 10))


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    root = tmp_path_factory.mktemp("hub_encoders")
    result = {}
    for name, module in [
        ("vector", _ImageVector()),
        ("map", _ImageMap()),
        ("text_ids", _TextIds()),
        ("text_bert", _TextBert()),
        ("strings", _Strings()),
    ]:
        result[name] = str(root / name)
        tf.saved_model.save(module, result[name])
    return result


@pytest.fixture(autouse=True)
def allowed(paths):
    """The tests reload `.keras` files of towers on these SavedModels: they name them."""
    with allow_saved_models(list(paths.values())):
        yield


def test_image_vector_tower_checks(paths, tmp_path):
    kwargs = {"handle": paths["vector"], "input_shape": (8, 8, 3)}
    out = run_layer_checks(TFHubEncoder, kwargs, {"inputs": IMAGES}, str(tmp_path))
    expected = np.mean(IMAGES @ _ImageVector().kernel.numpy(), axis=(1, 2))
    np.testing.assert_allclose(out["pooled"], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["sequence"], expected[:, None, :], rtol=1e-5, atol=1e-6)
    assert TFHubEncoder(**kwargs).output_dim == 5


def test_image_rescaling_for_unit_range_hub_models(paths, tmp_path):
    encoder = TFHubEncoder(paths["vector"], input_shape=(8, 8, 3), image_scale=0.5, image_offset=0.5)
    expected = np.mean(((IMAGES + 1) / 2) @ _ImageVector().kernel.numpy(), axis=(1, 2))
    out = run_model_checks(encoder, IMAGES, str(tmp_path))
    np.testing.assert_allclose(out["pooled"], expected, rtol=1e-5, atol=1e-6)
    assert encoder.get_config()["image_scale"] == 0.5


def test_image_feature_map_becomes_sequence(paths, tmp_path):
    encoder = TFHubEncoder(paths["map"], input_shape=(8, 8, 3))
    out = run_model_checks(encoder, IMAGES, str(tmp_path))
    feature_map = tf.nn.conv2d(IMAGES, _ImageMap().kernel, strides=2, padding="SAME").numpy()
    np.testing.assert_allclose(out["sequence"], feature_map.reshape(2, 16, 6), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out["pooled"], feature_map.mean(axis=(1, 2)), rtol=1e-5, atol=1e-5)
    assert tuple(encoder.output["sequence"].shape) == (None, 16, 6)


def test_text_tower_with_dict_outputs(paths, tmp_path):
    out = run_layer_checks(
        TFHubEncoder, {"handle": paths["text_ids"], "modality": "text"}, {"inputs": TOKEN_IDS}, str(tmp_path)
    )
    table = _TextIds().table.numpy()
    np.testing.assert_allclose(out["sequence"], table[TOKEN_IDS], rtol=1e-6)
    np.testing.assert_allclose(out["pooled"], np.tanh(table[TOKEN_IDS[:, 0]]), rtol=1e-5)
    np.testing.assert_array_equal(out["padding_mask"], TOKEN_IDS != 0)
    assert out["padding_mask"].dtype == tf.bool


def test_text_tower_explicit_keys_and_masked_mean(paths):
    sequence_only = TFHubEncoder(paths["text_ids"], modality="text", output_key="sequence_output")
    out = sequence_only(TOKEN_IDS)
    table = _TextIds().table.numpy()
    mask = (TOKEN_IDS != 0).astype("float32")[:, :, None]
    expected = (table[TOKEN_IDS] * mask).sum(1) / mask.sum(1)
    np.testing.assert_allclose(out["pooled"], expected, rtol=1e-5)
    pooled_only = TFHubEncoder(paths["text_ids"], modality="text", pooled_key="pooled_output")
    assert pooled_only(TOKEN_IDS)["sequence"].shape == (2, 4, 6)


def test_bert_style_inputs(paths):
    encoder = TFHubEncoder(paths["text_bert"], modality="text", text_input_format="bert")
    out = encoder(TOKEN_IDS)
    table = _TextBert().table.numpy()
    np.testing.assert_allclose(out["sequence"], table[TOKEN_IDS] * (TOKEN_IDS != 0)[:, :, None], rtol=1e-6)
    assert encoder.get_config()["text_input_format"] == "bert"


def test_string_inputs(paths, tmp_path):
    encoder = TFHubEncoder(paths["strings"], modality="text", input_kind="strings")
    text = tf.constant(["a red square", "two blue circles"])
    out = encoder(text)
    assert out["sequence"].shape == (2, 1, 4) and out["pooled"].shape == (2, 4)
    np.testing.assert_array_equal(out["padding_mask"], np.ones((2, 1), bool))
    path = str(tmp_path / "strings.keras")
    encoder.save(path)
    np.testing.assert_allclose(keras.saving.load_model(path)(text)["pooled"], out["pooled"])


def test_fine_tuning_and_keras_round_trip(paths, tmp_path):
    encoder = TFHubEncoder(paths["vector"], input_shape=(8, 8, 3), trainable=True)
    assert len(encoder.trainable_weights) == 1
    images = keras.Input((8, 8, 3))
    model = keras.Model(images, keras.layers.Dense(1, name="head")(encoder(images)["pooled"]))
    model.compile(keras.optimizers.SGD(0.5), "mse")
    model.fit(IMAGES, np.ones((2, 1), "float32"), epochs=1, verbose=0)
    tuned = encoder.hub_layer.hub_module.kernel.numpy()
    assert not np.allclose(tuned, _ImageVector().kernel.numpy())
    path = str(tmp_path / "tuned.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    restored_encoder = [layer for layer in restored.layers if isinstance(layer, TFHubEncoder)][0]
    np.testing.assert_allclose(restored_encoder.hub_layer.hub_module.kernel.numpy(), tuned)
    np.testing.assert_allclose(restored(IMAGES), model(IMAGES), rtol=1e-6)
    frozen = TFHubEncoder(paths["vector"], input_shape=(8, 8, 3))
    assert frozen.trainable_weights == [] and not frozen.get_config()["trainable"]


def test_mixed_bfloat16(paths):
    out = TFHubEncoder(paths["vector"], input_shape=(8, 8, 3), dtype="mixed_bfloat16")(IMAGES)
    assert out["pooled"].dtype == tf.bfloat16 and out["sequence"].dtype == tf.bfloat16


def test_bad_arguments(paths):
    with pytest.raises(ValueError, match="modality"):
        TFHubEncoder(paths["vector"], modality="audio")
    with pytest.raises(ValueError, match="input_kind"):
        TFHubEncoder(paths["text_ids"], modality="text", input_kind="bytes")
    with pytest.raises(ValueError, match="output_key"):
        TFHubEncoder(paths["text_ids"], modality="text", output_key="a", pooled_key="b")
    with pytest.raises(ValueError, match="pooled_key"):
        TFHubEncoder(paths["text_ids"], modality="text", pooled_key="nope")
    with pytest.raises(ValueError, match="image_scale"):
        TFHubEncoder(paths["text_ids"], modality="text", image_scale=0.5)
    with pytest.raises(ValueError, match="image_offset"):
        TFHubEncoder(paths["vector"], input_shape=(8, 8, 3), image_offset="half")
    with pytest.raises(ValueError, match="input_shape"):
        TFHubEncoder(paths["vector"], input_shape=(8, 8))
