"""Exports one tower alone as a TF2 SavedModel (a "reusable SavedModel").

The result follows the TF-Hub reusable SavedModel API, so any TF runtime can
load it with `tf.saved_model.load` / `hub.load`, and `TFHubLayer(path)` brings it
back into Keras 3 (frozen or fine-tuned).
"""

import keras
import tensorflow as tf


def _input_specs(encoder):
    """TensorSpecs (batch dimension free) for the encoder's inputs."""

    def spec(tensor):
        return tf.TensorSpec([None, *tensor.shape[1:]], tf.as_dtype(tensor.dtype), name=tensor.name)

    inputs = encoder.input
    if isinstance(inputs, dict):
        return {
            name: tf.TensorSpec([None, *t.shape[1:]], tf.as_dtype(t.dtype), name=name)
            for name, t in inputs.items()
        }
    if isinstance(inputs, (list, tuple)):
        raise ValueError(
            "`encoder` must take a single input tensor or a dict of inputs, "
            f"got a {type(inputs).__name__} of {len(inputs)} inputs."
        )
    return spec(inputs)


def _as_float32(value):
    value = tf.convert_to_tensor(value)
    return tf.cast(value, tf.float32) if value.dtype.is_floating else value


class _EncoderModule(tf.__internal__.tracking.AutoTrackable):
    """The exported object: `__call__`, `serving_default` and the variable lists."""

    def __init__(self, encoder, input_spec, include_sequence):
        super().__init__()
        self.encoder = encoder
        # Reusable SavedModel API: the lists TF-Hub consumers fine-tune from.
        # "Trainable" means trainable in principle (the flag each tf.Variable
        # was created with), so a tower frozen for training here can still be
        # fine-tuned by whoever loads it.
        self.variables = [v.value for v in encoder.variables]
        self.trainable_variables = [v for v in self.variables if v.trainable]
        self.regularization_losses = []
        self._include_sequence = include_sequence

        def outputs_of(inputs, training):
            outputs = self.encoder(inputs, training=training)
            keys = ["pooled", "sequence", "padding_mask"] if include_sequence else ["pooled"]
            return {k: _as_float32(outputs[k]) for k in keys if k in outputs}

        def call(inputs, training=False):
            outputs = outputs_of(inputs, training)
            return outputs if include_sequence else outputs["pooled"]

        self.__call__ = tf.function(call)
        for training in (False, True):
            self.__call__.get_concrete_function(input_spec, training)

        if isinstance(input_spec, dict):
            serve = tf.function(lambda **inputs: outputs_of(inputs, False))
            self.serving_default = serve.get_concrete_function(**input_spec)
        else:
            name = input_spec.name or "inputs"
            named_spec = tf.TensorSpec(input_spec.shape, input_spec.dtype, name=name)
            serve = tf.function(lambda x: outputs_of(x, False), input_signature=[named_spec])
            self.serving_default = serve.get_concrete_function()


def export_encoder(encoder, path, *, include_sequence=False):
    """Writes a tower (a model returning `{"sequence", "pooled", ...}`) as a SavedModel.

    The SavedModel holds:
      - `__call__(inputs, training=False)`: the pooled vector `[B, D]`, or with
        `include_sequence=True` the dict `{"pooled", "sequence"}` (plus
        `"padding_mask"` for text towers). `training` is a Python bool.
      - `signatures["serving_default"]`: the tower's input as a keyword argument
        named like the Keras input (e.g. `images`, `token_ids`), returning the
        same dict (`{"pooled"}` only unless `include_sequence`).
      - `variables`, `trainable_variables`, `regularization_losses` (the TF-Hub
        reusable SavedModel API), so `TFHubLayer(path, trainable=True)`
        fine-tunes it. `trainable_variables` lists the variables created
        trainable, even when the tower is currently frozen.

    Floating outputs are cast to float32 (so a `mixed_bfloat16` tower exports
    float32 features); the batch dimension is free.

    Args:
        encoder: a built `keras.Model` whose output is a dict with at least
            `"pooled"`, e.g. an mmkeras encoder.
        path: str, the output directory (local or `gs://`).
        include_sequence: bool, also return `"sequence"` (and `"padding_mask"`).

    Returns:
        `path`.

    Example:

    >>> import tempfile, numpy as np, keras
    >>> from mmkeras.encoders.tf_hub_layer import TFHubLayer
    >>> images = keras.Input((8, 8, 3), name="images")
    >>> seq = keras.layers.Reshape((64, 3))(images)
    >>> seq = keras.layers.Dense(4)(seq)
    >>> tower = keras.Model(images, {"sequence": seq, "pooled": keras.ops.mean(seq, axis=1)})
    >>> path = export_encoder(tower, tempfile.mkdtemp())
    >>> x = np.ones((2, 8, 8, 3), "float32")
    >>> bool(np.allclose(TFHubLayer(path)(x), tower(x)["pooled"], atol=1e-6))
    True
    """
    if not isinstance(encoder, keras.Model):
        raise ValueError(f"`encoder` must be a keras.Model, got {type(encoder).__name__}.")
    try:
        inputs, output = encoder.inputs, encoder.output
    except (AttributeError, ValueError):
        inputs, output = None, None
    if not inputs:
        raise ValueError("`encoder` must be a functional keras.Model with known inputs (`encoder.inputs`).")
    if not isinstance(output, dict) or "pooled" not in output:
        keys = sorted(output) if isinstance(output, dict) else type(output).__name__
        raise ValueError(f"`encoder` must return a dict with a 'pooled' entry, got {keys}.")
    if include_sequence and "sequence" not in output:
        raise ValueError("`include_sequence=True` but the encoder's output has no 'sequence' entry.")
    if not isinstance(path, str) or not path:
        raise ValueError(f"`path` must be a non-empty string, got {path!r}.")
    input_spec = _input_specs(encoder)
    module = _EncoderModule(encoder, input_spec, bool(include_sequence))
    tf.saved_model.save(module, path, signatures={"serving_default": module.serving_default})
    return path
