"""open_clip ViT CLIP checkpoints as mmkeras dual encoders, with open_clip's tokenizer and image preprocessing."""

import glob
import gzip
import os

from mmkeras.pretrained import hf_clip
from mmkeras.pretrained.safetensors_checkpoint import SafetensorsCheckpoint
from mmkeras.pretrained.checkpoint_files import checkpoint_directory, read_json

CONFIG_FILE = "open_clip_config.json"
# The state dict files open_clip's own loader looks for, in its order of preference.
CHECKPOINT_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.safetensors")
PICKLE_FILES = ("open_clip_pytorch_model.bin", "open_clip_pytorch_model.pth")
BPE_GLOB = "bpe_simple_vocab*.txt.gz"
BPE_FILE = "bpe_simple_vocab_16e6.txt.gz"
# open_clip's SimpleTokenizer keeps lines 1 to 49152 - 256 - 2 of its BPE file as merges.
BPE_LAST_LINE = 49152 - 256 - 2
LAYER_NORM_EPSILON = 1e-5  # torch.nn.LayerNorm's default, which open_clip uses
# open_clip `resize_mode` -> mmkeras `ImagePreprocessor(resize=...)`.
RESIZE_MODES = {"shortest": "crop", "longest": "pad", "squash": "stretch"}
INTERPOLATIONS = ("bicubic", "bilinear")
# model_cfg fields whose other values need parts that this importer does not build: field -> the value it reads.
# (`None` also stands for an empty dict or list.)
MODEL_FIXED = {"custom_text": False, "init_logit_bias": None}
VISION_FIXED = {
    "ls_init_value": None, "attentional_pool": False, "no_ln_pre": False, "pos_embed_type": "learnable",
    "final_ln_after_pool": False, "pool_type": "tok", "act_kwargs": None, "norm_kwargs": None,
    "timm_model_name": None, "hf_model_name": None, "block_type": None, "qk_norm": False,
    "scaled_cosine_attn": False, "scale_heads": False, "scale_attn_inner": False, "scale_attn": False,
    "scale_fc": False,
}
TEXT_FIXED = {
    "text_arch": "clip", "hf_model_name": None, "hf_tokenizer_name": None, "tokenizer_type": None,
    "tokenizer_mode": None, "ls_init_value": None, "embed_cls": False, "no_causal_mask": False,
    "final_ln_after_pool": False, "pool_type": "argmax", "proj_bias": False, "proj_type": "linear",
    "act_kwargs": None, "norm_kwargs": None, "block_type": None, "qk_norm": False, "scaled_cosine_attn": False,
    "scale_heads": False, "scale_attn_inner": False, "scale_attn": False, "scale_fc": False,
    "variable_text": False,
}
# Defaults of open_clip's CLIPVisionCfg / CLIPTextCfg for the keys a config leaves out.
VISION_DEFAULTS = {"layers": 12, "width": 768, "head_width": 64, "mlp_ratio": 4.0, "patch_size": 16, "image_size": 224}
TEXT_DEFAULTS = {"context_length": 77, "vocab_size": 49408, "width": 512, "heads": 8, "layers": 12, "mlp_ratio": 4.0}


def load_open_clip(directory, *, pooled_only=True, dtype=None, name="open_clip"):
    """Imports an open_clip ViT CLIP model from a local directory as a `DualEncoder`.

    The directory is laid out as open_clip's hub exports are:
    `open_clip_config.json` (`{"model_cfg": ..., "preprocess_cfg": ...}`),
    `open_clip_model.safetensors` (the model's state dict) and open_clip's
    BPE file (`bpe_simple_vocab_16e6.txt.gz`, or any
    `bpe_simple_vocab*.txt.gz`). Nothing is downloaded and torch is not
    needed. open_clip itself loads the same folder as
    `open_clip.create_model_and_transforms("local-dir:" + directory)`.

    The model is made of mmkeras parts: a `ViTEncoder` (class token, CLIP's
    pre-norm, exact GELU, or quick-GELU where `model_cfg.quick_gelu` is
    true), a causal `TextTransformerEncoder` pooled at the end-of-text token
    (open_clip pools at the argmax of the ids, which is the first end-of-text
    token as it is the largest id), bias-free projections and the logit
    scale. Its `preprocessor` holds a `ClipTokenizer` with open_clip's
    vocabulary, text cleaning (`cleaning="open_clip"`) and padding (id 0)
    and an `ImagePreprocessor` with `preprocess_cfg`'s size, resize mode and
    mean and std. So the model's L2-normalised embeddings are the normalised
    `encode_image` / `encode_text` of the reference, `.keras` files hold the
    whole thing, and `mmkeras.export.export_model` writes a SavedModel that
    takes raw image bytes and raw strings.

    Differences from the reference: the patch projection of a CLIP image
    tower has no bias; mmkeras' has one, set to zero. Images are resized
    bilinearly where `preprocess_cfg.interpolation` is "bicubic", and an
    image with alpha loses it before the resize (open_clip drops it after).
    `ClipTokenizer`'s docstring says which text cleaning steps of open_clip
    (ftfy) are approximated.

    Args:
        directory: the folder holding the config, the state dict and the BPE
            file.
        pooled_only: bool, towers that compute only the pooled vectors (same
            embeddings, less work; `tower.rebuild(pooled_only=False)` gives the
            token sequences back).
        dtype: optional dtype policy of the model, e.g. "mixed_bfloat16".
        name: the model's name.

    Returns:
        A `DualEncoder` with its `MultimodalPreprocessor`.

    Raises:
        ValueError: naming the file and the field, tensor or shapes: a missing
            file (the BPE file included: the message says which to put there),
            a pickle checkpoint (`.bin`, `.pt`, `.pth`; with how to convert
            it), a model other than a ViT CLIP (a timm or Hugging Face tower,
            a ResNet, options such as layer scale or attentional pooling), a
            missing tensor or a tensor whose shape does not fit the config.

    Example:

    ```python
    model = load_open_clip("checkpoints/open_clip-vit-b-32-laion2b")
    inputs = model.preprocessor({"image_bytes": [jpeg_bytes], "text": ["a photo of a dog"]})
    image_embeddings = model.image_model(inputs["images"])
    mmkeras.export.export_model(model, "open_clip_export")
    ```
    """
    directory = checkpoint_directory(directory, CONFIG_FILE, folder="folder")
    config_path = os.path.join(directory, CONFIG_FILE)
    if not os.path.isfile(config_path):
        raise ValueError(
            f"{config_path} is missing (an open_clip model folder has {CONFIG_FILE} with model_cfg and preprocess_cfg)."
        )
    config = read_json(config_path, required=True)
    model_cfg, preprocess_cfg = _sections(config, config_path)
    vision_cfg, text_cfg = _model_sections(model_cfg, config_path)
    checkpoint = SafetensorsCheckpoint(_checkpoint_file(directory))

    from mmkeras.models.dual_encoder import dual_encoder
    from mmkeras.preprocessing.multimodal_preprocessor import MultimodalPreprocessor

    activation = "quick_gelu" if model_cfg.get("quick_gelu", False) else "gelu"
    vision = _vision_config(vision_cfg, activation, config_path)
    text = _text_config(text_cfg, activation, config_path)
    tokenizer = _tokenizer(directory, text, config_path)
    text["eos_token_id"] = tokenizer.end_id
    image_converter = _image_converter(preprocess_cfg, vision, config_path)
    image_encoder = hf_clip._vision_tower(vision, config_path, pooled_only, dtype)
    text_encoder = hf_clip._text_tower(text, tokenizer, config_path, pooled_only, dtype)
    embed_dim = _positive_int(model_cfg, "embed_dim", 512, config_path, "model_cfg")
    model = dual_encoder(
        image_encoder=image_encoder,
        text_encoder=text_encoder,
        embed_dim=embed_dim,
        loss="clip",
        preprocessor=MultimodalPreprocessor(tokenizer, image_converter),
        dtype=dtype,
        name=name,
    )
    _load_vision(image_encoder, checkpoint, vision)
    _load_text(text_encoder, checkpoint, text)
    width_v, width_t = vision["hidden_size"], text["hidden_size"]
    # open_clip multiplies by these ([width, embed]); they are not transposed like a torch Linear's weight.
    hf_clip._assign(model.get_layer("image_projection").projection.kernel, checkpoint.get("visual.proj", (width_v, embed_dim)))
    hf_clip._assign(model.get_layer("text_projection").projection.kernel, checkpoint.get("text_projection", (width_t, embed_dim)))
    # exp(logit_scale) is the reference's scale; mmkeras clamps it at 100 as CLIP training does.
    model.logit_scale.log_scale.assign(float(checkpoint.get("logit_scale", ())))
    return model


# --- config -------------------------------------------------------------------


def _sections(config, path):
    if not isinstance(config, dict) or not isinstance(config.get("model_cfg"), dict):
        raise ValueError(f"{path}: 'model_cfg' is missing (open_clip's layout is {{\"model_cfg\": ..., \"preprocess_cfg\": ...}}).")
    preprocess_cfg = config.get("preprocess_cfg") or {}
    if not isinstance(preprocess_cfg, dict):
        raise ValueError(f"{path}: 'preprocess_cfg' must be an object; got {type(preprocess_cfg).__name__}.")
    return config["model_cfg"], preprocess_cfg


def _model_sections(model_cfg, path):
    vision_cfg, text_cfg = model_cfg.get("vision_cfg"), model_cfg.get("text_cfg")
    for field, value in (("vision_cfg", vision_cfg), ("text_cfg", text_cfg)):
        if not isinstance(value, dict):
            raise ValueError(f"{path}: model_cfg.{field} is missing or not an object.")
    _check_fixed(model_cfg, MODEL_FIXED, "model_cfg", path)
    _check_fixed(vision_cfg, VISION_FIXED, "model_cfg.vision_cfg", path)
    _check_fixed(text_cfg, TEXT_FIXED, "model_cfg.text_cfg", path)
    if isinstance(vision_cfg.get("layers"), (list, tuple)):
        raise ValueError(
            f"{path}: model_cfg.vision_cfg.layers is {vision_cfg['layers']} (a ResNet image tower); "
            "load_open_clip reads ViT CLIP models (layers an int)."
        )
    return {**VISION_DEFAULTS, **vision_cfg}, {**TEXT_DEFAULTS, **text_cfg}


def _check_fixed(section, fixed, where, path):
    for field, expected in fixed.items():
        value = section.get(field)
        if value in ({}, [], "", None):
            value = None
        if field == "block_type" and value == "default":
            value = None
        if value is not None and value != expected:
            raise ValueError(
                f"{path}: {where}.{field} is {value!r}; load_open_clip reads ViT CLIP models with "
                f"{field} {expected!r} (or left out)."
            )


def _positive_int(section, field, default, path, where):
    value = section.get(field, default)
    if isinstance(value, (list, tuple)):
        if len(set(value)) != 1:
            raise ValueError(f"{path}: {where}.{field} is {list(value)}; only square sizes are supported.")
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value or value <= 0:
        raise ValueError(f"{path}: {where}.{field} must be a positive int; got {value!r}.")
    return int(value)


def _vision_config(cfg, activation, path):
    """The Hugging Face-style config that `hf_clip._vision_tower` builds from."""
    where = "model_cfg.vision_cfg"
    width = _positive_int(cfg, "width", None, path, where)
    head_width = _positive_int(cfg, "head_width", None, path, where)
    image_size = _positive_int(cfg, "image_size", None, path, where)
    patch_size = _positive_int(cfg, "patch_size", None, path, where)
    if width % head_width:
        raise ValueError(f"{path}: {where}.width {width} is not a multiple of head_width {head_width}.")
    if image_size % patch_size:
        raise ValueError(f"{path}: {where}.image_size {image_size} is not a multiple of patch_size {patch_size}.")
    return {
        "hidden_size": width, "num_attention_heads": width // head_width,
        "num_hidden_layers": _positive_int(cfg, "layers", None, path, where),
        "intermediate_size": int(width * float(cfg["mlp_ratio"])),
        "image_size": image_size, "patch_size": patch_size,
        "layer_norm_eps": LAYER_NORM_EPSILON, "hidden_act": activation,
    }


def _text_config(cfg, activation, path):
    """The Hugging Face-style config that `hf_clip._text_tower` builds from."""
    where = "model_cfg.text_cfg"
    width, heads = _positive_int(cfg, "width", None, path, where), _positive_int(cfg, "heads", None, path, where)
    if width % heads:
        raise ValueError(f"{path}: {where}.width {width} is not a multiple of heads {heads}.")
    return {
        "hidden_size": width, "num_attention_heads": heads,
        "num_hidden_layers": _positive_int(cfg, "layers", None, path, where),
        "intermediate_size": int(width * float(cfg["mlp_ratio"])),
        "max_position_embeddings": _positive_int(cfg, "context_length", None, path, where),
        "vocab_size": _positive_int(cfg, "vocab_size", None, path, where),
        "layer_norm_eps": LAYER_NORM_EPSILON, "hidden_act": activation,
    }


def _checkpoint_file(directory):
    for name in CHECKPOINT_FILES:
        if os.path.isfile(os.path.join(directory, name)):
            return os.path.join(directory, name)
    for name in PICKLE_FILES:
        if os.path.isfile(os.path.join(directory, name)):
            SafetensorsCheckpoint(os.path.join(directory, name))  # refused with how to convert it
    # Any other single .safetensors file (or a pickle one, refused); the message names what is missing.
    try:
        return SafetensorsCheckpoint(directory).path
    except ValueError as error:
        if "pickle" in str(error):
            raise
        raise ValueError(f"{os.path.join(directory, CHECKPOINT_FILES[0])} is missing (the model's state dict).") from None


# --- preprocessing ------------------------------------------------------------


def _tokenizer(directory, text, config_path):
    from mmkeras.preprocessing.clip_tokenizer import END_TOKEN
    from mmkeras.preprocessing.clip_tokenizer import START_TOKEN
    from mmkeras.preprocessing.clip_tokenizer import ClipTokenizer

    files = sorted(glob.glob(os.path.join(glob.escape(directory), BPE_GLOB)))
    if not files:
        raise ValueError(
            f"{directory} has no BPE file ({BPE_GLOB}): put open_clip's {BPE_FILE} there "
            "(it ships in the open_clip_torch package, next to open_clip/tokenizer.py)."
        )
    if len(files) > 1:
        raise ValueError(f"{directory} has several BPE files {[os.path.basename(f) for f in files]}; keep one.")
    path = files[0]
    try:
        with gzip.open(path) as f:
            lines = f.read().decode("utf-8").split("\n")
    except (OSError, EOFError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not a gzipped UTF-8 BPE merges file ({error}).") from None
    # As open_clip's SimpleTokenizer: the byte symbols, the same with "</w>", every merge line joined, then
    # the start and end tokens (open_clip spells them <start_of_text> and <end_of_text>).
    rules = [line.split() for line in lines[1:1 + BPE_LAST_LINE]]
    symbols = list(_byte_symbols())
    ordered = symbols + [s + "</w>" for s in symbols] + ["".join(rule) for rule in rules] + [START_TOKEN, END_TOKEN]
    vocabulary = {token: i for i, token in enumerate(ordered)}  # a repeated token keeps its last id, as there
    merges = [" ".join(rule) for rule in rules if len(rule) == 2]
    vocabulary_size = text["vocab_size"]
    if max(vocabulary.values()) >= vocabulary_size:
        raise ValueError(
            f"{config_path}: model_cfg.text_cfg.vocab_size is {vocabulary_size}, but {path} gives "
            f"{max(vocabulary.values()) + 1} token ids."
        )
    pad = ordered[0]  # open_clip pads with id 0
    try:
        return ClipTokenizer(
            vocabulary, merges, sequence_length=text["max_position_embeddings"], pad_token=pad, cleaning="open_clip"
        )
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None


def _byte_symbols():
    from mmkeras.preprocessing.clip_tokenizer import _bytes_to_unicode

    # open_clip's order: the printable bytes first, then the others.
    table = _bytes_to_unicode()
    printable = [b for b in range(256) if table[b] == chr(b)]
    return [table[b] for b in printable + [b for b in range(256) if b not in printable]]


def _image_converter(preprocess_cfg, vision, path):
    from mmkeras.preprocessing.image_preprocessor import ImagePreprocessor

    image_size = vision["image_size"]
    size = _positive_int(preprocess_cfg, "size", image_size, path, "preprocess_cfg")
    if size != image_size:
        raise ValueError(f"{path}: preprocess_cfg.size {size} is not the image tower's image_size {image_size}.")
    resize_mode = preprocess_cfg.get("resize_mode", "shortest")
    if resize_mode not in RESIZE_MODES:
        raise ValueError(f"{path}: preprocess_cfg.resize_mode {resize_mode!r} is not supported; supported: {sorted(RESIZE_MODES)}.")
    interpolation = preprocess_cfg.get("interpolation", "bicubic")
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"{path}: preprocess_cfg.interpolation {interpolation!r} is not supported; supported: {list(INTERPOLATIONS)}.")
    if preprocess_cfg.get("fill_color", 0) != 0:
        raise ValueError(f"{path}: preprocess_cfg.fill_color {preprocess_cfg['fill_color']!r} is not supported (0 only).")
    if preprocess_cfg.get("mode", "RGB") != "RGB":
        raise ValueError(f"{path}: preprocess_cfg.mode {preprocess_cfg['mode']!r} is not supported (RGB only).")
    channels = {}
    for field, default in (("mean", hf_clip.OPENAI_CLIP_MEAN), ("std", hf_clip.OPENAI_CLIP_STD)):
        value = preprocess_cfg.get(field, default)
        if isinstance(value, (int, float)):
            value = [value] * 3
        if not isinstance(value, (list, tuple)) or len(value) != 3:
            raise ValueError(f"{path}: preprocess_cfg.{field} must be 3 numbers; got {value!r}.")
        channels[field] = [float(v) for v in value]
    return ImagePreprocessor(
        image_size=image_size, resize=RESIZE_MODES[resize_mode], mean=channels["mean"], std=channels["std"],
        name="image_converter",
    )


# --- weights ------------------------------------------------------------------


def _load_blocks(tower, checkpoint, prefix, config):
    width, mlp = config["hidden_size"], config["intermediate_size"]
    for i in range(config["num_hidden_layers"]):
        layer = f"{prefix}resblocks.{i}"
        qkv = checkpoint.get(f"{layer}.attn.in_proj_weight", (3 * width, width)).T  # q, k, v packed
        hf_clip._set_block(
            tower.get_layer(f"block_{i}"),
            qkv=(qkv, checkpoint.get(f"{layer}.attn.in_proj_bias", (3 * width,))),
            output=hf_clip._linear(checkpoint, f"{layer}.attn.out_proj", width, width),
            mlp_in=hf_clip._linear(checkpoint, f"{layer}.mlp.c_fc", width, mlp),
            mlp_out=hf_clip._linear(checkpoint, f"{layer}.mlp.c_proj", mlp, width),
            attention_norm=hf_clip._norm_weights(checkpoint, f"{layer}.ln_1", width),
            mlp_norm=hf_clip._norm_weights(checkpoint, f"{layer}.ln_2", width),
        )


def _load_vision(tower, checkpoint, config):
    width, patch = config["hidden_size"], config["patch_size"]
    tokens = (config["image_size"] // patch) ** 2 + 1
    hf_clip._set_patches(
        tower,
        checkpoint.get("visual.conv1.weight", (width, 3, patch, patch)),
        checkpoint.get("visual.class_embedding", (width,)),
        checkpoint.get("visual.positional_embedding", (tokens, width)),
    )
    hf_clip._norm(tower.get_layer("pre_norm"), checkpoint, "visual.ln_pre", width)
    _load_blocks(tower, checkpoint, "visual.transformer.", config)
    hf_clip._norm(tower.get_layer("final_norm"), checkpoint, "visual.ln_post", width)


def _load_text(tower, checkpoint, config):
    width = config["hidden_size"]
    hf_clip._set_text_embeddings(
        tower,
        checkpoint.get("token_embedding.weight", (config["vocab_size"], width)),
        checkpoint.get("positional_embedding", (config["max_position_embeddings"], width)),
    )
    _load_blocks(tower, checkpoint, "transformer.", config)
    hf_clip._norm(tower.get_layer("final_norm"), checkpoint, "ln_final", width)
