"""Hugging Face `CLIPModel` checkpoints as mmkeras dual encoders, with their own tokenizer and image preprocessing."""

import os

import numpy as np

from mmkeras.pretrained.safetensors_checkpoint import SafetensorsCheckpoint
from mmkeras.pretrained.checkpoint_files import checkpoint_directory, hf_image_converter, read_json

OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
# Hugging Face `hidden_act` -> mmkeras block activation.
ACTIVATIONS = {
    "quick_gelu": "quick_gelu",
    "gelu": "gelu_exact",
    "gelu_new": "gelu",
    "gelu_pytorch_tanh": "gelu",
    "relu": "relu",
}
# Defaults of transformers' CLIPTextConfig / CLIPVisionConfig for keys a config.json leaves out.
TEXT_DEFAULTS = {
    "vocab_size": 49408, "hidden_size": 512, "intermediate_size": 2048, "num_hidden_layers": 12,
    "num_attention_heads": 8, "max_position_embeddings": 77, "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5,
}
VISION_DEFAULTS = {
    "hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12, "num_attention_heads": 12,
    "image_size": 224, "patch_size": 32, "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5, "num_channels": 3,
}


def load_hf_clip(directory, *, pooled_only=True, dtype=None, name="clip"):
    """Imports a Hugging Face `CLIPModel` checkpoint from a local directory as a `DualEncoder`.

    Reads `config.json`, `model.safetensors` (or a sharded
    `model.safetensors.index.json`), the tokenizer (`vocab.json` and
    `merges.txt`, or `tokenizer.json`; `tokenizer_config.json` for the pad
    token) and `preprocessor_config.json` (optional; OpenAI CLIP's mean and
    std otherwise). Nothing is downloaded and torch is not needed.

    The model is made of mmkeras parts: a `ViTEncoder` (class token, CLIP's
    pre-norm, quick-GELU where the checkpoint uses it), a causal
    `TextTransformerEncoder` pooled at the end-of-text token, bias-free
    projections and the logit scale; its `preprocessor` holds a
    `ClipTokenizer` with the checkpoint's vocabulary and merges and an
    `ImagePreprocessor` (shorter side resized, centre crop, the checkpoint's
    mean and std). So the model's L2-normalised embeddings are the
    normalised `get_image_features` / `get_text_features` of the reference,
    `.keras` files hold the whole thing, and `mmkeras.export.export_model`
    writes a SavedModel that takes raw image bytes and raw strings.

    The patch projection of a CLIP image tower has no bias; mmkeras' patch
    embedding has one, which is set to zero (it then trains like any weight).

    Args:
        directory: the checkpoint directory (a Hugging Face model folder).
        pooled_only: bool, towers that compute only the pooled vectors (same
            embeddings, less work; `tower.rebuild(pooled_only=False)` gives the
            token sequences back).
        dtype: optional dtype policy of the model, e.g. "mixed_bfloat16".
        name: the model's name.

    Returns:
        A `DualEncoder` with its `MultimodalPreprocessor`.

    Raises:
        ValueError: naming the file and the field, tensor or shapes: a missing
            file, a pickle checkpoint (`.bin`, `.pt`; with how to convert it),
            an architecture other than `CLIPModel`, a missing tensor or a
            tensor whose shape does not fit the config.

    Example:

    ```python
    model = load_hf_clip("checkpoints/clip-vit-base-patch32")
    embeddings = model.image_model(model.preprocessor({"image_bytes": [jpeg_bytes]})["images"])
    mmkeras.export.export_model(model, "clip_export")
    ```
    """
    directory = checkpoint_directory(directory)
    config_path = os.path.join(directory, "config.json")
    config = read_json(config_path, required=True)
    _check_architecture(config, config_path)
    text_config = {**TEXT_DEFAULTS, **(config.get("text_config") or config.get("text_config_dict") or {})}
    vision_config = {**VISION_DEFAULTS, **(config.get("vision_config") or config.get("vision_config_dict") or {})}
    if int(vision_config["num_channels"]) != 3:
        raise ValueError(f"{config_path}: vision_config.num_channels is {vision_config['num_channels']}; only RGB (3) is supported.")
    checkpoint = SafetensorsCheckpoint(directory)

    from mmkeras.models.dual_encoder import dual_encoder
    from mmkeras.preprocessing.multimodal_preprocessor import MultimodalPreprocessor

    tokenizer = _tokenizer(directory, text_config, config_path)
    image_converter = _image_converter(directory, vision_config)
    image_encoder = _vision_tower(vision_config, config_path, pooled_only, dtype)
    text_encoder = _text_tower(text_config, tokenizer, config_path, pooled_only, dtype)
    projection_dim = int(config.get("projection_dim", 512))
    model = dual_encoder(
        image_encoder=image_encoder,
        text_encoder=text_encoder,
        embed_dim=projection_dim,
        loss="clip",
        preprocessor=MultimodalPreprocessor(tokenizer, image_converter),
        dtype=dtype,
        name=name,
    )
    _load_vision(image_encoder, checkpoint, vision_config)
    _load_text(text_encoder, checkpoint, text_config)
    width_v, width_t = int(vision_config["hidden_size"]), int(text_config["hidden_size"])
    image_projection = model.get_layer("image_projection").projection
    text_projection = model.get_layer("text_projection").projection
    _assign(image_projection.kernel, checkpoint.get("visual_projection.weight", (projection_dim, width_v)).T)
    _assign(text_projection.kernel, checkpoint.get("text_projection.weight", (projection_dim, width_t)).T)
    # exp(logit_scale) is the reference's scale; mmkeras clamps it at 100 as CLIP training does.
    model.logit_scale.log_scale.assign(float(checkpoint.get("logit_scale", ())))
    return model


# --- config -------------------------------------------------------------------


def _check_architecture(config, path):
    architectures = config.get("architectures") or []
    model_type = config.get("model_type")
    if model_type != "clip" or (architectures and "CLIPModel" not in architectures):
        raise ValueError(
            f"{path}: architectures={architectures} model_type={model_type!r} is not a CLIP checkpoint "
            "(load_hf_clip reads architectures ['CLIPModel'], model_type 'clip')."
        )


def _activation(section, config, path):
    act = config["hidden_act"]
    if act not in ACTIVATIONS:
        raise ValueError(f"{path}: {section}.hidden_act {act!r} is not supported; supported: {sorted(ACTIVATIONS)}.")
    return ACTIVATIONS[act]


# --- towers -------------------------------------------------------------------


def _vision_tower(config, path, pooled_only, dtype):
    from mmkeras.encoders.vit_encoder import ViTEncoder

    return ViTEncoder(
        image_size=int(config["image_size"]),
        patch_size=int(config["patch_size"]),
        hidden_dim=int(config["hidden_size"]),
        num_layers=int(config["num_hidden_layers"]),
        num_heads=int(config["num_attention_heads"]),
        mlp_dim=int(config["intermediate_size"]),
        pooling="cls",
        pre_norm=True,
        layer_norm_epsilon=float(config["layer_norm_eps"]),
        activation=_activation("vision_config", config, path),
        pooled_only=pooled_only,
        dtype=dtype,
        name="image_encoder",
    )


def _text_tower(config, tokenizer, path, pooled_only, dtype):
    from mmkeras.encoders.text_transformer_encoder import TextTransformerEncoder

    end_token_id = int(config.get("eos_token_id", tokenizer.end_id))
    if end_token_id == 2:
        # Configs written before transformers fixed eos_token_id pool at the largest id of each row:
        # the end-of-text token when it is the largest id of the vocabulary.
        end_token_id = tokenizer.end_id
        if end_token_id != max(tokenizer.vocabulary.values()):
            raise ValueError(
                f"{path}: text_config.eos_token_id is 2 (the reference then pools at the largest id), but "
                f"<|endoftext|> ({end_token_id}) is not the largest id of the vocabulary."
            )
    if not 0 <= end_token_id < int(config["vocab_size"]):
        raise ValueError(f"{path}: text_config.eos_token_id {end_token_id} is not below vocab_size {config['vocab_size']}.")
    return TextTransformerEncoder(
        vocabulary_size=int(config["vocab_size"]),
        sequence_length=tokenizer.sequence_length,
        hidden_dim=int(config["hidden_size"]),
        num_layers=int(config["num_hidden_layers"]),
        num_heads=int(config["num_attention_heads"]),
        mlp_dim=int(config["intermediate_size"]),
        causal=True,
        pooling="last",
        layer_norm_epsilon=float(config["layer_norm_eps"]),
        activation=_activation("text_config", config, path),
        end_token_id=end_token_id,
        pooled_only=pooled_only,
        dtype=dtype,
        name="text_encoder",
    )


# --- preprocessing ------------------------------------------------------------


def _tokenizer(directory, text_config, config_path):
    from mmkeras.preprocessing.clip_tokenizer import END_TOKEN
    from mmkeras.preprocessing.clip_tokenizer import ClipTokenizer

    settings = read_json(os.path.join(directory, "tokenizer_config.json"), required=False) or {}
    special = read_json(os.path.join(directory, "special_tokens_map.json"), required=False) or {}
    pad = settings.get("pad_token", special.get("pad_token", END_TOKEN))
    pad = pad.get("content", END_TOKEN) if isinstance(pad, dict) else (pad or END_TOKEN)
    length = int(text_config["max_position_embeddings"])
    vocab_file, merges_file = os.path.join(directory, "vocab.json"), os.path.join(directory, "merges.txt")
    if os.path.isfile(vocab_file) and os.path.isfile(merges_file):
        return ClipTokenizer.from_files(vocab_file, merges_file, sequence_length=length, pad_token=pad)
    fast_file = os.path.join(directory, "tokenizer.json")
    if not os.path.isfile(fast_file):
        raise ValueError(f"{directory} has no tokenizer: vocab.json and merges.txt (or tokenizer.json) are missing.")
    model = (read_json(fast_file, required=True).get("model") or {})
    vocabulary, merges = model.get("vocab"), model.get("merges")
    if not isinstance(vocabulary, dict) or not isinstance(merges, list):
        raise ValueError(f"{fast_file}: 'model' has no BPE 'vocab' and 'merges'.")
    merges = [rule if isinstance(rule, str) else " ".join(rule) for rule in merges]
    try:
        return ClipTokenizer(vocabulary, merges, sequence_length=length, pad_token=pad)
    except ValueError as error:
        raise ValueError(f"{fast_file}: {error}") from None


def _image_converter(directory, vision_config):
    image_size = int(vision_config["image_size"])
    path = os.path.join(directory, "preprocessor_config.json")
    settings = read_json(path, required=False) or {}

    def side(value, field):
        if value is None:
            return image_size
        if isinstance(value, dict):
            sides = {value[k] for k in ("shortest_edge", "height", "width") if k in value}
            if len(sides) != 1:
                raise ValueError(f"{path}: {field} {value} is not one square size.")
            value = sides.pop()
        return int(value)

    crop = side(settings.get("crop_size"), "crop_size") if settings.get("do_center_crop", True) else image_size
    resize = side(settings.get("size"), "size") if settings.get("do_resize", True) else crop
    if crop != image_size or resize != crop:
        raise ValueError(
            f"{path}: size {resize} and crop_size {crop} must both be the image tower's image_size {image_size} "
            "(the shorter side resized to it, then a centre crop)."
        )
    return hf_image_converter(path, settings, image_size, "crop", OPENAI_CLIP_MEAN, OPENAI_CLIP_STD)


# --- weights ------------------------------------------------------------------


def _assign(variable, value):
    variable.assign(np.asarray(value, dtype=variable.dtype))


def _linear(checkpoint, prefix, width_in, width_out):
    """`(kernel [in, out], bias [out])` of a torch Linear."""
    kernel = checkpoint.get(f"{prefix}.weight", (width_out, width_in)).T
    return kernel, checkpoint.get(f"{prefix}.bias", (width_out,))


def _norm_weights(checkpoint, prefix, width):
    """`(gamma, beta)` of a torch LayerNorm."""
    return checkpoint.get(f"{prefix}.weight", (width,)), checkpoint.get(f"{prefix}.bias", (width,))


def _norm(layer, checkpoint, prefix, width):
    gamma, beta = _norm_weights(checkpoint, prefix, width)
    _assign(layer.gamma, gamma)
    _assign(layer.beta, beta)


def _set_dense(dense, kernel, bias):
    _assign(dense.kernel, kernel)
    _assign(dense.bias, bias)


def _set_block(block, qkv, output, mlp_in, mlp_out, attention_norm, mlp_norm):
    """Sets one `TransformerEncoderBlock` from `(kernel [in, out], bias)` and `(gamma, beta)` pairs.

    `qkv` is the fused projection: kernel `[width, 3 * width]` holding the query, key and value columns in that order.
    """
    for dense, (kernel, bias) in ((block.qkv_dense, qkv), (block.output_dense, output),
                                  (block.mlp_in, mlp_in), (block.mlp_out, mlp_out)):
        _set_dense(dense, kernel, bias)
    for layer, (gamma, beta) in ((block.attention_norm, attention_norm), (block.mlp_norm, mlp_norm)):
        _assign(layer.gamma, gamma)
        _assign(layer.beta, beta)


def _set_patches(tower, kernel, class_token, positions):
    """Sets a `ViTEncoder`'s bias-free patch projection (torch `[D, 3, P, P]`), class token `[D]` and positions."""
    patches = tower.get_layer("patches")
    _assign(patches.projection.kernel, kernel.transpose(2, 3, 1, 0))  # [D, 3, P, P] -> [P, P, 3, D]
    _assign(patches.projection.bias, np.zeros(patches.projection.bias.shape))
    _assign(patches.class_token, class_token[None, None])
    _assign(patches.position_embedding, positions[None])


def _set_text_embeddings(tower, tokens, positions):
    """Sets a `TextTransformerEncoder`'s token table and its first `sequence_length` positions."""
    embedding = tower.get_layer("embedding")
    _assign(embedding.token_embedding.embeddings, tokens)
    _assign(embedding.position_embedding.position_embeddings, positions[: tower.get_config()["sequence_length"]])


def _load_blocks(tower, checkpoint, prefix, config):
    width, mlp = int(config["hidden_size"]), int(config["intermediate_size"])
    for i in range(int(config["num_hidden_layers"])):
        layer = f"{prefix}.encoder.layers.{i}"
        qkv = [_linear(checkpoint, f"{layer}.self_attn.{p}_proj", width, width) for p in ("q", "k", "v")]
        _set_block(
            tower.get_layer(f"block_{i}"),
            qkv=(np.concatenate([kernel for kernel, _ in qkv], axis=1), np.concatenate([bias for _, bias in qkv])),
            output=_linear(checkpoint, f"{layer}.self_attn.out_proj", width, width),
            mlp_in=_linear(checkpoint, f"{layer}.mlp.fc1", width, mlp),
            mlp_out=_linear(checkpoint, f"{layer}.mlp.fc2", mlp, width),
            attention_norm=_norm_weights(checkpoint, f"{layer}.layer_norm1", width),
            mlp_norm=_norm_weights(checkpoint, f"{layer}.layer_norm2", width),
        )


def _load_vision(tower, checkpoint, config):
    width, patch = int(config["hidden_size"]), int(config["patch_size"])
    tokens = (int(config["image_size"]) // patch) ** 2 + 1
    _set_patches(
        tower,
        checkpoint.get("vision_model.embeddings.patch_embedding.weight", (width, 3, patch, patch)),
        checkpoint.get("vision_model.embeddings.class_embedding", (width,)),
        checkpoint.get("vision_model.embeddings.position_embedding.weight", (tokens, width)),
    )
    _norm(tower.get_layer("pre_norm"), checkpoint, "vision_model.pre_layrnorm", width)
    _load_blocks(tower, checkpoint, "vision_model", config)
    _norm(tower.get_layer("final_norm"), checkpoint, "vision_model.post_layernorm", width)


def _load_text(tower, checkpoint, config):
    width, vocabulary = int(config["hidden_size"]), int(config["vocab_size"])
    positions = int(config["max_position_embeddings"])
    _set_text_embeddings(
        tower,
        checkpoint.get("text_model.embeddings.token_embedding.weight", (vocabulary, width)),
        checkpoint.get("text_model.embeddings.position_embedding.weight", (positions, width)),
    )
    _load_blocks(tower, checkpoint, "text_model", config)
    _norm(tower.get_layer("final_norm"), checkpoint, "text_model.final_layer_norm", width)
