"""Run configs: family defaults, preset overrides, validation with field-named errors.

A run config is a nested dict with these sections:

- `task`: "matching", "captioning" or "fusion";
- `image_encoder` / `text_encoder`: tower specs (`{"type": ..., **constructor args}`),
  validated against the tower's constructor;
- `model`: arguments of the family's builder, validated against its signature;
- `data`, `train`, `eval`: validated against `SECTION_DEFAULTS` (every key known,
  every value of the default's type, choices checked, numbers within `BOUNDS`).
"""

import copy
import json

from mmkeras.data.open_source import DATASET_KINDS
from mmkeras.validation import check_argument_types, type_matches

TASKS = ("matching", "captioning", "fusion")

SECTION_DEFAULTS = {
    "data": {
        "dataset": "shapes",
        "path": None,
        "images": None,
        "val_fraction": 0.1,
        "data_dir": None,
        "split_json": None,
        "image_size": 64,
        "max_pixels": 50_000_000,
        "num_train": 6000,
        "num_val": 500,
        "num_test": 1000,
        "seed": 0,
        "vocabulary_size": 512,
        "sequence_length": 24,
        "captions_per_image": 1,
        "texts_per_image": 1,
        "augment": True,
    },
    "train": {
        "epochs": 10,
        "global_batch_size": 64,
        "learning_rate": 1e-3,
        "weight_decay": 0.05,
        "warmup_fraction": 0.1,
        "precision": "auto",
        "jit_compile": True,
        "steps_per_execution": 1,
        "strategy": "auto",
        "tpu": None,
        "seed": 0,
        "accumulate": 1,
        "checkpoint_every": 0,
        "keep_checkpoints": 3,
        "deterministic": False,
        "graph_optimization": True,
        "run_eagerly": False,
        "init": None,
        "validate": True,
        "monitor": "val_loss",
        "early_stopping_patience": 0,
        "restore_best": False,
        "lora_rank": 0,
        "lora_alpha": None,
        "lora_targets": ["attention", "mlp"],
        "remat": False,
        "tower_pretraining_steps": 0,
        "tower_pretraining_batch_size": 64,
        "tower_pretraining_learning_rate": None,
        "tower_pretraining_schedule": "constant",
    },
    "eval": {
        "batch_size": 128,
        "num_beams": 3,
        "max_length": 24,
        "length_penalty": 1.0,
        "jit_compile": True,
    },
}

CHOICES = {
    "task": TASKS,
    "train.precision": ("auto", "float32", "mixed_bfloat16", "mixed_float16"),
    "train.strategy": ("auto", "cpu", "gpu", "mirrored", "multi_worker", "tpu"),
    "train.tower_pretraining_schedule": ("constant", "cosine"),
    "data.dataset": DATASET_KINDS,
}

# The allowed range of each numeric field, as an interval: "[" / "]" include the bound,
# "(" / ")" exclude it, "inf" is unbounded.
BOUNDS = {
    "data.val_fraction": "(0, 1)",
    "data.image_size": "[1, inf)",
    "data.max_pixels": "[1, inf)",
    "data.num_train": "[1, inf)",
    "data.num_val": "[0, inf)",
    "data.num_test": "[0, inf)",
    "data.vocabulary_size": "[1, inf)",
    "data.sequence_length": "[1, inf)",
    "data.captions_per_image": "[1, inf)",
    "data.texts_per_image": "[1, inf)",
    "train.epochs": "[1, inf)",
    "train.global_batch_size": "[1, inf)",
    "train.learning_rate": "(0, inf)",
    "train.weight_decay": "[0, inf)",
    "train.warmup_fraction": "[0, 1)",
    "train.steps_per_execution": "[1, inf)",
    "train.accumulate": "[1, inf)",
    "train.checkpoint_every": "[0, inf)",
    "train.keep_checkpoints": "[1, inf)",
    "train.early_stopping_patience": "[0, inf)",
    "train.lora_rank": "[0, inf)",
    "train.tower_pretraining_steps": "[0, inf)",
    "train.tower_pretraining_batch_size": "[1, inf)",
    "eval.batch_size": "[1, inf)",
    "eval.num_beams": "[1, inf)",
    "eval.max_length": "[1, inf)",
}

# The fields a run may change when it resumes: how long it trains (`train.epochs`, to
# train longer) and how the same steps execute (where, compiled or not). Any other
# difference from the run's `config.json` is refused; `mmkeras train --overwrite` starts afresh.
RESUMABLE_FIELDS = (
    "train.epochs",
    "train.strategy",
    "train.tpu",
    "train.jit_compile",
    "train.run_eagerly",
    "train.graph_optimization",
    "train.early_stopping_patience",
)


def within(value, interval):
    """Whether the number `value` lies in `interval` (such as "[0, 1)"; "inf" is unbounded).

    Args:
        value: a number (None is in no interval).
        interval: "[low, high]" with "(" or ")" for an excluded bound.

    Example:

    >>> within(0.0, "[0, 1)"), within(1, "[0, 1)"), within(10**9, "(0, inf)"), within(None, "[1, inf)")
    (True, False, True, False)
    """
    if value is None or isinstance(value, bool):
        return False
    low, high = (float(bound) for bound in interval[1:-1].split(","))
    above = value >= low if interval[0] == "[" else value > low
    below = value <= high if interval[-1] == "]" else value < high
    return above and below


def _check_section(section, values):
    defaults = SECTION_DEFAULTS[section]
    if not isinstance(values, dict):
        raise ValueError(f"Config section `{section}` must be a dict, got {values!r}.")
    for key, value in values.items():
        field = f"{section}.{key}"
        if key not in defaults:
            raise ValueError(
                f"Unknown config field `{field}`; valid fields: {', '.join(sorted(defaults))}."
            )
        if not type_matches(value, defaults[key]):
            raise ValueError(
                f"Config field `{field}` must be of type {type(defaults[key]).__name__}, "
                f"got {value!r}."
            )
        if field in CHOICES and value not in CHOICES[field]:
            raise ValueError(f"Config field `{field}` must be one of {CHOICES[field]}, got {value!r}.")
        if field in BOUNDS and not within(value, BOUNDS[field]):
            raise ValueError(f"Config field `{field}` must be in {BOUNDS[field]}, got {value!r}.")


def validate_config(config):
    """Validates a run config; raises a ValueError naming the first bad field.

    Args:
        config: the nested config dict.

    Example:

    >>> validate_config({"task": "matching", "train": {"epochs": 2}})
    >>> validate_config({"task": "matching", "train": {"epoch": 2}})
    Traceback (most recent call last):
    ...
    ValueError: Unknown config field `train.epoch`; valid fields: ...
    """
    from mmkeras.encoders.build_encoder import validate_encoder_spec

    if config.get("task") not in TASKS:
        raise ValueError(f"Config field `task` must be one of {TASKS}, got {config.get('task')!r}.")
    known = set(SECTION_DEFAULTS) | {"task", "name", "description", "image_encoder", "text_encoder", "model", "pretrained"}
    for key in config:
        if key not in known:
            raise ValueError(f"Unknown config section `{key}`; valid sections: {', '.join(sorted(known))}.")
    for section in SECTION_DEFAULTS:
        if section in config:
            _check_section(section, config[section])
    if "pretrained" in config and not isinstance(config["pretrained"], str):
        raise ValueError(f"Config field `pretrained` must be the checkpoint it fine-tunes (a string), got "
                         f"{config['pretrained']!r}.")
    for tower in ("image_encoder", "text_encoder"):
        if config.get(tower) is not None:
            validate_encoder_spec(config[tower], tower)
    if "model" in config:
        _check_builder_arguments(config["task"], config["model"])
    _check_sizes_agree(config)
    _check_lora(config.get("train", {}))
    _check_positive_or_null(config.get("train", {}), "tower_pretraining_learning_rate", "`train.learning_rate`")


def _check_positive_or_null(train, key, null_means):
    """`train.<key>` a positive number, or null (`null_means` then)."""
    value = train.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
        raise ValueError(f"Config field `train.{key}` must be a positive number or null ({null_means}), "
                         f"got {value!r}.")


def _check_lora(train):
    """`train.lora_alpha` a positive number (or null: the rank); `train.lora_targets` a subset of the kinds."""
    _check_positive_or_null(train, "lora_alpha", "the rank")
    targets = train.get("lora_targets", ["attention", "mlp"])
    if not targets or any(t not in ("attention", "mlp") for t in targets):
        raise ValueError(
            f"Config field `train.lora_targets` must be a non-empty list of 'attention' and 'mlp', got {targets!r}.")


def _check_sizes_agree(config):
    """A size is set once: a tower spec that repeats a `data` size must give the same value."""
    from mmkeras.models.build_from_config import TOWER_SIZES_FROM_DATA

    data = config.get("data", {})
    for tower, fields in TOWER_SIZES_FROM_DATA.items():
        spec = config.get(tower) or {}
        for field in fields:
            if field in spec and field in data and spec[field] is not None and spec[field] != data[field]:
                raise ValueError(
                    f"Config fields `data.{field}` ({data[field]!r}) and `{tower}.{field}` ({spec[field]!r}) "
                    f"disagree: set `data.{field}` alone (the tower takes it from there)."
                )


def _check_builder_arguments(task, model_args):
    import inspect

    from mmkeras.models import builder_for_task

    builder = builder_for_task(task)
    params = inspect.signature(builder).parameters
    valid = sorted(p for p in params if p not in ("image_encoder", "text_encoder", "encoders", "kwargs"))
    if not isinstance(model_args, dict):
        raise ValueError(f"Config section `model` must be a dict, got {model_args!r}.")
    for key in model_args:
        if key not in valid:
            raise ValueError(
                f"Unknown config field `model.{key}` for the {task} builder; valid fields: "
                f"{', '.join(valid)}."
            )
    check_argument_types(builder, model_args, "model")


def merge(base, overrides, *, none_removes=False):
    """Deep-merges `overrides` into a copy of `base` (dicts merge, other values replace).

    With `none_removes=True` it is a JSON merge patch (RFC 7396): a `None`
    in `overrides` removes the key, as the zoo's preset bases use it.

    Example:

    >>> merge({"a": {"x": 1, "y": 2}, "b": 3}, {"a": {"y": None}, "b": 4})
    {'a': {'x': 1, 'y': None}, 'b': 4}
    >>> merge({"a": {"x": 1, "y": 2}, "b": 3}, {"a": {"y": None}, "b": 4}, none_removes=True)
    {'a': {'x': 1}, 'b': 4}
    """
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        if value is None and none_removes:
            out.pop(key, None)
        elif isinstance(value, dict) and (isinstance(out.get(key), dict) or none_removes):
            target = out[key] if isinstance(out.get(key), dict) else {}
            out[key] = merge(target, value, none_removes=none_removes)
        else:
            out[key] = copy.deepcopy(value)
    return out


def resolve_config(preset_config, overrides=None, *, validate=True):
    """Fills the section defaults under a preset's config, applies overrides, validates.

    Args:
        preset_config: a preset's config dict.
        overrides: optional dict of overrides; keys may be dotted paths
            (`{"train.epochs": 2}`) or nested dicts.
        validate: check the towers and the model arguments against their
            classes (which imports Keras); `False` only fills and merges, for
            showing a config (`mmkeras info`, whose presets are checked by the tests).

    Returns:
        The full, validated config.

    Example:

    >>> cfg = resolve_config({"task": "matching"}, {"train.epochs": 2})
    >>> cfg["train"]["epochs"], cfg["train"]["precision"]
    (2, 'auto')
    >>> resolve_config({"task": "captioning"}, {"eval.length_penalty": 0})["eval"]["length_penalty"]
    0.0
    >>> heads = {"answer": {"type": "multiclass", "num_classes": 3}, "cells": {"type": "multilabel"}}
    >>> list(resolve_config({"task": "fusion", "model": {"heads": heads}}, {"model.heads.cells": None},
    ...                     validate=False)["model"]["heads"])
    ['answer']
    """
    config = merge({k: v for k, v in SECTION_DEFAULTS.items()}, preset_config)
    for key, value in (overrides or {}).items():
        config = merge(config, _nest(key, value))
    heads = config.get("model", {}).get("heads")
    if isinstance(heads, dict):  # `--set model.heads.NAME=null` leaves out a head the preset has
        config["model"]["heads"] = {name: spec for name, spec in heads.items() if spec is not None}
    if validate:
        validate_config(config)
    # An int given for a float field (`--set eval.length_penalty=0`) becomes a float, so one
    # setting has one spelling wherever the config is written or named.
    for section, defaults in SECTION_DEFAULTS.items():
        values = config[section]
        for key, default in defaults.items():
            if isinstance(default, float) and isinstance(values.get(key), int):
                values[key] = float(values[key])
    return config


def config_differences(stored, config):
    """The fields where two configs differ, as sorted dotted paths (beyond `RESUMABLE_FIELDS`).

    Configs are compared as JSON holds them (tuples are lists).

    Args:
        stored: a run's config, as read back from its `config.json`.
        config: the config a run is asked to continue with.

    Example:

    >>> stored = {"task": "matching", "train": {"epochs": 2, "learning_rate": 0.001}}
    >>> config_differences(stored, {"task": "matching", "train": {"epochs": 5, "learning_rate": 0.01}})
    ['train.learning_rate']
    >>> config_differences({"model": {"dims": [1, 2]}}, {"model": {"dims": (1, 2), "width": 3}})
    ['model.width']
    """

    def walk(a, b, prefix):
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b), key=str):
                yield from walk(a.get(key), b.get(key), f"{prefix}{key}.")
        elif a != b and prefix[:-1] not in RESUMABLE_FIELDS:
            yield prefix[:-1]

    return list(walk(json.loads(json.dumps(stored)), json.loads(json.dumps(config)), ""))


def _nest(dotted, value):
    if not isinstance(dotted, str) or not dotted:
        raise ValueError(f"Override keys must be non-empty strings, got {dotted!r}.")
    parts = dotted.split(".")
    nested = value
    for part in reversed(parts):
        nested = {part: nested}
    return nested


def parse_override(text):
    """Parses a command-line override `section.field=value` (value as JSON, else string).

    Example:

    >>> parse_override("train.epochs=3")
    ('train.epochs', 3)
    >>> parse_override("data.path=/data/coco.json")
    ('data.path', '/data/coco.json')
    """
    if "=" not in text:
        raise ValueError(f"An override must look like `section.field=value`, got {text!r}.")
    key, raw = text.split("=", 1)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.strip(), value
