"""Builds a model family from a validated run config (see `mmkeras.config`)."""

import importlib

BUILDERS = {
    "matching": "mmkeras.models.dual_encoder:dual_encoder",
    "captioning": "mmkeras.models.captioner:captioner",
    "fusion": "mmkeras.models.fusion_classifier:fusion_classifier",
}


def builder_for_task(task):
    """The builder function of a task family ("matching", "captioning", "fusion").

    Example:

    >>> builder_for_task("matching").__name__
    'dual_encoder'
    """
    if task not in BUILDERS:
        raise ValueError(f"Unknown task {task!r}; valid tasks: {sorted(BUILDERS)}.")
    module, name = BUILDERS[task].split(":")
    return getattr(importlib.import_module(module), name)


def build_from_config(config):
    """Builds the untrained Keras model that a run config describes.

    Args:
        config: a config from `mmkeras.config.resolve_config` (or `mmkeras.zoo.config`).

    Returns:
        The family's functional Keras model.

    Example:

    >>> from mmkeras import zoo
    >>> model = build_from_config(zoo.config("shapes-clip-tiny"))
    >>> model.name
    'dual_encoder'
    """
    from mmkeras.encoders.build_encoder import build_encoder

    precision = config.get("train", {}).get("precision", "float32")
    dtype = None if precision == "float32" else precision
    data = config.get("data", {})
    kwargs = dict(config.get("model", {}))
    towers = {}
    # A dual encoder reads only the pooled vectors: our Transformer towers then
    # skip the last block's work for the other tokens (same weights and outputs).
    pooled_only = config["task"] == "matching"

    def spec_of(name):
        spec = dict(config[name])
        if pooled_only and spec["type"] in ("vit", "text_transformer"):
            spec.setdefault("pooled_only", True)
        return spec

    if config.get("image_encoder"):
        towers["image_encoder"] = build_encoder(spec_of("image_encoder"), dtype, "image_encoder")
    if config.get("text_encoder"):
        spec = spec_of("text_encoder")
        if spec["type"] == "text_transformer":
            spec.setdefault("vocabulary_size", data.get("vocabulary_size"))
            spec.setdefault("sequence_length", data.get("sequence_length"))
        towers["text_encoder"] = build_encoder(spec, dtype, "text_encoder")
    return builder_for_task(config["task"])(**towers, dtype=dtype, **kwargs)
