"""The model zoo: named presets kept in the top-level `zoo/` folder.

Each preset is `zoo/<name>.json` (`{"name", "task", "description", "card", ...config}`)
with a model card `zoo/<name>.md`. A preset that only changes another names it
as `"base"` and holds just what differs, applied to the base as a JSON merge
patch (RFC 7396: objects merge, other values replace, `null` removes the key).
They are installed as the package data
`mmkeras.presets`, so they work after a non-editable install.
"""

import builtins
import importlib.resources
import json

from mmkeras.config import merge, resolve_config


def _preset_files():
    return importlib.resources.files("mmkeras.presets")


def list():  # noqa: A001 - the registry's public verb
    """Names of all presets, sorted.

    Example:

    >>> "shapes-clip-tiny" in list()
    True
    """
    return sorted(
        entry.name[: -len(".json")] for entry in _preset_files().iterdir() if entry.name.endswith(".json")
    )


def get(name):
    """The preset's raw config dict (as stored in `zoo/<name>.json`).

    Args:
        name: preset name, see `list()`.

    Example:

    >>> get("shapes-clip-tiny")["task"]
    'matching'
    >>> get("shapes-captioner-small")["model"] == get("shapes-captioner-tiny")["model"]  # its base
    True
    >>> get("shapes-fusion-late-tiny")["model"]["fusion_kwargs"]  # base's keys removed with null
    {'hidden_dim': 64, 'combine': 'mean'}
    """
    names = list()
    if name not in names:
        raise ValueError(f"Unknown preset {name!r}; valid presets: {', '.join(names)}.")
    preset = json.loads(_preset_files().joinpath(f"{name}.json").read_text())
    base = preset.pop("base", None)
    if base is None:
        return preset
    if base not in names or base == name:
        raise ValueError(f"Preset {name!r} has `base` {base!r}, which is not another preset.")
    return merge(get(base), preset, none_removes=True)


def card(name):
    """The preset's model card (markdown).

    Example:

    >>> card("shapes-clip-tiny").startswith("# shapes-clip-tiny")
    True
    """
    get(name)
    return _preset_files().joinpath(f"{name}.md").read_text()


def config(name, **overrides):
    """The preset's full validated config, with overrides applied.

    Args:
        name: preset name.
        **overrides: dotted-path overrides passed as a dict, e.g.
            `config(name, **{"train.epochs": 1})`, or whole sections
            (`train={"epochs": 1}`).

    Example:

    >>> config("shapes-clip-tiny", **{"train.epochs": 1})["train"]["epochs"]
    1
    """
    return resolve_config(get(name), overrides)


def build(name, **overrides):
    """Builds the preset's Keras model (untrained).

    Args:
        name: preset name.
        **overrides: config overrides, as for `config`.

    Example:

    >>> model = build("shapes-clip-tiny")
    >>> sorted(model.output)
    ['image_embeddings', 'text_embeddings']
    """
    from mmkeras.models import build_from_config

    return build_from_config(config(name, **overrides))


__all__ = builtins.list(["list", "get", "card", "config", "build"])
