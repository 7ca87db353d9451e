import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

from mmkeras.encoders.tf_hub_encoder import TFHubEncoder
from mmkeras.encoders.tf_hub_layer import TFHubLayer
from mmkeras.export.encoder_export import export_encoder

IMAGES = np.random.default_rng(0).uniform(-1, 1, size=(3, 8, 8, 3)).astype("float32")
TOKEN_IDS = np.array([[4, 7, 3, 0, 0], [5, 3, 0, 0, 0]], "int32")


def _image_tower(dtype=None):
    """A Conv/Dense image tower following the encoder convention."""
    images = keras.Input((8, 8, 3), name="images")
    x = keras.layers.Conv2D(6, 3, strides=2, padding="same", dtype=dtype, name="conv")(images)
    x = keras.layers.Dropout(0.5, name="dropout")(x)
    sequence = keras.layers.Reshape((16, 6), name="tokens")(x)
    sequence = keras.layers.Dense(4, dtype=dtype, name="proj")(sequence)
    pooled = keras.layers.GlobalAveragePooling1D(dtype=dtype, name="pool")(sequence)
    return keras.Model(images, {"sequence": sequence, "pooled": pooled}, name="tiny_image_tower")


def _text_tower():
    token_ids = keras.Input((None,), dtype="int32", name="token_ids")
    sequence = keras.layers.Embedding(10, 4, name="embed")(token_ids)
    mask = keras.ops.not_equal(token_ids, 0)
    pooled = keras.ops.sum(sequence * keras.ops.cast(mask, "float32")[:, :, None], axis=1)
    return keras.Model(token_ids, {"sequence": sequence, "pooled": pooled, "padding_mask": mask})


def test_pooled_round_trip_through_tf_hub_layer(tmp_path):
    tower = _image_tower()
    path = export_encoder(tower, str(tmp_path / "tower"))
    expected = tower(IMAGES)
    layer = TFHubLayer(path)
    np.testing.assert_allclose(layer(IMAGES), expected["pooled"], rtol=1e-5, atol=1e-6)
    # It also works symbolically, inside a Keras 3 functional model.
    images = keras.Input((8, 8, 3))
    model = keras.Model(images, TFHubLayer(path)(images))
    assert tuple(model.output.shape) == (None, 4)
    np.testing.assert_allclose(model(IMAGES), expected["pooled"], rtol=1e-5, atol=1e-6)


def test_sequence_and_serving_signature(tmp_path):
    tower = _image_tower()
    path = export_encoder(tower, str(tmp_path / "tower"), include_sequence=True)
    expected = tower(IMAGES)
    out = TFHubLayer(path)(IMAGES)
    assert sorted(out) == ["pooled", "sequence"]
    np.testing.assert_allclose(out["sequence"], expected["sequence"], rtol=1e-5, atol=1e-6)
    loaded = tf.saved_model.load(path)
    served = loaded.signatures["serving_default"](images=tf.constant(IMAGES))
    np.testing.assert_allclose(served["pooled"], expected["pooled"], rtol=1e-5, atol=1e-6)
    assert len(loaded.trainable_variables) == len(tower.trainable_weights)
    # Training mode reaches the tower (its dropout is active only then).
    assert not np.allclose(loaded(tf.constant(IMAGES), training=True)["sequence"], expected["sequence"])


def test_round_trip_through_tf_hub_encoder(tmp_path):
    tower = _image_tower()
    path = export_encoder(tower, str(tmp_path / "tower"), include_sequence=True)
    encoder = TFHubEncoder(path, modality="image", input_shape=(8, 8, 3))
    out, expected = encoder(IMAGES), tower(IMAGES)
    np.testing.assert_allclose(out["sequence"], expected["sequence"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["pooled"], expected["pooled"], rtol=1e-5, atol=1e-6)


def test_text_tower_keeps_padding_mask(tmp_path):
    tower = _text_tower()
    path = export_encoder(tower, str(tmp_path / "text"), include_sequence=True)
    out = TFHubLayer(path)(TOKEN_IDS)
    np.testing.assert_array_equal(out["padding_mask"], TOKEN_IDS != 0)
    encoder = TFHubEncoder(path, modality="text")
    np.testing.assert_allclose(encoder(TOKEN_IDS)["pooled"], tower(TOKEN_IDS)["pooled"], rtol=1e-6)
    np.testing.assert_array_equal(encoder(TOKEN_IDS)["padding_mask"], TOKEN_IDS != 0)


def test_exported_tower_fine_tunes(tmp_path):
    tower = _image_tower()
    tower.trainable = False  # frozen here, still fine-tunable by whoever loads it
    path = export_encoder(tower, str(tmp_path / "tower"))
    layer = TFHubLayer(path, trainable=True)
    assert [w.name for w in layer.trainable_weights] == ["conv_kernel", "conv_bias", "proj_kernel", "proj_bias"]
    assert len(layer.non_trainable_weights) == 1  # the dropout seed
    images = keras.Input((8, 8, 3))
    model = keras.Model(images, layer(images))
    model.compile(keras.optimizers.SGD(0.1), "mse")
    before = [w.numpy().copy() for w in layer.trainable_weights]
    model.fit(IMAGES, np.ones((3, 4), "float32"), epochs=1, verbose=0)
    assert any(not np.allclose(b, w.numpy()) for b, w in zip(before, layer.trainable_weights))


def test_bf16_tower_exports_float32(tmp_path):
    tower = _image_tower(dtype="mixed_bfloat16")
    path = export_encoder(tower, str(tmp_path / "bf16"))
    out = tf.saved_model.load(path)(tf.constant(IMAGES))
    assert out.dtype == tf.float32
    np.testing.assert_allclose(out, tf.cast(tower(IMAGES)["pooled"], "float32"), rtol=1e-6)


def test_re_export_of_a_tower_holding_a_hub_layer(tmp_path):
    tower = _image_tower()
    first = export_encoder(tower, str(tmp_path / "first"), include_sequence=True)
    wrapper = TFHubEncoder(first, modality="image", input_shape=(8, 8, 3), trainable=True)
    second = export_encoder(wrapper, str(tmp_path / "second"))
    np.testing.assert_allclose(TFHubLayer(second)(IMAGES), tower(IMAGES)["pooled"], rtol=1e-5, atol=1e-6)


class _Tokenizing(tf.Module):
    """raw strings -> {"sequence", "pooled"} through a vocabulary-file lookup table (an asset)."""

    def __init__(self, vocab_file):
        super().__init__()
        index = tf.lookup.TextFileIndex
        initializer = tf.lookup.TextFileInitializer(
            vocab_file, tf.string, index.WHOLE_LINE, tf.int64, index.LINE_NUMBER
        )
        self.table = tf.lookup.StaticHashTable(initializer, -1)
        self.embeddings = tf.Variable(np.random.default_rng(5).normal(size=(5, 3)).astype("float32"))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def __call__(self, text):
        ids = self.table.lookup(tf.strings.split(text)).to_tensor(-1) + 1
        sequence = tf.gather(self.embeddings, ids)
        return {"sequence": sequence, "pooled": tf.reduce_mean(sequence, axis=1)}


def test_re_export_keeps_hub_tables_and_assets(tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("red\nblue\nsquare\ncircle\n")
    original = str(tmp_path / "tokenizing")
    tf.saved_model.save(_Tokenizing(str(vocab)), original)
    vocab.unlink()  # the SavedModel carries its own copy of the vocabulary
    tower = TFHubEncoder(original, modality="text", input_kind="strings")
    text = tf.constant(["red square", "blue circle circle"])
    expected = tower(text)
    path = export_encoder(tower, str(tmp_path / "re_exported"), include_sequence=True)
    shutil.rmtree(original)
    out = TFHubLayer(path)(text)
    np.testing.assert_allclose(out["sequence"], expected["sequence"], rtol=1e-6)
    np.testing.assert_allclose(out["pooled"], expected["pooled"], rtol=1e-6)
    assert not np.allclose(out["pooled"][0], out["pooled"][1])


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="encoder"):
        export_encoder(keras.layers.Dense(2), str(tmp_path / "a"))
    x = keras.Input((3,))
    with pytest.raises(ValueError, match="pooled"):
        export_encoder(keras.Model(x, {"vector": keras.layers.Dense(2)(x)}), str(tmp_path / "b"))
    with pytest.raises(ValueError, match="include_sequence"):
        pooled_only = keras.Model(x, {"pooled": keras.layers.Dense(2)(x)})
        export_encoder(pooled_only, str(tmp_path / "c"), include_sequence=True)
    with pytest.raises(ValueError, match="path"):
        export_encoder(_image_tower(), "")
