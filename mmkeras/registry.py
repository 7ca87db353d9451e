"""Lazy registries: a name in a config to the class or function it means, imported on first use.

A leaf module: optional parts (TF-Hub towers, keras-hub presets) cost nothing until a config names them.
"""

import importlib


def lookup(table, key, what):
    """Imports and returns the object `table[key]` names as `"module:attribute"`.

    Args:
        table: dict of name -> `"module:attribute"`.
        key: the name a config gives.
        what: how the error names the field, e.g. "encoder `type`".

    Returns:
        The imported attribute.

    Raises:
        ValueError: naming `what`, the bad key and the valid ones.

    Example:

    >>> lookup({"json": "json:dumps"}, "json", "format")([1])
    '[1]'
    >>> lookup({"json": "json:dumps"}, "yaml", "format")
    Traceback (most recent call last):
    ...
    ValueError: Unknown format 'yaml'; valid: ['json'].
    """
    if key not in table:
        raise ValueError(f"Unknown {what} {key!r}; valid: {sorted(table)}.")
    module, name = table[key].split(":")
    return getattr(importlib.import_module(module), name)
