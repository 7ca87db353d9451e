"""Builds a model family from a validated run config (see `mmkeras.config`)."""

from mmkeras.registry import lookup

BUILDERS = {
    "matching": "mmkeras.models.dual_encoder:dual_encoder",
    "captioning": "mmkeras.models.captioner:captioner",
    "fusion": "mmkeras.models.fusion_classifier:fusion_classifier",
}

# Sizes that a tower takes from the `data` section when its spec leaves them out (set once there).
TOWER_SIZES_FROM_DATA = {
    "image_encoder": ("image_size",),
    "text_encoder": ("vocabulary_size", "sequence_length"),
}


def builder_for_task(task):
    """The builder function of a task family ("matching", "captioning", "fusion").

    Example:

    >>> builder_for_task("matching").__name__
    'dual_encoder'
    """
    return lookup(BUILDERS, task, "task")


def build_from_config(config, preprocessor=None, towers=None):
    """Builds the untrained Keras model that a run config describes.

    Sizes are set once, in the `data` section: the image tower takes
    `data.image_size` and a Transformer text tower `data.vocabulary_size` and
    `data.sequence_length` unless their specs say otherwise.

    Args:
        config: a config from `mmkeras.config.resolve_config` (or `mmkeras.zoo.config`).
        preprocessor: optional `MultimodalPreprocessor` the model keeps (and
            checks against its towers).
        towers: optional `{"image_encoder": tower, "text_encoder": tower}`:
            built towers (e.g. pretrained ones) used instead of the config's specs.

    Returns:
        The family's functional Keras model.

    Example:

    >>> from mmkeras import zoo
    >>> model = build_from_config(zoo.config("shapes-clip-tiny"))
    >>> model.name
    'dual_encoder'
    """
    from mmkeras.encoders.build_encoder import build_encoder, encoder_arguments

    from mmkeras.training.precision import resolve_precision

    precision = resolve_precision(config.get("train", {}).get("precision", "float32"))[0]  # "auto": this device's
    dtype = None if precision == "float32" else precision
    data = config.get("data", {})
    kwargs = dict(config.get("model", {}))
    given, towers = dict(towers or {}), {}
    # A dual encoder reads only the pooled vectors: our Transformer towers then
    # skip the last block's work for the other tokens (same weights and outputs).
    pooled_only = config["task"] == "matching"

    for name, sizes in TOWER_SIZES_FROM_DATA.items():
        if name in given:
            towers[name] = given[name]
            continue
        if not config.get(name):
            continue
        spec = dict(config[name])
        accepted = encoder_arguments(spec["type"])
        if pooled_only and "pooled_only" in accepted:
            spec.setdefault("pooled_only", True)
        for size in sizes:
            if size in accepted and data.get(size) is not None:
                spec.setdefault(size, data[size])
        towers[name] = build_encoder(spec, dtype, name)
    return builder_for_task(config["task"])(**towers, dtype=dtype, preprocessor=preprocessor, **kwargs)
