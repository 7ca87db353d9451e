"""One entry point for every pretrained source: `hf:DIR`, `open_clip:DIR`, `keras_hub:DIR`."""

import json
import os

from mmkeras.registry import lookup

SOURCE_KINDS = ("hf", "open_clip", "keras_hub")
# Hugging Face `config.json` `model_type` -> the importer of that architecture.
HF_IMPORTERS = {
    "clip": "mmkeras.pretrained.hf_clip:load_hf_clip",
    "siglip": "mmkeras.pretrained.hf_siglip:load_hf_siglip",
}
# Single towers, paired into a dual encoder with new projections (`load_checkpoint(image, text=...)`).
HF_TOWER_IMPORTERS = {
    "vit": "mmkeras.pretrained.hf_vit:load_hf_vit",
    "bert": "mmkeras.pretrained.hf_bert:load_hf_bert",
}
OTHER_IMPORTERS = {
    "open_clip": "mmkeras.pretrained.open_clip:load_open_clip",
    "keras_hub": "mmkeras.pretrained.keras_hub_preset:load_keras_hub_preset",
}


def parse_source(source):
    """Splits a source string `KIND:DIR` into `(kind, directory)`, with clear errors.

    Args:
        source: `hf:DIR`, `open_clip:DIR` or `keras_hub:DIR` (a local folder; nothing is downloaded).

    Example:

    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> parse_source(f"hf:{folder}") == ("hf", folder)
    True
    >>> parse_source("openai/clip-vit-base-patch32")
    Traceback (most recent call last):
    ...
    ValueError: The source must be KIND:DIR with KIND one of hf, open_clip, keras_hub (a local folder; nothing is downloaded), got 'openai/clip-vit-base-patch32'.
    """
    kind, separator, directory = str(source).partition(":")
    if not separator or kind not in SOURCE_KINDS or not directory:
        raise ValueError(
            f"The source must be KIND:DIR with KIND one of {', '.join(SOURCE_KINDS)} (a local folder; nothing "
            f"is downloaded), got {source!r}."
        )
    if not os.path.isdir(directory):
        raise ValueError(f"Checkpoint directory not found: {directory} (from the source {source!r}).")
    return kind, directory


def load_checkpoint(source, text=None, embed_dim=512, **options):
    """Imports a pretrained checkpoint from a local folder as an mmkeras `DualEncoder`.

    The model is made of mmkeras towers, carries the checkpoint's own tokenizer
    and image preprocessing (`model.preprocessor`), saves to `.keras` and
    exports with `mmkeras.export.export_model`. Nothing is downloaded, torch is
    never needed and only safetensors weights are read.

    A source holding one tower (a Hugging Face `ViTModel` or `BertModel`, a
    keras-hub ViT or BERT preset) is paired with a second one: the image tower
    as `source`, the text tower as `text`. Their projections to `embed_dim` are
    new (trained when fine-tuning), so such a pair is a starting point for
    `mmkeras train PRESET --init`, not a zero-shot model.

    Args:
        source: `hf:DIR` (a Hugging Face `CLIPModel`, `SiglipModel` or
            `ViTModel` folder), `open_clip:DIR` (an open_clip model config JSON
            and safetensors state dict) or `keras_hub:DIR` (a keras-hub CLIP,
            SigLIP or ViT preset folder).
        text: the text tower's source when `source` is an image tower
            (`hf:DIR` of a `BertModel`, `keras_hub:DIR` of a BERT preset).
        embed_dim: the shared embedding width of a paired dual encoder.
        **options: passed to the importer of a dual-encoder checkpoint (e.g.
            `pooled_only`, `dtype`).

    Returns:
        The `DualEncoder`.

    Example:

    ```python
    model = load_checkpoint("hf:checkpoints/clip-vit-base-patch32")
    lit = load_checkpoint("hf:checkpoints/vit-base-patch16-224", text="hf:checkpoints/bert-base-uncased")
    ```
    """
    loaded = _load(source, **options)
    if text is None:
        if isinstance(loaded, tuple):
            raise ValueError(
                f"{source} holds a single {_side(loaded)} tower: pair it with a {_other(loaded)} tower "
                f"(`--text hf:BERT_DIR` for an image tower) to make a dual encoder."
            )
        return loaded
    paired = _load(text)
    if not isinstance(loaded, tuple) or _side(loaded) != "image":
        raise ValueError(f"{source} must hold an image tower (ViT) to be paired with the text tower {text}.")
    if not isinstance(paired, tuple) or _side(paired) != "text":
        raise ValueError(f"{text} must hold a text tower (BERT) to be paired with the image tower {source}.")
    from mmkeras.models.dual_encoder import dual_encoder
    from mmkeras.preprocessing.multimodal_preprocessor import MultimodalPreprocessor

    (image_tower, converter), (text_tower, tokenizer) = loaded, paired
    return dual_encoder(image_encoder=image_tower, text_encoder=text_tower, embed_dim=int(embed_dim),
                        preprocessor=MultimodalPreprocessor(tokenizer, converter))


def _side(tower):
    """"image" or "text": which tower a `(tower, preprocessing)` pair is."""
    from mmkeras.preprocessing.image_preprocessor import ImagePreprocessor

    return "image" if isinstance(tower[1], ImagePreprocessor) else "text"


def _other(tower):
    return "text" if _side(tower) == "image" else "image"


def _load(source, **options):
    """A `DualEncoder`, or `(tower, preprocessing)` for a single-tower checkpoint."""
    kind, directory = parse_source(source)
    if kind != "hf":
        return lookup(OTHER_IMPORTERS, kind, "source kind")(directory, **options)
    path = os.path.join(directory, "config.json")
    if not os.path.isfile(path):
        raise ValueError(f"{path} is missing (a Hugging Face checkpoint directory has a config.json).")
    with open(path, encoding="utf-8") as f:
        try:
            model_type = json.load(f).get("model_type")
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} is not valid JSON ({error}).") from None
    if model_type in HF_TOWER_IMPORTERS:
        return lookup(HF_TOWER_IMPORTERS, model_type, "model_type")(directory)
    if model_type not in HF_IMPORTERS:
        raise ValueError(
            f"{path}: model_type {model_type!r} is not a checkpoint mmkeras imports; supported: "
            f"{', '.join(sorted({**HF_IMPORTERS, **HF_TOWER_IMPORTERS}))}."
        )
    return lookup(HF_IMPORTERS, model_type, "model_type")(directory, **options)
