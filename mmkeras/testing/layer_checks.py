"""Checks every public mmkeras layer must pass: config, `.keras`, XLA and bf16.

The test suite runs these on each layer, loss and model; users writing their own
layers for mmkeras builders can run them too.
"""

import os

import keras
import numpy as np
import tensorflow as tf


def _to_numpy(structure):
    return tf.nest.map_structure(lambda x: np.asarray(keras.ops.convert_to_numpy(x)), structure)


def _assert_close(actual, expected, atol, rtol, what):
    actual, expected = _to_numpy(actual), _to_numpy(expected)
    tf.nest.assert_same_structure(actual, expected)
    for a, e in zip(tf.nest.flatten(actual), tf.nest.flatten(expected)):
        np.testing.assert_allclose(
            a.astype("float64") if a.dtype.kind == "f" else a,
            e.astype("float64") if e.dtype.kind == "f" else e,
            atol=atol,
            rtol=rtol,
            err_msg=f"{what} differs",
        )


def _symbolic_inputs(call_inputs):
    """Builds keras.Input placeholders matching a dict of example arrays."""
    return {
        name: keras.Input(shape=np.shape(value)[1:], dtype=str(np.asarray(value).dtype), name=name)
        for name, value in call_inputs.items()
    }


def run_layer_checks(
    layer_cls,
    init_kwargs,
    call_inputs,
    tmp_dir,
    *,
    call_kwargs=None,
    expected_output_shape=None,
    atol=1e-5,
    rtol=1e-5,
    check_bf16=True,
    check_jit=True,
    check_keras_file=True,
):
    """Runs the standard layer checks and returns the eager outputs.

    Args:
        layer_cls: the layer class under test.
        init_kwargs: dict of constructor arguments.
        call_inputs: dict of example input arrays (batch first), passed to `call`
            as keyword arguments. The first entry is the layer's main input.
        tmp_dir: a directory for the `.keras` file.
        call_kwargs: extra non-tensor keyword arguments for `call`.
        expected_output_shape: optional shape (or nested structure of shapes)
            the outputs must have.
        atol: absolute tolerance for the round-trip comparisons.
        rtol: relative tolerance for the round-trip comparisons.
        check_bf16: run the layer under `dtype="mixed_bfloat16"`.
        check_jit: compare an XLA-compiled call with the eager one.
        check_keras_file: save and load a functional model holding the layer.

    Example:

    >>> import tempfile, numpy as np, keras
    >>> outputs = run_layer_checks(
    ...     keras.layers.Dense, {"units": 3}, {"inputs": np.ones((2, 4), "float32")},
    ...     tempfile.mkdtemp())
    >>> tuple(outputs.shape)
    (2, 3)
    """
    call_kwargs = dict(call_kwargs or {})
    layer = layer_cls(**init_kwargs)
    tensors = {k: tf.convert_to_tensor(v) for k, v in call_inputs.items()}
    outputs = layer(**tensors, **call_kwargs)
    if expected_output_shape is not None:
        shapes = tf.nest.map_structure(lambda x: tuple(x.shape), outputs)
        assert shapes == expected_output_shape, f"output shape {shapes} != {expected_output_shape}"

    # get_config / from_config give the same layer.
    config = layer.get_config()
    clone = layer_cls.from_config(config)
    clone(**tensors, **call_kwargs)
    clone.set_weights(layer.get_weights())
    assert clone.get_config() == config, "config changed through from_config"
    _assert_close(clone(**tensors, **call_kwargs), outputs, atol, rtol, "from_config clone output")

    if check_keras_file:
        symbolic = _symbolic_inputs(call_inputs)
        model = keras.Model(symbolic, layer(**symbolic, **call_kwargs))
        path = os.path.join(tmp_dir, f"{layer_cls.__name__}.keras")
        model.save(path)
        restored = keras.saving.load_model(path)
        _assert_close(restored(tensors), model(tensors), atol, rtol, ".keras round-trip output")

    if check_jit:
        compiled = tf.function(lambda t: layer(**t, **call_kwargs), jit_compile=True)
        _assert_close(compiled(tensors), outputs, max(atol, 1e-4), max(rtol, 1e-4), "XLA output")

    if check_bf16:
        bf16_layer = layer_cls(**{**init_kwargs, "dtype": "mixed_bfloat16"})
        bf16_outputs = bf16_layer(**tensors, **call_kwargs)
        for value in tf.nest.flatten(bf16_outputs):
            value = tf.convert_to_tensor(value)
            if value.dtype.is_floating:
                assert np.all(np.isfinite(tf.cast(value, "float32").numpy())), "non-finite bf16 output"
        if check_jit:
            tf.function(lambda t: bf16_layer(**t, **call_kwargs), jit_compile=True)(tensors)
    return outputs


def run_model_checks(model, inputs, tmp_dir, *, atol=1e-5, rtol=1e-5, check_jit=True):
    """Checks a functional model: config clone, `.keras` round trip and XLA.

    Args:
        model: a built Keras model.
        inputs: example inputs in the structure the model takes.
        tmp_dir: a directory for the `.keras` file.
        atol: absolute tolerance.
        rtol: relative tolerance.
        check_jit: compare an XLA-compiled call with the eager one.

    Example:

    >>> import tempfile, numpy as np, keras
    >>> x = keras.Input((4,))
    >>> m = keras.Model(x, keras.layers.Dense(2)(x))
    >>> tuple(run_model_checks(m, np.ones((2, 4), "float32"), tempfile.mkdtemp()).shape)
    (2, 2)
    """
    outputs = model(inputs)
    clone = model.__class__.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    _assert_close(clone(inputs), outputs, atol, rtol, "from_config clone output")
    path = os.path.join(tmp_dir, f"{model.name}.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    _assert_close(restored(inputs), outputs, atol, rtol, ".keras round-trip output")
    if check_jit:
        compiled = tf.function(lambda x: model(x), jit_compile=True)
        _assert_close(compiled(inputs), outputs, max(atol, 1e-4), max(rtol, 1e-4), "XLA output")
    return outputs
