"""Shared inputs and checks for the fusion tests.

`run_layer_checks` feeds flat keyword tensors; fusion layers take a nested
modality dict, so `kit.run_checks` checks the same properties (config round
trip, `.keras` round trip of a functional model, `jit_compile`, mixed_bfloat16)
for nested inputs.
"""

import os
import types

import keras
import numpy as np
import pytest
import tensorflow as tf

BATCH = 2


def make_inputs(seed=0, numeric=False, batch=BATCH):
    """Image (6-wide, 4 tokens), text (5-wide, 3 tokens, padded) and optional numeric [B, 3]."""
    rng = np.random.default_rng(seed)

    def normal(*shape):
        return rng.normal(size=shape).astype("float32")

    inputs = {
        "image": {"sequence": normal(batch, 4, 6), "pooled": normal(batch, 6)},
        "text": {
            "sequence": normal(batch, 3, 5),
            "pooled": normal(batch, 5),
            "padding_mask": np.array([[True, True, False]] + [[True] * 3] * (batch - 1)),
        },
    }
    if numeric:
        inputs["numeric"] = {"pooled": normal(batch, 3)}
    return inputs


def presence_of(inputs, absent=None, rows=(0,)):
    """All ones, except `absent` modality set to 0 in `rows`."""
    batch = len(next(iter(inputs["image"].values())))
    presence = {name: np.ones((batch,), "float32") for name in inputs}
    if absent is not None:
        presence[absent][list(rows)] = 0.0
    return presence


def replaced(inputs, modality, rows=(0,), value=None, seed=123):
    """A copy of `inputs` with `modality`'s float features changed in `rows`."""
    rng = np.random.default_rng(seed)
    out = {m: {k: np.array(v) for k, v in entry.items()} for m, entry in inputs.items()}
    for key, array in out[modality].items():
        if array.dtype.kind == "f":
            for row in rows:
                fill = rng.normal(size=array[row].shape) * 10 if value is None else value
                array[row] = fill
    return out


def _numpy(x):
    return np.asarray(keras.ops.convert_to_numpy(x)).astype("float64")


def _close(a, b, atol, what):
    for x, y in zip(tf.nest.flatten(a), tf.nest.flatten(b)):
        np.testing.assert_allclose(_numpy(x), _numpy(y), atol=atol, rtol=atol, err_msg=what)


def _symbolic(structure, prefix=""):
    if isinstance(structure, dict):
        return {k: _symbolic(v, f"{prefix}{k}_") for k, v in structure.items()}
    array = np.asarray(structure)
    return keras.Input(shape=array.shape[1:], dtype=str(array.dtype), name=prefix.rstrip("_"))


def run_checks(
    layer_cls,
    init_kwargs,
    inputs,
    tmp_dir,
    presence=None,
    expected_shape=None,
    atol=1e-5,
    call_kwargs=None,
):
    """Config, `.keras`, XLA and bf16 checks for a layer called as `layer(inputs, presence=...)`."""
    call_kwargs = dict(call_kwargs or {})
    if presence is not None:
        call_kwargs["presence"] = presence
    tensors = tf.nest.map_structure(tf.convert_to_tensor, inputs)
    kw_tensors = tf.nest.map_structure(
        lambda x: tf.convert_to_tensor(x) if isinstance(x, np.ndarray) else x, call_kwargs
    )
    layer = layer_cls(**init_kwargs)
    outputs = layer(tensors, **kw_tensors)
    if expected_shape is not None:
        assert tf.nest.map_structure(lambda x: tuple(x.shape), outputs) == expected_shape
    for value in tf.nest.flatten(outputs):
        assert np.all(np.isfinite(_numpy(value))), "non-finite output"

    config = layer.get_config()
    clone = layer_cls.from_config(config)
    clone(tensors, **kw_tensors)
    clone.set_weights(layer.get_weights())
    assert clone.get_config() == config, "config changed through from_config"
    _close(clone(tensors, **kw_tensors), outputs, atol, "from_config clone output")

    symbolic_inputs = _symbolic(inputs)
    symbolic_kwargs = {
        k: _symbolic(v, f"{k}_") if isinstance(v, (dict, np.ndarray)) else v
        for k, v in call_kwargs.items()
    }
    model_inputs = {"inputs": symbolic_inputs}
    model_inputs.update({k: v for k, v in symbolic_kwargs.items() if isinstance(v, dict)})
    model = keras.Model(model_inputs, layer(symbolic_inputs, **symbolic_kwargs))
    data = {"inputs": tensors}
    data.update({k: v for k, v in kw_tensors.items() if isinstance(v, dict)})
    path = os.path.join(tmp_dir, f"{layer_cls.__name__}.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    _close(restored(data), model(data), atol, ".keras round-trip output")
    _close(model(data), outputs, atol, "functional model output")

    compiled = tf.function(lambda t, k: layer(t, **k), jit_compile=True)
    _close(compiled(tensors, kw_tensors), outputs, max(atol, 1e-4), "XLA output")

    bf16 = layer_cls(**{**init_kwargs, "dtype": "mixed_bfloat16"})
    for value in tf.nest.flatten(bf16(tensors, **kw_tensors)):
        assert np.all(np.isfinite(_numpy(tf.cast(value, "float32")))), "non-finite bf16 output"
    tf.function(lambda t, k: bf16(t, **k), jit_compile=True)(tensors, kw_tensors)
    return outputs


def check_absent_has_no_influence(layer, inputs, modality):
    """Row 0 has `modality` absent: finite, and unchanged whatever its features (even NaN)."""
    presence = presence_of(inputs, absent=modality, rows=(0,))
    base = _numpy(layer(inputs, presence=presence))
    assert np.all(np.isfinite(base)), "non-finite output with an absent modality"
    for other in (
        replaced(inputs, modality, rows=(0, 1)),
        replaced(inputs, modality, value=np.nan),
    ):
        out = _numpy(layer(other, presence=presence))
        assert np.all(np.isfinite(out[0]))
        np.testing.assert_allclose(out[0], base[0], atol=1e-6, err_msg="absent modality leaked")
    # The same change does move row 1, where the modality is present.
    moved = _numpy(layer(replaced(inputs, modality, rows=(0, 1)), presence=presence))
    assert not np.allclose(moved[1], base[1], atol=1e-6), f"{modality} has no effect when present"


def check_gradient_step(layer, inputs, presence=None):
    """One SGD step: every trainable weight gets a finite gradient and the output moves."""
    inputs = tf.nest.map_structure(tf.convert_to_tensor, inputs)
    before = _numpy(layer(inputs, presence=presence))
    target = tf.random.stateless_normal(before.shape, seed=(1, 2))
    with tf.GradientTape() as tape:
        out = layer(inputs, presence=presence, training=True)
        loss = tf.reduce_mean(tf.square(tf.cast(out, "float32") - target))
    grads = tape.gradient(loss, layer.trainable_variables)
    assert layer.trainable_variables
    for var, grad in zip(layer.trainable_variables, grads):
        assert grad is not None, f"no gradient for {var.path}"
        assert np.all(np.isfinite(grad.numpy())), f"non-finite gradient for {var.path}"
    keras.optimizers.SGD(0.1).apply_gradients(zip(grads, layer.trainable_variables))
    after = layer(inputs, presence=presence)
    assert not np.allclose(_numpy(after), before, atol=1e-7), "a step changed nothing"
    return float(loss)


@pytest.fixture(autouse=True)
def _seed():
    """Deterministic weight initialisation, so no test depends on a lucky draw."""
    keras.utils.set_random_seed(1234)


@pytest.fixture
def kit():
    return types.SimpleNamespace(
        make_inputs=make_inputs, presence_of=presence_of, replaced=replaced, run_checks=run_checks,
        check_absent_has_no_influence=check_absent_has_no_influence, check_gradient_step=check_gradient_step,
    )
