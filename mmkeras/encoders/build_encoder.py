"""Builds any tower from a config dict such as `{"type": "vit", "hidden_dim": 256, ...}`."""

import inspect

from mmkeras.registry import lookup
from mmkeras.validation import check_argument_types

# type name -> "module:Class". Imported lazily so that optional towers (TF-Hub,
# keras-hub presets) cost nothing unless used.
ENCODER_TYPES = {
    "vit": "mmkeras.encoders.vit_encoder:ViTEncoder",
    "cnn": "mmkeras.encoders.cnn_encoder:CNNEncoder",
    "text_transformer": "mmkeras.encoders.text_transformer_encoder:TextTransformerEncoder",
    "keras_hub": "mmkeras.encoders.keras_hub_encoder:KerasHubEncoder",
    "tf_hub": "mmkeras.encoders.tf_hub_encoder:TFHubEncoder",
}


def encoder_class(type_name):
    """Returns the tower class registered under `type_name`.

    Args:
        type_name: one of `ENCODER_TYPES`.

    Example:

    >>> encoder_class("vit").__name__
    'ViTEncoder'
    """
    return lookup(ENCODER_TYPES, type_name, "encoder `type`")


def encoder_arguments(type_name):
    """Names of the constructor arguments a tower of `type_name` accepts."""
    params = inspect.signature(encoder_class(type_name).__init__).parameters
    return sorted(p for p in params if p not in ("self", "kwargs", "args"))


def validate_encoder_spec(spec, field="encoder"):
    """Checks an encoder spec and raises a ValueError naming the bad field.

    Args:
        spec: dict with a `type` key and constructor arguments.
        field: the config path of `spec`, used in error messages.

    Example:

    >>> validate_encoder_spec({"type": "vit", "hidden_dim": 64}, "image_encoder")
    >>> validate_encoder_spec({"type": "vit", "width": 64}, "image_encoder")
    Traceback (most recent call last):
    ...
    ValueError: Unknown field `image_encoder.width` for a 'vit' encoder; valid fields: ...
    """
    if not isinstance(spec, dict) or "type" not in spec:
        raise ValueError(f"`{field}` must be a dict with a `type` key, got {spec!r}.")
    valid = encoder_arguments(spec["type"])
    for key in spec:
        if key != "type" and key not in valid:
            raise ValueError(
                f"Unknown field `{field}.{key}` for a {spec['type']!r} encoder; valid fields: "
                f"{', '.join(valid)}."
            )
    arguments = {key: value for key, value in spec.items() if key != "type"}
    check_argument_types(encoder_class(spec["type"]).__init__, arguments, field)


def build_encoder(spec, dtype=None, field="encoder"):
    """Builds a tower from a spec dict.

    Args:
        spec: dict with a `type` key (see `ENCODER_TYPES`) and the tower's
            constructor arguments.
        dtype: optional dtype policy applied when the spec sets none.
        field: the config path of `spec`, used in error messages.

    Returns:
        The tower, a `keras.Model` returning `{"sequence", "pooled", ...}`.

    Example:

    >>> tower = build_encoder({"type": "vit", "image_size": 32, "patch_size": 16,
    ...     "hidden_dim": 16, "num_layers": 1, "num_heads": 2, "mlp_dim": 32})
    >>> tower.output_dim
    16
    """
    validate_encoder_spec(spec, field)
    kwargs = {k: v for k, v in spec.items() if k != "type"}
    if dtype is not None and "dtype" in encoder_arguments(spec["type"]):
        kwargs.setdefault("dtype", dtype)
    return encoder_class(spec["type"])(**kwargs)
