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


def load_checkpoint(source, **options):
    """Imports a pretrained checkpoint from a local folder as an mmkeras `DualEncoder`.

    The model is made of mmkeras towers, carries the checkpoint's own tokenizer
    and image preprocessing (`model.preprocessor`), saves to `.keras` and
    exports with `mmkeras.export.export_model`. Nothing is downloaded, torch is
    never needed and only safetensors weights are read.

    Args:
        source: `hf:DIR` (a Hugging Face `CLIPModel` or `SiglipModel` folder),
            `open_clip:DIR` (an open_clip model config JSON and safetensors state
            dict) or `keras_hub:DIR` (a keras-hub CLIP or SigLIP preset folder).
        **options: passed to the importer (e.g. `pooled_only`, `dtype`).

    Returns:
        The `DualEncoder`.

    Example:

    ```python
    model = load_checkpoint("hf:checkpoints/clip-vit-base-patch32")
    model.preprocessor({"text": tf.constant(["a dog"])})["token_ids"]
    ```
    """
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
    if model_type not in HF_IMPORTERS:
        raise ValueError(
            f"{path}: model_type {model_type!r} is not an image-text model mmkeras imports as a dual encoder; "
            f"supported: {', '.join(sorted(HF_IMPORTERS))}."
        )
    return lookup(HF_IMPORTERS, model_type, "model_type")(directory, **options)
