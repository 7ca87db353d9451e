"""keras-hub preset directories (CLIP, SigLIP, ViT, BERT backbones) as mmkeras models and towers."""

import json
import os

import numpy as np

from mmkeras.pretrained.checkpoint_files import read_json

BACKBONES = ("CLIPBackbone", "SigLIPBackbone", "ViTBackbone", "BertBackbone")
POOLINGS = ("cls", "pooler")


def load_keras_hub_preset(directory, *, pooling="cls", sequence_length=None, tokenizer=None, dtype=None, name=None):
    """Imports a local keras-hub preset directory as an mmkeras model or tower.

    The directory is what `backbone.save_to_preset(DIR)` writes (with, for
    text, the tokenizer's and, for images, the image converter's
    `save_to_preset(DIR)`); nothing is downloaded. By backbone class:

    - `CLIPBackbone` / `SigLIPBackbone`: a `DualEncoder` whose towers are
      `KerasHubEncoder`s around the backbone's vision and text encoders,
      with the backbone's projections (CLIP; SigLIP's towers end in their
      own heads, so its projections start as the identity), logit scale and
      (SigLIP) bias, and a `MultimodalPreprocessor`: an `ImagePreprocessor`
      to [-1, 1] that resizes as the preset's image converter does (a
      centre crop unless it sets `crop_to_aspect_ratio=False`; the tower
      re-applies the converter's scale and offset) and the checkpoint's
      tokenizer in graph, `max_sequence_length` ids (CLIP: a `ClipTokenizer`
      with the preset's vocabulary and merges; SigLIP: a
      `SentencePieceTokenizer` with the preset's SentencePiece model, the
      ids of Hugging Face's `SiglipTokenizer`). Its L2-normalised embeddings
      are the backbone's `get_vision_embeddings` / `get_text_embeddings`,
      normalised.
    - `ViTBackbone`: `(tower, image_converter)`, as `load_hf_vit` returns
      (`pooling` "cls" only: keras-hub's ViT has no pooler).
    - `BertBackbone`: `(tower, tokenizer)`, as `load_hf_bert` returns: a
      `KerasHubEncoder` (`pooling` "cls" is the `[CLS]` token, "pooler" the
      backbone's `pooled_output`) and a `WordPieceTokenizer` with the
      preset's vocabulary and lower-casing, giving the ids of the reference
      (Hugging Face) BERT tokenizer, which keras-hub's own differs from on
      accents, full-width letters and control characters.

    Args:
        directory: the preset directory (with keras-hub's `config.json`).
        pooling: "cls" or "pooler", for ViT and BERT towers.
        sequence_length: optional length of the BERT token id rows (default
            the backbone's `max_sequence_length`).
        tokenizer: optional tokenizer layer (strings -> `[N, L]` int32 ids)
            of a CLIP or SigLIP model, instead of the one built from the
            preset.
        dtype: optional dtype policy, e.g. "mixed_bfloat16".
        name: optional name of the model or tower.

    Returns:
        A `DualEncoder` (CLIP, SigLIP), `(tower, image_converter)` (ViT) or
        `(tower, tokenizer)` (BERT).

    Raises:
        ValueError: naming the file and field: no directory, no keras-hub
            `config.json` (a Hugging Face one is pointed to `hf:`), a
            backbone class other than those above, a missing or unusable
            tokenizer.

    Example:

    ```python
    model = load_keras_hub_preset("presets/clip_vit_base_patch32")
    serving = mmkeras.export.export_model(model, "clip_export")
    ```
    """
    directory = os.fspath(directory)
    if pooling not in POOLINGS:
        raise ValueError(f"`pooling` must be one of {POOLINGS}, got {pooling!r}.")
    class_name = _backbone_class(directory)
    import keras_hub

    backbone = keras_hub.models.Backbone.from_preset(directory, **({} if dtype is None else {"dtype": dtype}))
    if class_name in ("CLIPBackbone", "SigLIPBackbone"):
        return _dual_encoder(directory, backbone, class_name, tokenizer, dtype, name or class_name[:-8].lower())
    if pooling == "pooler" and class_name == "ViTBackbone":
        raise ValueError(f"{directory}: a keras-hub ViTBackbone has no pooler; use pooling='cls'.")
    from mmkeras.encoders.keras_hub_encoder import KerasHubEncoder

    modality = "image" if class_name == "ViTBackbone" else "text"
    options = {"pooling": "first" if pooling == "cls" else "auto", "dtype": dtype}
    options["name"] = name or f"{modality}_encoder"
    if modality == "image":
        return _image_tower(directory, backbone, options), _image_converter(directory, backbone.image_shape)
    tokenizer = _wordpiece(directory, backbone, sequence_length)
    return KerasHubEncoder(directory, "text", backbone, pad_token_id=tokenizer.pad_id, **options), tokenizer


def _backbone_class(directory):
    if not os.path.isdir(directory):
        raise ValueError(f"Preset directory not found: {directory}.")
    path = os.path.join(directory, "config.json")
    config = read_json(path, required=True, missing="a keras-hub preset directory has a config.json")
    if "class_name" not in config and "model_type" in config:
        raise ValueError(f"{path} is a Hugging Face config (model_type {config['model_type']!r}); import it as hf:DIR.")
    class_name = config.get("class_name")
    if class_name not in BACKBONES:
        raise ValueError(f"{path}: class_name {class_name!r} is not a backbone mmkeras imports; supported: "
                         f"{', '.join(BACKBONES)}.")
    return class_name


def _image_tower(directory, backbone, options):
    from mmkeras.encoders.keras_hub_encoder import KerasHubEncoder
    from mmkeras.encoders.keras_hub_encoder import _converter_scaling

    scale, offset = _converter_scaling(directory)
    return KerasHubEncoder(directory, "image", backbone, image_scale=scale, image_offset=offset, **options)


def _image_converter(directory, image_shape):
    """An `ImagePreprocessor` to [-1, 1] resizing as the preset's image converter does (crop, pad or stretch)."""
    from mmkeras.preprocessing.image_preprocessor import ImagePreprocessor

    resize = "crop"
    path = os.path.join(directory, "image_converter.json")
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            settings = (json.load(f) or {}).get("config") or {}
        if settings.get("pad_to_aspect_ratio"):
            resize = "pad"
        elif not settings.get("crop_to_aspect_ratio", True):
            resize = "stretch"
    height, width = int(image_shape[0]), int(image_shape[1])
    size = height if height == width else (height, width)
    return ImagePreprocessor(image_size=size, resize=resize, transparency="white", name="image_converter")


def _preset_tokenizer(directory):
    import keras_hub

    if not os.path.isfile(os.path.join(directory, "tokenizer.json")):
        raise ValueError(
            f"{directory} has no tokenizer.json: save the tokenizer with `tokenizer.save_to_preset(DIR)` too."
        )
    return keras_hub.tokenizers.Tokenizer.from_preset(directory)


def _wordpiece(directory, backbone, sequence_length):
    from mmkeras.preprocessing.wordpiece_tokenizer import WordPieceTokenizer

    source = _preset_tokenizer(directory)
    limit = int(backbone.max_sequence_length)
    if sequence_length is None:
        sequence_length = limit
    elif isinstance(sequence_length, bool) or not isinstance(sequence_length, int) or not 2 <= sequence_length <= limit:
        raise ValueError(f"`sequence_length` must be an int from 2 to the backbone's max_sequence_length={limit}; "
                         f"got {sequence_length!r}.")
    return WordPieceTokenizer(
        list(source.vocabulary),
        sequence_length=sequence_length,
        lowercase=bool(source.lowercase),
        strip_accents=True if getattr(source, "strip_accents", False) else None,
        start_token=source.cls_token,
        end_token=source.sep_token,
        pad_token=source.pad_token,
        unknown_token=source.oov_token,
        suffix_indicator=source.suffix_indicator,
        name="tokenizer",
    )


def _dual_encoder(directory, backbone, class_name, tokenizer, dtype, name, image_converter=None):
    """A `DualEncoder` of a keras-hub `CLIPBackbone` / `SigLIPBackbone` whose weights are set.

    Shared by the preset and Hugging Face SigLIP importers: `KerasHubEncoder`
    towers around the backbone's encoders, its projections (identity for
    SigLIP, whose towers end in their own heads), logit scale and (SigLIP)
    bias, and a `MultimodalPreprocessor` of `tokenizer` and `image_converter`
    (default: one resizing as the preset's image converter does).

    Args:
        directory: the checkpoint directory (the towers' provenance).
        backbone: the keras-hub backbone.
        class_name: "CLIPBackbone" or "SigLIPBackbone".
        tokenizer: the tokenizer layer, or None for the preset's.
        dtype: optional dtype policy.
        name: the model's name.
        image_converter: optional image preprocessing layer.
    """
    from mmkeras.encoders.keras_hub_encoder import KerasHubEncoder
    from mmkeras.models.dual_encoder import dual_encoder
    from mmkeras.preprocessing.multimodal_preprocessor import MultimodalPreprocessor

    siglip = class_name == "SigLIPBackbone"
    if tokenizer is None:
        tokenizer = _siglip_tokenizer(directory, backbone) if siglip else _clip_tokenizer(directory, backbone)
    if image_converter is None:
        image_converter = _image_converter(directory, backbone.vision_encoder.image_shape)
    image_encoder = _image_tower(directory, backbone, {"dtype": dtype, "name": "image_encoder"})
    text_encoder = KerasHubEncoder(
        directory, "text", backbone, pad_token_id=_pad_id(tokenizer), dtype=dtype, name="text_encoder"
    )
    if siglip:
        if image_encoder.output_dim != text_encoder.output_dim:
            raise ValueError(
                f"{directory}: the SigLIP image tower's width {image_encoder.output_dim} differs from the text "
                f"tower's {text_encoder.output_dim}."
            )
        embed_dim = image_encoder.output_dim
        projections = (np.eye(embed_dim), np.eye(embed_dim))
        head = backbone.siglip_head
    else:
        embed_dim = int(backbone.projection_dim)
        projections = (backbone.vision_projection.kernel.numpy(), backbone.text_projection.kernel.numpy())
        head = backbone.clip_head
    model = dual_encoder(
        image_encoder=image_encoder,
        text_encoder=text_encoder,
        embed_dim=embed_dim,
        loss="siglip" if siglip else "clip",
        preprocessor=MultimodalPreprocessor(tokenizer, image_converter),
        dtype=dtype,
        name=name,
    )
    for layer_name, kernel in zip(("image_projection", "text_projection"), projections):
        variable = model.get_layer(layer_name).projection.kernel
        variable.assign(np.asarray(kernel, dtype=variable.dtype))
    model.logit_scale.log_scale.assign(float(head.logit_scale.numpy()))
    if siglip:
        model.logit_scale.bias.assign(float(head.logit_bias.numpy()))
    return model


def _clip_tokenizer(directory, backbone):
    from mmkeras.preprocessing.clip_tokenizer import END_TOKEN
    from mmkeras.preprocessing.clip_tokenizer import ClipTokenizer

    source = _preset_tokenizer(directory)
    pad = END_TOKEN if source.pad_with_end_token else source.id_to_token(source.pad_token_id)
    try:
        return ClipTokenizer(
            dict(source.vocabulary),
            list(source.merges),
            sequence_length=int(backbone.text_encoder.max_sequence_length),
            pad_token=pad,
            name="tokenizer",
        )
    except ValueError as error:
        raise ValueError(f"{directory}: the preset's CLIP tokenizer: {error}") from None


def _siglip_tokenizer(directory, backbone):
    from mmkeras.preprocessing.sentencepiece_tokenizer import SentencePieceTokenizer

    source = _preset_tokenizer(directory)
    try:
        return SentencePieceTokenizer(
            source.proto, sequence_length=int(backbone.text_encoder.max_sequence_length), name="tokenizer"
        )
    except ValueError as error:
        raise ValueError(f"{directory}: the preset's SigLIP tokenizer: {error}") from None


def _pad_id(tokenizer):
    """The padding id of a tokenizer layer (`pad_id`, `pad_token_id`), else 0."""
    for attribute in ("pad_id", "pad_token_id"):
        value = getattr(tokenizer, attribute, None)
        if isinstance(value, int):
            return value
    return 0
