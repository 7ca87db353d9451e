import numpy as np
import pytest
import tensorflow as tf

import keras

from mmkeras.export.serving_signatures import save_signatures

X = tf.TensorSpec([None, 3], tf.float32, name="x")
TEXT = tf.TensorSpec([None], tf.string, name="text")


class _Lookup(keras.layers.Layer):
    """A layer owning a TensorFlow resource (a lookup table), like a tokenizer."""

    def __init__(self):
        super().__init__(name="lookup")
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(["a", "b"], [1, 2], tf.string, tf.int64), default_value=0
        )

    def call(self, text):
        return self.table.lookup(text)


def _model():
    inputs = keras.Input((3,))
    return keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Dense(4)(inputs)))


def test_signatures_are_traced_once_and_reload_with_the_same_outputs(tmp_path):
    model, lookup = _model(), _Lookup()
    traces = {"predict": 0, "ids": 0}

    def predict(x):
        traces["predict"] += 1
        return {"y": model(x, training=False)}

    def ids(text):
        traces["ids"] += 1
        return {"ids": lookup(text)}

    path = save_signatures(str(tmp_path / "export"), {"predict": (predict, [X]), "ids": (ids, [TEXT])},
                           models=[model], layers=[lookup])
    assert traces == {"predict": 1, "ids": 1}  # keras.export.ExportArchive traces each twice

    loaded = tf.saved_model.load(path)
    assert sorted(loaded.signatures) == ["ids", "predict", "serving_default"]
    x = np.random.default_rng(0).normal(size=(5, 3)).astype("float32")
    np.testing.assert_allclose(loaded.signatures["predict"](x=tf.constant(x))["y"], model(x), atol=1e-6)
    np.testing.assert_allclose(loaded.signatures["serving_default"](x=tf.constant(x))["y"], model(x), atol=1e-6)
    np.testing.assert_array_equal(loaded.ids(tf.constant(["b", "a", "zz"]))["ids"], [2, 1, 0])
    # Only the variables are kept: the same values, not a Keras object.
    assert len(loaded.model_variables) == len(model.variables)
    for saved, original in zip(loaded.model_variables, model.variables):
        np.testing.assert_array_equal(saved.numpy(), original.numpy())


def test_needs_an_endpoint(tmp_path):
    with pytest.raises(ValueError, match="`endpoints` must name at least one signature"):
        save_signatures(str(tmp_path / "export"), {})
