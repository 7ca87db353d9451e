"""Hugging Face `SiglipModel` checkpoints as mmkeras dual encoders, with their own tokenizer and image preprocessing."""

import math
import os

import numpy as np

from mmkeras.pretrained.keras_hub_loader import KerasHubLoader
from mmkeras.pretrained.keras_hub_loader import read_hf_config
from mmkeras.pretrained.safetensors_checkpoint import SafetensorsCheckpoint
from mmkeras.pretrained.checkpoint_files import hf_image_converter, read_json

# Hugging Face `hidden_act` -> keras-hub SigLIP activation.
ACTIVATIONS = {"gelu_pytorch_tanh": "gelu_approximate", "gelu_new": "gelu_approximate", "gelu": "gelu"}
# Defaults of transformers' SiglipTextConfig / SiglipVisionConfig for keys a config.json leaves out.
TEXT_DEFAULTS = {
    "vocab_size": 32000, "hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
    "num_attention_heads": 12, "max_position_embeddings": 64, "hidden_act": "gelu_pytorch_tanh",
    "layer_norm_eps": 1e-6,
}
VISION_DEFAULTS = {
    "hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12, "num_attention_heads": 12,
    "num_channels": 3, "image_size": 224, "patch_size": 16, "hidden_act": "gelu_pytorch_tanh", "layer_norm_eps": 1e-6,
    "vision_use_head": True,
}
SIZES = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads")
# keras-hub's SigLIPVisionEncoder builds its post layer norm with this epsilon whatever the config says.
KERAS_HUB_VISION_POST_NORM_EPSILON = 1e-6


def load_hf_siglip(directory, *, pooled_only=True, dtype=None, name="siglip"):
    """Imports a Hugging Face `SiglipModel` checkpoint from a local directory as a `DualEncoder`.

    Reads `config.json`, `model.safetensors` (or a sharded
    `model.safetensors.index.json`), `spiece.model`, `tokenizer_config.json`
    (optional: lower-casing and the special tokens) and
    `preprocessor_config.json` (optional; mean and std 0.5 otherwise).
    Nothing is downloaded and torch is not needed.

    The towers are keras-hub's SigLIP architecture built from the config (a
    `SigLIPVisionEncoder` with its attention-pooling head, a bidirectional
    `SigLIPTextEncoder` pooled at the last position through its dense head),
    the checkpoint's weights assigned to it, each in a `KerasHubEncoder`;
    as for keras-hub SigLIP presets, the projections are the identity (the
    towers' heads are SigLIP's projections) and the model has the
    checkpoint's logit scale and bias. Its `preprocessor` holds a
    `SentencePieceTokenizer` with the ids of Hugging Face's `SiglipTokenizer`
    (`max_position_embeddings` ids: the pieces, `</s>`, `</s>` padding; no
    attention mask, as SigLIP's text tower is used) and an
    `ImagePreprocessor` as `SiglipImageProcessor` (both sides resized to the
    square, transparent images on white, the checkpoint's mean and std). So
    the model's L2-normalised embeddings are the normalised
    `get_image_features` / `get_text_features` of the reference, `.keras`
    files hold the whole thing, and `mmkeras.export.export_model` writes a
    SavedModel that takes raw image bytes and raw strings.

    Args:
        directory: the checkpoint directory (a Hugging Face model folder).
        pooled_only: bool, accepted as by the other importers; keras-hub's
            SigLIP towers compute the token sequence their heads pool from
            anyway, so the towers return both.
        dtype: optional dtype policy of the model, e.g. "mixed_bfloat16".
        name: the model's name.

    Returns:
        A `DualEncoder` with its `MultimodalPreprocessor`.

    Raises:
        ValueError: naming the file and the field, tensor or shapes: a missing
            file, a pickle checkpoint (`.bin`, `.pt`; with how to convert it),
            an architecture other than `SiglipModel`, an unsupported
            activation, layer-norm epsilon or image size, a missing tensor or
            a tensor whose shape does not fit the config.

    Example:

    ```python
    model = load_hf_siglip("checkpoints/siglip-base-patch16-224")
    inputs = model.preprocessor({"image_bytes": tf.constant([jpeg_bytes]), "text": tf.constant(["a photo of a cat"])})
    logits = model.similarity(model.image_model(inputs["images"]), model.text_model(inputs["token_ids"]))
    probability = tf.sigmoid(logits)  # SigLIP scores each pair on its own
    mmkeras.export.export_model(model, "siglip_export")
    ```
    """
    del pooled_only  # the keras-hub towers always compute the sequence their heads pool
    import keras_hub

    from mmkeras.pretrained.keras_hub_preset import _dual_encoder

    directory = os.fspath(directory)
    config, config_path = read_hf_config(directory, "siglip", "load_hf_siglip")
    architectures = config.get("architectures") or []
    if architectures and "SiglipModel" not in architectures:
        raise ValueError(
            f"{config_path}: architectures={architectures} is not a SiglipModel checkpoint (load_hf_siglip reads "
            "the image and text towers of architectures ['SiglipModel'])."
        )
    text_config = _section(config, "text_config", TEXT_DEFAULTS, config_path)
    vision_config = _section(config, "vision_config", VISION_DEFAULTS, config_path)
    _check_vision(vision_config, config_path)
    checkpoint = SafetensorsCheckpoint(directory)
    tokenizer = _tokenizer(directory, text_config)
    image_converter = _image_converter(directory, vision_config)

    def tower(section, config):
        """The keras-hub arguments both towers take, from their config section."""
        return dict(
            hidden_dim=config["hidden_size"],
            num_layers=config["num_hidden_layers"],
            num_heads=config["num_attention_heads"],
            intermediate_dim=config["intermediate_size"],
            intermediate_activation=_activation(section, config, config_path),
            layer_norm_epsilon=config["layer_norm_eps"],
            dtype=dtype,
        )

    backbone = keras_hub.models.SigLIPBackbone(
        vision_encoder=keras_hub.models.SigLIPVisionEncoder(
            patch_size=vision_config["patch_size"],
            image_shape=(vision_config["image_size"], vision_config["image_size"], 3),
            name="vision_encoder",
            **tower("vision_config", vision_config),
        ),
        text_encoder=keras_hub.models.SigLIPTextEncoder(
            vocabulary_size=text_config["vocab_size"],
            embedding_dim=text_config["hidden_size"],
            max_sequence_length=text_config["max_position_embeddings"],
            projection_dim=text_config.get("projection_size") or text_config["hidden_size"],
            name="text_encoder",
            **tower("text_config", text_config),
        ),
        dtype=dtype,
        name="siglip_backbone",
    )
    loader = KerasHubLoader(checkpoint)
    _port_vision(backbone.vision_encoder, loader, vision_config)
    _port_text(backbone.text_encoder, loader, text_config)
    scalar = _hook(lambda tensor, shape: tensor.reshape(shape), lambda tensor, shape: tensor.size == 1)
    loader.port_weight(backbone.siglip_head.logit_scale, "logit_scale", scalar)
    loader.port_weight(backbone.siglip_head.logit_bias, "logit_bias", scalar)
    return _dual_encoder(directory, backbone, "SigLIPBackbone", tokenizer, dtype, name, image_converter=image_converter)


# --- config -------------------------------------------------------------------


def _section(config, key, defaults, path):
    section = config.get(key) or config.get(f"{key}_dict") or {}
    if not isinstance(section, dict):
        raise ValueError(f"{path}: {key} must be an object, got {type(section).__name__}.")
    section = {**defaults, **section}
    for field in SIZES + (("vocab_size", "max_position_embeddings") if key == "text_config" else
                          ("image_size", "patch_size", "num_channels")):
        value = section[field]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{path}: {key}.{field} must be a positive int, got {value!r}.")
    if section["hidden_size"] % section["num_attention_heads"]:
        raise ValueError(
            f"{path}: {key}.hidden_size {section['hidden_size']} is not a multiple of num_attention_heads "
            f"{section['num_attention_heads']}."
        )
    return section


def _check_vision(config, path):
    if config["num_channels"] != 3:
        raise ValueError(f"{path}: vision_config.num_channels is {config['num_channels']}; only RGB (3) is supported.")
    if config["image_size"] % config["patch_size"]:
        raise ValueError(
            f"{path}: vision_config.image_size {config['image_size']} is not a multiple of patch_size "
            f"{config['patch_size']}."
        )
    if not config["vision_use_head"]:
        raise ValueError(
            f"{path}: vision_config.vision_use_head is false: the checkpoint has no attention-pooling head, so "
            "it has no image features to import."
        )
    if not math.isclose(float(config["layer_norm_eps"]), KERAS_HUB_VISION_POST_NORM_EPSILON):
        raise ValueError(
            f"{path}: vision_config.layer_norm_eps {config['layer_norm_eps']} is not supported: keras-hub's "
            f"SigLIPVisionEncoder normalises its output with epsilon {KERAS_HUB_VISION_POST_NORM_EPSILON}."
        )


def _activation(section, config, path):
    act = config["hidden_act"]
    if act not in ACTIVATIONS:
        raise ValueError(f"{path}: {section}.hidden_act {act!r} is not supported; supported: {sorted(ACTIVATIONS)}.")
    return ACTIVATIONS[act]


# --- preprocessing ------------------------------------------------------------


def _special_token(settings, field, default):
    token = settings.get(field, default)
    if isinstance(token, dict):
        token = token.get("content", default)
    return token or default


def _tokenizer(directory, text_config):
    from mmkeras.preprocessing.sentencepiece_tokenizer import SentencePieceTokenizer

    path = os.path.join(directory, "spiece.model")
    if not os.path.isfile(path):
        raise ValueError(f"{path} is missing (a SigLIP checkpoint's SentencePiece tokenizer model).")
    settings = read_json(os.path.join(directory, "tokenizer_config.json"), required=False) or {}
    return SentencePieceTokenizer.from_file(
        path,
        sequence_length=text_config["max_position_embeddings"],
        lowercase=bool(settings.get("do_lower_case", True)),
        end_token=_special_token(settings, "eos_token", "</s>"),
        pad_token=_special_token(settings, "pad_token", "</s>"),
        unknown_token=_special_token(settings, "unk_token", "<unk>"),
        name="tokenizer",
    )


def _image_converter(directory, vision_config):
    image_size = vision_config["image_size"]
    path = os.path.join(directory, "preprocessor_config.json")
    settings = read_json(path, required=False) or {}
    size = settings.get("size") or {"height": image_size, "width": image_size}
    if settings.get("do_resize", True):
        sides = {size.get(k) for k in ("height", "width")} if isinstance(size, dict) else {size}
        if sides != {image_size}:
            raise ValueError(
                f"{path}: size {size} must be the image tower's image_size {image_size} on both sides "
                "(SiglipImageProcessor resizes both sides to it)."
            )
    # SiglipImageProcessor composites transparent images on white, then resizes both sides (no crop).
    return hf_image_converter(path, settings, image_size, "stretch", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))


# --- weights ------------------------------------------------------------------


def _hook(convert, fits):
    """A `port_weight` hook: `convert(tensor, shape)` where `fits(tensor, shape)`, else None (a shape error)."""
    return lambda tensor, shape: convert(tensor, shape) if fits(tensor, shape) else None


# torch Linear `[out, in]` -> a Keras kernel `[in, *out]` (Dense `[in, out]`, attention `[in, heads, head_dim]`).
_KERNEL = _hook(lambda t, s: t.T.reshape(s), lambda t, s: t.shape == (int(np.prod(s[1:])), s[0]))
# torch attention output `[width, heads * head_dim]` -> Keras `[heads, head_dim, width]`.
_OUTPUT_KERNEL = _hook(lambda t, s: t.T.reshape(s), lambda t, s: t.shape == (s[-1], s[0] * s[1]))
# A bias `[heads * head_dim]` -> `[heads, head_dim]`.
_BIAS = _hook(lambda t, s: t.reshape(s), lambda t, s: t.shape == (int(np.prod(s)),))
# torch Conv2d `[out, in, kh, kw]` -> Keras `[kh, kw, in, out]`.
_CONV = _hook(lambda t, s: t.transpose(2, 3, 1, 0), lambda t, s: t.ndim == 4)


def _port_dense(loader, dense, prefix):
    loader.port_weight(dense.kernel, f"{prefix}.weight", _KERNEL)
    loader.port_weight(dense.bias, f"{prefix}.bias")


def _port_norm(loader, norm, prefix):
    loader.port_weight(norm.gamma, f"{prefix}.weight")
    loader.port_weight(norm.beta, f"{prefix}.bias")


def _port_attention(loader, attention, prefix):
    """A Keras `MultiHeadAttention` from torch `q_proj`, `k_proj`, `v_proj` and `out_proj` Linears."""
    for dense, part in ((attention._query_dense, "q"), (attention._key_dense, "k"), (attention._value_dense, "v")):
        loader.port_weight(dense.kernel, f"{prefix}.{part}_proj.weight", _KERNEL)
        loader.port_weight(dense.bias, f"{prefix}.{part}_proj.bias", _BIAS)
    loader.port_weight(attention._output_dense.kernel, f"{prefix}.out_proj.weight", _OUTPUT_KERNEL)
    loader.port_weight(attention._output_dense.bias, f"{prefix}.out_proj.bias")


def _port_fused_attention(loader, attention, prefix, width):
    """A Keras `MultiHeadAttention` from a torch `nn.MultiheadAttention` (`in_proj_weight` holds q, k and v)."""
    for i, dense in enumerate((attention._query_dense, attention._key_dense, attention._value_dense)):
        rows = slice(i * width, (i + 1) * width)
        kernel = _hook(lambda t, s, rows=rows: _KERNEL(t[rows], s), lambda t, s: t.shape == (3 * width, width))
        bias = _hook(lambda t, s, rows=rows: _BIAS(t[rows], s), lambda t, s: t.shape == (3 * width,))
        loader.port_weight(dense.kernel, f"{prefix}.in_proj_weight", kernel)
        loader.port_weight(dense.bias, f"{prefix}.in_proj_bias", bias)
    loader.port_weight(attention._output_dense.kernel, f"{prefix}.out_proj.weight", _OUTPUT_KERNEL)
    loader.port_weight(attention._output_dense.bias, f"{prefix}.out_proj.bias")


def _port_blocks(loader, encoder, prefix):
    for i, block in enumerate(encoder.encoder_layers):
        layer = f"{prefix}.encoder.layers.{i}"
        _port_attention(loader, block.self_attn, f"{layer}.self_attn")
        _port_norm(loader, block.layer_norm1, f"{layer}.layer_norm1")
        _port_norm(loader, block.layer_norm2, f"{layer}.layer_norm2")
        _port_dense(loader, block.mlp.fc1, f"{layer}.mlp.fc1")
        _port_dense(loader, block.mlp.fc2, f"{layer}.mlp.fc2")


def _port_vision(encoder, loader, config):
    embedding = encoder.embedding
    loader.port_weight(embedding.patch_embedding.kernel, "vision_model.embeddings.patch_embedding.weight", _CONV)
    loader.port_weight(embedding.patch_embedding.bias, "vision_model.embeddings.patch_embedding.bias")
    loader.port_weight(embedding.position_embedding.embeddings, "vision_model.embeddings.position_embedding.weight")
    _port_blocks(loader, encoder, "vision_model")
    _port_norm(loader, encoder.post_layer_norm, "vision_model.post_layernorm")
    head = encoder.head
    loader.port_weight(head.probe, "vision_model.head.probe")
    _port_fused_attention(loader, head.attention, "vision_model.head.attention", config["hidden_size"])
    _port_norm(loader, head.layer_norm, "vision_model.head.layernorm")
    _port_dense(loader, head.mlp.fc1, "vision_model.head.mlp.fc1")
    _port_dense(loader, head.mlp.fc2, "vision_model.head.mlp.fc2")


def _port_text(encoder, loader, config):
    loader.port_weight(encoder.embedding.token_embedding.embeddings, "text_model.embeddings.token_embedding.weight")
    loader.port_weight(encoder.embedding.position_embedding.embeddings,
                       "text_model.embeddings.position_embedding.weight")
    _port_blocks(loader, encoder, "text_model")
    _port_norm(loader, encoder.post_layer_norm, "text_model.final_layer_norm")
    _port_dense(loader, encoder.head, "text_model.head")
