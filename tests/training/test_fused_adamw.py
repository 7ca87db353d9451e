"""`FusedAdamW` makes the same updates as `keras.optimizers.AdamW`, in fewer ops."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mmkeras.testing.distributed import run_python
from mmkeras.training import FusedAdamW

EXCLUDED = ["bias", "gamma", "beta"]


def _schedule():
    return keras.optimizers.schedules.CosineDecay(0.0, 40, alpha=0.01, warmup_target=2e-2, warmup_steps=4)


def _keras_adamw(clipnorm=1.0):
    optimizer = keras.optimizers.AdamW(_schedule(), weight_decay=0.05, clipnorm=clipnorm, beta_2=0.98)
    optimizer.exclude_from_weight_decay(var_names=EXCLUDED)
    return optimizer


def _fused(clipnorm=1.0):
    return FusedAdamW(_schedule(), weight_decay=0.05, clipnorm=clipnorm, beta_2=0.98,
                      exclude_from_weight_decay=EXCLUDED)


def _model():
    keras.utils.set_random_seed(0)
    return keras.Sequential([
        keras.Input((6,)), keras.layers.Dense(16, activation="relu"), keras.layers.LayerNormalization(), keras.layers.Dense(5),
    ])


def _data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(48, 6)).astype("float32"), rng.integers(0, 5, size=48)


def _fit(optimizer, jit_compile=False, epochs=2):
    model = _model()
    model.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=jit_compile)
    x, y = _data()
    model.fit(x, y, batch_size=8, epochs=epochs, shuffle=False, verbose=0)
    return model


@pytest.mark.parametrize("jit_compile", [False, True])
def test_same_weights_as_keras_adamw(jit_compile):
    # 12 steps through warmup and decay, with decayed and excluded variables.
    expected = _fit(_keras_adamw(), jit_compile).get_weights()
    actual = _fit(_fused(), jit_compile).get_weights()
    initial = _model().get_weights()
    for a, e, i in zip(actual, expected, initial):
        np.testing.assert_allclose(a, e, atol=2e-6, rtol=0)
        assert np.abs(a - i).max() > 1e-3  # every variable moved


def test_a_sparse_gradient_updates_like_its_dense_sum():
    # An embedding's gradient with a repeated row: Adam sees the summed row.
    # (Keras' own Adam squares the slices before summing repeated rows.)
    def updated(gradient):
        variable = keras.Variable(np.arange(12.0).reshape(4, 3), name="embeddings")
        optimizer = FusedAdamW(0.1, weight_decay=0.01)
        optimizer.build([variable])
        for _ in range(3):
            optimizer.apply([gradient], [variable])
        return variable.numpy()

    sparse = tf.IndexedSlices(tf.constant([[1.0, 2, 3], [4, 5, 6], [-1, 0, 2]]), tf.constant([2, 0, 2]),
                              tf.constant([4, 3]))
    np.testing.assert_allclose(updated(sparse), updated(tf.convert_to_tensor(sparse)), atol=1e-7, rtol=0)


def test_excluded_variables_are_not_decayed():
    # With zero gradients Adam leaves every variable alone: only the decay moves them.
    model = _model()
    optimizer = FusedAdamW(0.1, weight_decay=0.5, exclude_from_weight_decay=EXCLUDED)
    optimizer.build(model.trainable_variables)
    before = [v.numpy() for v in model.trainable_variables]
    optimizer.apply([tf.zeros_like(v) for v in model.trainable_variables], model.trainable_variables)
    for variable, old in zip(model.trainable_variables, before):
        new = variable.numpy()
        if any(name in variable.path for name in EXCLUDED):
            np.testing.assert_array_equal(new, old, err_msg=variable.path)
        else:
            np.testing.assert_allclose(new, old * (1 - 0.5 * 0.1), rtol=1e-6, err_msg=variable.path)


def test_fewer_ops_than_keras_adamw():
    def traced_ops(optimizer):
        variables = [keras.Variable(tf.ones([4, 4]), name=f"kernel_{i}") for i in range(8)]
        optimizer.build(variables)
        graph = tf.function(lambda: optimizer.apply([tf.ones([4, 4])] * 8, variables)).get_concrete_function().graph
        return len(graph.get_operations())

    # Without clipping, which both leave to Keras.
    fused, reference = traced_ops(_fused(clipnorm=None)), traced_ops(_keras_adamw(clipnorm=None))
    assert 2 * fused < reference, (fused, reference)


def test_config_and_keras_file_round_trip(tmp_path):
    model = _fit(_fused(), epochs=1)
    config = model.optimizer.get_config()
    assert config["weight_decay"] == 0.05 and config["exclude_from_weight_decay"] == EXCLUDED
    again = FusedAdamW.from_config(config)
    serialized = keras.saving.serialize_keras_object
    assert serialized(again) == serialized(model.optimizer)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert isinstance(loaded.optimizer, FusedAdamW)
    assert loaded.optimizer.exclude_from_weight_decay_names == tuple(EXCLUDED)
    assert int(loaded.optimizer.iterations) == int(model.optimizer.iterations) == 6
    # Training on from the file equals training on in memory.
    x, y = _data()
    model.fit(x, y, batch_size=8, shuffle=False, verbose=0)
    loaded.fit(x, y, batch_size=8, shuffle=False, verbose=0)
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-6, rtol=0)


def test_a_saved_model_loads_after_import_mmkeras_alone(tmp_path):
    """`model.keras` files of `mmkeras train` hold a FusedAdamW: `import mmkeras` must register it."""
    _fit(_fused(), epochs=1).save(tmp_path / "m.keras")
    code = (
        "import keras, mmkeras\n"
        "from mmkeras.testing.distributed import print_results\n"
        f"model = keras.saving.load_model({str(tmp_path / 'm.keras')!r})\n"
        "print_results({'optimizer': type(model.optimizer).__name__, 'steps': int(model.optimizer.iterations)})\n"
    )
    assert run_python(["-c", code]) == {"optimizer": "FusedAdamW", "steps": 6}


def test_mixed_bfloat16_updates_float32_variables():
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = _fit(_fused(), jit_compile=True, epochs=1)
    finally:
        keras.config.set_dtype_policy("float32")
    assert all(v.dtype == "float32" for v in model.trainable_variables)
    assert all(np.isfinite(w).all() for w in model.get_weights())
    assert int(model.optimizer.iterations) == 6


def test_bad_arguments():
    with pytest.raises(ValueError, match="weight_decay"):
        FusedAdamW(weight_decay=-1.0)
    with pytest.raises(ValueError, match="amsgrad"):
        FusedAdamW(amsgrad=True)
    with pytest.raises(ValueError, match="exclude_from_weight_decay"):
        FusedAdamW(exclude_from_weight_decay="bias")


_MIRRORED = """
import numpy as np, keras, tensorflow as tf
from mmkeras.testing.distributed import print_results, split_cpu
split_cpu(2)
from mmkeras.training import FusedAdamW, get_strategy

def fit(make, strategy):
    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(16, activation="relu"),
                                  keras.layers.LayerNormalization(), keras.layers.Dense(5)])
        model.compile(make(), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    model.fit(rng.normal(size=(32, 6)), rng.integers(0, 5, size=32), batch_size=8, shuffle=False, verbose=0)
    return model.get_weights()

def make_keras():
    optimizer = keras.optimizers.AdamW(1e-2, weight_decay=0.05, clipnorm=1.0)
    optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    return optimizer

mirrored = get_strategy("mirrored")
fused = fit(lambda: FusedAdamW(1e-2, weight_decay=0.05, clipnorm=1.0,
                               exclude_from_weight_decay=["bias", "gamma", "beta"]), mirrored)
reference = fit(make_keras, mirrored)
print_results({"replicas": mirrored.num_replicas_in_sync,
               "diff": max(float(np.abs(a - b).max()) for a, b in zip(fused, reference))})
"""


def test_mirrored_strategy_equals_keras_adamw():
    results = run_python(["-c", _MIRRORED], timeout=300)
    assert results["replicas"] == 2
    assert results["diff"] < 2e-6, results
