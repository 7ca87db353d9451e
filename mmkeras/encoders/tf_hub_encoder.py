import keras
from keras import ops

from mmkeras.encoders.encoder import Encoder
from mmkeras.encoders.tf_hub_layer import TFHubLayer

MODALITIES = ("image", "text")
INPUT_KINDS = ("token_ids", "strings")
TEXT_INPUT_FORMATS = ("ids", "bert")
_POOLED_KEYS = ("pooled", "pooled_output", "default")
_SEQUENCE_KEYS = ("sequence", "sequence_output")


def _pick(outputs, key, candidates, what):
    if key is not None:
        if key not in outputs:
            raise ValueError(
                f"`{what}`={key!r} is not an output of the hub model; outputs: {sorted(outputs)}."
            )
        return outputs[key]
    for candidate in candidates:
        if candidate in outputs:
            return outputs[candidate]
    return None


@keras.saving.register_keras_serializable(package="mmkeras")
class TFHubEncoder(Encoder):
    """An image or text tower around a TF-Hub handle / TF2 SavedModel.

    The hub model is called through `TFHubLayer`, and its output is mapped to
    the mmkeras encoder convention:

    - a dict output: `pooled` is `outputs[pooled_key]` and `sequence` is
      `outputs[sequence_key]`; without keys, "pooled" / "pooled_output" /
      "default" and "sequence" / "sequence_output" are looked up (so BERT-style
      hub encoders and `mmkeras.export.encoder_export.export_encoder` output
      work unchanged);
    - a single tensor (or the `output_key` entry): rank 2 is `pooled`, rank 3
      is `sequence`, rank 4 (a feature map) is flattened into a `sequence`.

    A missing `pooled` is the (masked, for token ids) mean of `sequence`; a
    missing `sequence` is `pooled[:, None, :]`.

    Image towers take `images` float32 `[B, *input_shape]`. Text towers take
    `token_ids` int32 `[B, L]` (`input_kind="token_ids"`; 0 is padding) or raw
    strings `text` `[B]` (`input_kind="strings"`, for hub models with their own
    preprocessing) and also return `padding_mask`: `token_ids != 0`, or all
    True for strings / vector outputs (or the hub's own "padding_mask" output).

    Args:
        handle: str, SavedModel directory or hub handle (see `TFHubLayer`).
        modality: "image" or "text".
        input_shape: shape of one example without the batch dimension.
            Defaults to `(224, 224, 3)` for images, `(None,)` for token ids and
            `()` for strings.
        input_kind: text only: "token_ids" or "strings".
        text_input_format: token ids only: "ids" passes the `[B, L]` ids, "bert"
            passes the dict `{"input_word_ids", "input_mask", "input_type_ids"}`
            of TF-Hub BERT encoders.
        signature: optional SavedModel signature to call instead of `__call__`.
        output_key: optional entry to take when the hub model returns a dict
            (the entry is then treated as a single tensor).
        sequence_key: optional dict entry holding the sequence.
        pooled_key: optional dict entry holding the pooled vector.
        arguments: optional dict of extra keyword arguments for the hub callable.
        image_scale: optional float or per-channel list; images are fed to the
            hub model as `images * image_scale + image_offset`. mmkeras images
            are in [-1, 1]; most tfhub.dev image models expect [0, 1]: pass
            `image_scale=0.5, image_offset=0.5` for them.
        image_offset: optional float or per-channel list (see `image_scale`).
        trainable: bool, fine-tune the hub variables.
        dtype: optional dtype policy (outputs are cast to its compute dtype).
        **kwargs: `keras.Model` arguments such as `name`.

    Example:

    >>> import tempfile, numpy as np, tensorflow as tf
    >>> class Features(tf.Module):
    ...     def __init__(self):
    ...         self.kernel = tf.Variable(tf.ones((3, 5)))
    ...     @tf.function(input_signature=[tf.TensorSpec([None, 8, 8, 3], tf.float32)])
    ...     def __call__(self, images):
    ...         return tf.reduce_mean(tf.matmul(tf.reshape(images, [-1, 64, 3]), self.kernel), axis=1)
    >>> path = tempfile.mkdtemp()
    >>> tf.saved_model.save(Features(), path)
    >>> tower = TFHubEncoder(path, modality="image", input_shape=(8, 8, 3))
    >>> out = tower(np.ones((2, 8, 8, 3), "float32"))
    >>> out["sequence"].shape, out["pooled"].shape, tower.output_dim
    (TensorShape([2, 1, 5]), TensorShape([2, 5]), 5)
    """

    def __init__(self, handle, modality="image", input_shape=None, input_kind="token_ids",
                 text_input_format="ids", signature=None, output_key=None, sequence_key=None, pooled_key=None,
                 arguments=None, image_scale=None, image_offset=None, trainable=False, dtype=None, **kwargs):
        if modality not in MODALITIES:
            raise ValueError(f"`modality` must be one of {MODALITIES}, got {modality!r}.")
        if input_kind not in INPUT_KINDS:
            raise ValueError(f"`input_kind` must be one of {INPUT_KINDS}, got {input_kind!r}.")
        if text_input_format not in TEXT_INPUT_FORMATS:
            raise ValueError(
                f"`text_input_format` must be one of {TEXT_INPUT_FORMATS}, got {text_input_format!r}."
            )
        if output_key is not None and (sequence_key is not None or pooled_key is not None):
            raise ValueError("Pass either `output_key` or `sequence_key`/`pooled_key`, not both.")
        strings = modality == "text" and input_kind == "strings"
        if input_shape is None:
            input_shape = (224, 224, 3) if modality == "image" else (() if strings else (None,))
        input_shape = tuple(None if d is None else int(d) for d in input_shape)
        if modality == "image" and (len(input_shape) != 3 or input_shape[-1] is None):
            raise ValueError(f"`input_shape` of an image tower must be (H, W, C), got {input_shape}.")
        if modality == "text" and not strings and len(input_shape) != 1:
            raise ValueError(f"`input_shape` of a token-id tower must be (L,), got {input_shape}.")

        image_scale = _scalar_or_list(image_scale, "image_scale")
        image_offset = _scalar_or_list(image_offset, "image_offset")
        if modality != "image" and (image_scale is not None or image_offset is not None):
            raise ValueError("`image_scale` / `image_offset` apply to image towers only.")

        # === Layers ===
        rescale = None
        if image_scale is not None or image_offset is not None:
            rescale = keras.layers.Rescaling(
                1.0 if image_scale is None else image_scale,
                0.0 if image_offset is None else image_offset,
                dtype=dtype,
                name="input_scaling",
            )
        hub_layer = TFHubLayer(
            handle,
            trainable=trainable,
            signature=signature,
            signature_outputs_as_dict=signature is not None and output_key is None,
            output_key=output_key,
            arguments=arguments,
            dtype=dtype,
            name="hub",
        )

        # === Functional Model ===
        if modality == "image":
            inputs = keras.Input(input_shape, dtype="float32", name="images")
            hub_inputs = inputs if rescale is None else rescale(inputs)
        elif strings:
            inputs = keras.Input(input_shape, dtype="string", name="text")
            hub_inputs = inputs
        else:
            inputs = keras.Input(input_shape, dtype="int32", name="token_ids")
            hub_inputs = inputs
            if text_input_format == "bert":
                hub_inputs = {
                    "input_word_ids": inputs,
                    "input_mask": ops.cast(ops.not_equal(inputs, 0), "int32"),
                    "input_type_ids": ops.zeros_like(inputs),
                }
        raw = hub_layer(hub_inputs)

        hub_mask = None
        if isinstance(raw, dict):
            sequence = _pick(raw, sequence_key, _SEQUENCE_KEYS, "sequence_key")
            pooled = _pick(raw, pooled_key, _POOLED_KEYS, "pooled_key")
            hub_mask = raw.get("padding_mask") if modality == "text" else None
            if sequence is None and pooled is None:
                raise ValueError(
                    f"The hub model returns a dict with entries {sorted(raw)}: pass `pooled_key`, "
                    "`sequence_key` or `output_key`."
                )
        else:
            sequence, pooled = None, None
            rank = len(raw.shape)
            if rank == 2:
                pooled = raw
            elif rank == 3:
                sequence = raw
            elif rank == 4:
                if raw.shape[-1] is None:
                    raise ValueError(f"The hub model's feature map has an unknown channel size: {raw.shape}.")
                to_tokens = keras.layers.Reshape((-1, raw.shape[-1]), dtype=dtype, name="feature_map_tokens")
                sequence = to_tokens(raw)
            else:
                raise ValueError(
                    f"The hub model's output has rank {rank} (shape {raw.shape}); expected 2 (pooled), "
                    "3 (sequence) or 4 (feature map). Use `output_key` to select an output."
                )

        token_mask = None
        if modality == "text" and not strings and sequence is not None:
            token_mask = ops.not_equal(inputs, 0)
        if pooled is None:
            if token_mask is not None and hub_mask is None:
                weights = ops.cast(token_mask, sequence.dtype)[:, :, None]
                pooled = ops.sum(sequence * weights, axis=1) / ops.maximum(ops.sum(weights, axis=1), 1.0)
            else:
                pooled = ops.mean(sequence, axis=1)
        if sequence is None:
            sequence = pooled[:, None, :]
        outputs = {"sequence": sequence, "pooled": pooled}
        if modality == "text":
            if hub_mask is not None:
                padding_mask = ops.cast(hub_mask, "bool")
            elif token_mask is not None:
                padding_mask = token_mask
            else:
                padding_mask = ops.ones_like(sequence[:, :, 0], dtype="bool")
            outputs["padding_mask"] = padding_mask
        if pooled.shape[-1] is None:
            raise ValueError(f"The hub model's pooled output has an unknown width: {pooled.shape}.")
        super().__init__(inputs=inputs, outputs=outputs, trainable=trainable, **kwargs)
        self.hub_layer = hub_layer

        # === Config ===
        self._set_config(
            output_dim=pooled.shape[-1],
            handle=hub_layer.handle,
            modality=modality,
            input_shape=list(input_shape),
            input_kind=input_kind,
            text_input_format=text_input_format,
            signature=signature,
            output_key=output_key,
            sequence_key=sequence_key,
            pooled_key=pooled_key,
            arguments=dict(arguments or {}),
            image_scale=image_scale,
            image_offset=image_offset,
            dtype=dtype,
        )


def _scalar_or_list(value, what):
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, (int, float)) for v in value):
        return [float(v) for v in value]
    raise ValueError(f"`{what}` must be a float or a list of floats, got {value!r}.")
