import os

import keras
import tensorflow as tf
from keras import ops

from mmkeras.encoders.encoder import Encoder

MODALITIES = ("image", "text")
IMAGE_POOLINGS = ("auto", "first", "mean")
TEXT_POOLINGS = ("auto", "argmax", "last_token", "first", "mean")


def _keras_hub():
    # Imported on first use: keras-hub is heavy and only this tower needs it.
    import keras_hub

    return keras_hub


def _architecture(tower):
    """'clip_vision', 'clip_text', 'siglip_vision', 'siglip_text' or 'generic'."""
    models = _keras_hub().models
    known = {
        "clip_vision": "CLIPVisionEncoder",
        "clip_text": "CLIPTextEncoder",
        "siglip_vision": "SigLIPVisionEncoder",
        "siglip_text": "SigLIPTextEncoder",
    }
    for architecture, class_name in known.items():
        cls = getattr(models, class_name, None)
        if cls is not None and isinstance(tower, cls):
            return architecture
    return "generic"


def _pick_tower(model, modality):
    """The single-modality tower of a keras-hub model (a dual backbone or a tower)."""
    attribute = "vision_encoder" if modality == "image" else "text_encoder"
    if hasattr(model, "vision_encoder") and hasattr(model, "text_encoder"):
        return getattr(model, attribute)
    return model


def _set_activation(tower, activation):
    """Sets the feed-forward activation of every keras-hub `TransformerEncoder` inside `tower`."""
    encoder_class = _keras_hub().layers.TransformerEncoder
    blocks = [layer for layer in tower._flatten_layers(include_self=False) if isinstance(layer, encoder_class)]
    if not blocks:
        raise ValueError(
            f"`activation`={activation!r} is set, but the {type(tower).__name__} tower has no keras-hub "
            "TransformerEncoder layers whose activation it could set."
        )
    function = keras.activations.get(activation)
    for block in blocks:
        block.activation = function
        # The block's Dense looks its activation up at every call, so this holds in any traced graph.
        block._feedforward_intermediate_dense.activation = function


def _converter_scaling(preset):
    """Maps the preset's image converter (on [0, 255] pixels) onto [-1, 1] images."""
    if not tf.io.gfile.exists(os.path.join(preset, "image_converter.json")):
        return None, None
    converter = _keras_hub().layers.ImageConverter.from_preset(preset)

    def as_list(value, default):
        value = default if value is None else value
        return [float(v) for v in value] if isinstance(value, (list, tuple)) else [float(value)]

    scale = as_list(converter.scale, 1.0)
    offset = as_list(converter.offset, 0.0)
    if len(scale) == 1 and len(offset) > 1:
        scale = scale * len(offset)
    if len(offset) == 1 and len(scale) > 1:
        offset = offset * len(scale)
    # pixels = 127.5 * (images + 1)  ->  pixels * scale + offset
    return [127.5 * s for s in scale], [127.5 * s + o for s, o in zip(scale, offset)]


def _single_input_name(tower, what):
    inputs = tower.input
    if isinstance(inputs, dict):
        if len(inputs) != 1:
            raise ValueError(f"The keras-hub {what} tower takes inputs {sorted(inputs)}; expected one.")
        return next(iter(inputs))
    return None


def _split_output(output):
    """(sequence, pooled) of a generic keras-hub backbone output; either may be None."""
    if isinstance(output, dict):
        sequence = output.get("sequence_output")
        pooled = output.get("pooled_output")
        if sequence is None and pooled is None:
            raise ValueError(
                f"The keras-hub tower returns {sorted(output)}; "
                "expected 'sequence_output' and/or 'pooled_output'."
            )
        return sequence, pooled
    rank = len(output.shape)
    if rank == 2:
        return None, output
    if rank == 3:
        return output, None
    if rank == 4:
        return keras.layers.Reshape((-1, output.shape[-1]), name="feature_map_tokens")(output), None
    raise ValueError(
        f"The keras-hub tower's output has rank {rank} (shape {output.shape}); expected 2, 3 or 4."
    )


# The pooling CLIP itself uses where `pooling` is "auto".
_CLIP_POOLINGS = {"clip_vision": "first", "clip_text": "argmax"}


def _resolve_pooling(pooling, architecture, own_pooled):
    """What "auto" pooling means: CLIP's own pooling, else the tower's pooled output (kept "auto"), else "mean"."""
    if pooling != "auto":
        return pooling
    if architecture in _CLIP_POOLINGS:
        return _CLIP_POOLINGS[architecture]
    return "mean" if own_pooled is None else "auto"


def _freeze_unused_head(tower, architecture):
    """Freezes the layer that makes the tower's own pooled output when the encoder pools otherwise.

    No gradient reaches it then (e.g. BERT's `pooled_dense` under "first"
    pooling); frozen, the optimizer does not warn about it at every step.
    """
    output = tower.output
    if isinstance(output, dict):
        pooled, sequence = output.get("pooled_output"), output.get("sequence_output")
    else:
        pooled, sequence = (output if architecture.startswith("siglip") else None), None
    history = getattr(pooled, "_keras_history", None)
    if history is None:
        return
    layer = history[0]
    shared = sequence is not None and getattr(sequence, "_keras_history", (None,))[0] is layer
    if isinstance(layer, keras.layers.Layer) and not shared:
        layer.trainable = False


def _take(sequence, index):
    """`sequence[b, index[b]]` for a `[B]` index."""
    index = ops.expand_dims(ops.expand_dims(ops.cast(index, "int32"), -1), -1)
    return ops.squeeze(ops.take_along_axis(sequence, index, axis=1), axis=1)


def _masked_mean(sequence, mask):
    weights = ops.cast(mask, sequence.dtype)[:, :, None]
    return ops.sum(sequence * weights, axis=1) / ops.maximum(ops.sum(weights, axis=1), 1.0)


@keras.saving.register_keras_serializable(package="mmkeras")
class KerasHubEncoder(Encoder):
    """A keras-hub image or text tower (e.g. from a CLIP / SigLIP preset) as an mmkeras encoder.

    Loads a keras-hub `Backbone` from a **local** preset directory (written by
    `backbone.save_to_preset(path)`; nothing is downloaded) and keeps the tower
    of `modality`: `vision_encoder` / `text_encoder` of a dual backbone such as
    `CLIPBackbone` or `SigLIPBackbone`, or the backbone itself for
    single-modality backbones (an image backbone taking `images`, or a text
    backbone taking `token_ids` / `padding_mask` / `segment_ids`).

    Outputs follow the mmkeras convention:

    - CLIP: `sequence` is the final-layer-norm token sequence; `pooled` is the
      class token (image) or the token at `argmax(token_ids)` (text, CLIP's EOS
      convention), as in `CLIPBackbone` before its projection.
    - SigLIP: `sequence` is the post-layer-norm sequence; `pooled` is the
      tower's own head (attention pooling for images, the last position through
      the dense head for text). A SigLIP text tower takes exactly
      `max_sequence_length` ids (pad them).
    - other backbones: `sequence_output` / `pooled_output` when returned, a
      `[B, T, D]` sequence, or a `[B, H, W, C]` map flattened to tokens.

    `pooling` overrides the pooled vector ("first", "mean", and for text
    "argmax", "last_token" = last non-padding token). For a BERT backbone,
    "auto" is its pooler (dense + tanh on `[CLS]`) and "first" the `[CLS]`
    token itself. A tower's own pooling head that `pooling` leaves unused
    is frozen (nothing would train it). Text towers return
    `padding_mask = token_ids != pad_token_id`. `output_dim` is the width of
    `pooled` (for a SigLIP text tower with a `projection_dim` different from its
    `hidden_dim`, the sequence is wider than `pooled`).

    Image towers take `images` in [-1, 1] (the mmkeras `ImagePreprocessor`
    default). When the preset holds an image converter, its pixel scale and
    offset are re-expressed for [-1, 1] inputs (`images * image_scale +
    image_offset`), so pretrained towers see the normalisation they were trained
    with.

    The `.keras` file of a model holding this encoder is self-contained: the
    config stores the tower's architecture (`tower`) and the weights file its
    values; the preset directory is not read again.

    Args:
        preset: str, a local keras-hub preset directory (with `config.json`).
            Ignored when `tower` is given (kept in the config as provenance).
        modality: "image" or "text".
        tower: optional keras-hub model (a tower, or a dual backbone whose
            tower of `modality` is taken) or its serialized config.
        pooling: see above; "auto" is the architecture's own pooling.
        pad_token_id: int, the padding id of the text tower's vocabulary.
        image_scale: optional float or per-channel list multiplied into the
            images; default from the preset's image converter, else 1.
        image_offset: optional float or per-channel list added after scaling;
            default from the preset's image converter, else 0.
        activation: optional activation of the feed-forward layers of the
            tower's keras-hub `TransformerEncoder` blocks, replacing the one
            the backbone builds them with: "gelu" (exact) for BERT weights
            converted from Hugging Face, whose keras-hub `BertBackbone` uses
            the tanh approximation. Kept in the config, so `.keras` files
            restore it.
        load_weights: bool, load the preset's weights (else random init).
        trainable: bool, fine-tune the tower.
        dtype: optional dtype policy for the tower, e.g. "mixed_bfloat16"
            (applied when loading the preset or a tower config; a given tower
            instance must already have it).
        **kwargs: `keras.Model` arguments such as `name`.

    Example:

    >>> import tempfile, numpy as np, keras_hub
    >>> vision = keras_hub.models.CLIPVisionEncoder(
    ...     patch_size=8, hidden_dim=16, num_layers=1, num_heads=2,
    ...     intermediate_dim=32, image_shape=(16, 16, 3))
    >>> text = keras_hub.models.CLIPTextEncoder(
    ...     vocabulary_size=50, embedding_dim=16, hidden_dim=16, num_layers=1,
    ...     num_heads=2, intermediate_dim=32, max_sequence_length=8)
    >>> preset = tempfile.mkdtemp()
    >>> keras_hub.models.CLIPBackbone(vision, text, projection_dim=8).save_to_preset(preset)
    >>> tower = KerasHubEncoder(preset, modality="image")
    >>> out = tower(np.zeros((2, 16, 16, 3), "float32"))
    >>> out["sequence"].shape, out["pooled"].shape, tower.output_dim
    (TensorShape([2, 5, 16]), TensorShape([2, 16]), 16)
    """

    def __init__(self, preset=None, modality="image", tower=None, pooling="auto", pad_token_id=0,
                 image_scale=None, image_offset=None, activation=None, load_weights=True, trainable=True,
                 dtype=None, **kwargs):
        if modality not in MODALITIES:
            raise ValueError(f"`modality` must be one of {MODALITIES}, got {modality!r}.")
        poolings = IMAGE_POOLINGS if modality == "image" else TEXT_POOLINGS
        if pooling not in poolings:
            raise ValueError(f"`pooling` of a {modality} tower must be one of {poolings}, got {pooling!r}.")
        if isinstance(preset, os.PathLike):
            preset = os.fspath(preset)
        keras_hub = _keras_hub()

        # === Layers ===
        if tower is None:
            if not isinstance(preset, str) or not preset:
                raise ValueError(
                    f"`preset` must be a local preset directory (or pass `tower`), got {preset!r}."
                )
            if not tf.io.gfile.exists(os.path.join(preset, "config.json")):
                raise ValueError(
                    f"`preset`={preset!r} is not a local keras-hub preset directory (no config.json); "
                    "KerasHubEncoder never downloads presets: save one with `backbone.save_to_preset(dir)`."
                )
            backbone_kwargs = {} if dtype is None else {"dtype": dtype}
            backbone = keras_hub.models.Backbone.from_preset(
                preset, load_weights=load_weights, **backbone_kwargs
            )
            tower = _pick_tower(backbone, modality)
            if modality == "image" and image_scale is None and image_offset is None:
                image_scale, image_offset = _converter_scaling(preset)
        elif isinstance(tower, dict):
            tower = dict(tower)
            if dtype is not None:
                tower["config"] = {**tower["config"], "dtype": keras.dtype_policies.get(dtype).name}
            tower = keras.saving.deserialize_keras_object(tower)
        elif isinstance(tower, keras.Model):
            tower = _pick_tower(tower, modality)
            if dtype is not None and keras.dtype_policies.get(dtype).name != tower.dtype_policy.name:
                raise ValueError(
                    f"`dtype`={dtype!r} differs from the given tower's dtype policy "
                    f"{tower.dtype_policy.name!r}; build the tower with that dtype instead."
                )
        else:
            raise ValueError(
                f"`tower` must be a keras-hub model, its config dict or None, got {type(tower).__name__}."
            )
        if activation is not None:
            if not isinstance(activation, str):
                raise ValueError(f"`activation` must be the name of a Keras activation, got {activation!r}.")
            _set_activation(tower, activation)
        architecture = _architecture(tower)
        expected = "_vision" if modality == "image" else "_text"
        if architecture != "generic" and not architecture.endswith(expected):
            raise ValueError(f"`modality`={modality!r} but the tower is a {type(tower).__name__}.")
        image_scale = _channel_values(image_scale, "image_scale")
        image_offset = _channel_values(image_offset, "image_offset")

        # === Functional Model ===
        if modality == "image":
            inputs, sequence, pooled = self._image_graph(
                tower, architecture, pooling, image_scale, image_offset, dtype
            )
            outputs = {"sequence": sequence, "pooled": pooled}
        else:
            inputs, sequence, pooled, mask = self._text_graph(tower, architecture, pooling, int(pad_token_id))
            outputs = {"sequence": sequence, "pooled": pooled, "padding_mask": mask}
        if pooled.shape[-1] is None:
            raise ValueError(f"The keras-hub tower's pooled output has an unknown width: {pooled.shape}.")
        super().__init__(inputs=inputs, outputs=outputs, trainable=trainable, **kwargs)
        self.tower = tower
        self.architecture = architecture

        # === Config ===
        self._set_config(
            output_dim=pooled.shape[-1],
            preset=preset,
            modality=modality,
            tower=keras.saving.serialize_keras_object(tower),
            pooling=pooling,
            pad_token_id=int(pad_token_id),
            image_scale=image_scale,
            image_offset=image_offset,
            activation=activation,
            dtype=dtype,
        )

    @staticmethod
    def _features(tower, architecture):
        """A model giving (sequence, pooled-or-None) from the tower's own graph."""
        if architecture.startswith("siglip"):
            # SigLIP towers return only their pooled head; expose the sequence too.
            return keras.Model(
                tower.input,
                {"sequence": tower.post_layer_norm.output, "pooled": tower.output},
                name=f"{tower.name}_features",
            )
        return tower

    def _image_graph(self, tower, architecture, pooling, scale, offset, dtype):
        image_shape = getattr(tower, "image_shape", None) or tuple(_first_input(tower).shape[1:])
        images = keras.Input(tuple(image_shape), dtype="float32", name="images")
        x = images
        if scale is not None or offset is not None:
            x = keras.layers.Rescaling(
                scale=1.0 if scale is None else scale,
                offset=0.0 if offset is None else offset,
                dtype=dtype,
                name="input_scaling",
            )(x)
        features = self._features(tower, architecture)
        name = _single_input_name(tower, "image")
        output = features(x if name is None else {name: x})
        if architecture == "siglip_vision":
            sequence, own_pooled = output["sequence"], output["pooled"]
        else:
            sequence, own_pooled = _split_output(output)
        pooling = _resolve_pooling(pooling, architecture, own_pooled)
        if pooling != "auto" and own_pooled is not None:
            _freeze_unused_head(tower, architecture)
        if pooling == "auto":
            pooled = own_pooled
        elif sequence is None:
            raise ValueError(f"`pooling`={pooling!r} needs a sequence, but the tower returns only a vector.")
        elif pooling == "first":
            pooled = sequence[:, 0, :]
        else:
            pooled = ops.mean(sequence, axis=1)
        if sequence is None:
            sequence = pooled[:, None, :]
        return images, sequence, pooled

    def _text_graph(self, tower, architecture, pooling, pad_token_id):
        # SigLIP adds its full position table, so it takes exactly max_sequence_length ids.
        length = tower.max_sequence_length if architecture == "siglip_text" else None
        token_ids = keras.Input((length,), dtype="int32", name="token_ids")
        mask = ops.not_equal(token_ids, pad_token_id)
        features = self._features(tower, architecture)
        tower_inputs = tower.input
        if isinstance(tower_inputs, dict):
            feed = {}
            for name, spec in tower_inputs.items():
                if name == "token_ids":
                    feed[name] = token_ids
                elif name == "padding_mask":
                    feed[name] = ops.cast(mask, spec.dtype)
                elif name == "segment_ids":
                    feed[name] = ops.zeros_like(token_ids)
                else:
                    raise ValueError(
                        f"The keras-hub text tower takes an input {name!r}; KerasHubEncoder can feed "
                        "'token_ids', 'padding_mask' and 'segment_ids'."
                    )
        else:
            feed = token_ids
        output = features(feed)
        if architecture == "siglip_text":
            sequence, own_pooled = output["sequence"], output["pooled"]
        else:
            sequence, own_pooled = _split_output(output)
        if sequence is None:
            if pooling != "auto":
                raise ValueError(
                    f"`pooling`={pooling!r} needs a sequence, but the tower returns only a vector."
                )
            return token_ids, own_pooled[:, None, :], own_pooled, ops.ones_like(mask[:, :1])
        pooling = _resolve_pooling(pooling, architecture, own_pooled)
        if pooling != "auto" and own_pooled is not None:
            _freeze_unused_head(tower, architecture)
        if pooling == "auto":
            pooled = own_pooled
        elif pooling == "argmax":
            pooled = _take(sequence, ops.argmax(token_ids, axis=-1))
        elif pooling == "last_token":
            last = ops.maximum(ops.sum(ops.cast(mask, "int32"), axis=-1) - 1, 0)
            pooled = _take(sequence, last)
        elif pooling == "first":
            pooled = sequence[:, 0, :]
        else:
            pooled = _masked_mean(sequence, mask)
        return token_ids, sequence, pooled, mask


def _first_input(tower):
    inputs = tower.input
    return next(iter(inputs.values())) if isinstance(inputs, dict) else inputs


def _channel_values(value, what):
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return [float(value)]
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, (int, float)) for v in value):
        return [float(v) for v in value]
    raise ValueError(f"`{what}` must be a float or a list of floats, got {value!r}.")
