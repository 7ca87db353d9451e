"""Argument checks shared by configs, builders and data: one place, errors that name the field.

A leaf module: it imports nothing from mmkeras, so anything may use it.
"""

import inspect
import numbers


def check_int(name, value, minimum=None, maximum=None, *, allow_none=False):
    """Returns `value` as an int, or raises a `ValueError` naming `name` and the allowed range.

    Whole numbers only: ints (NumPy ints too) and floats such as `4.0`; bools and strings are refused.

    Args:
        name: the argument or config field, as the error should name it.
        value: the value to check.
        minimum: optional smallest allowed value.
        maximum: optional largest allowed value.
        allow_none: bool, also accept None (returned as it is).

    Returns:
        `int(value)` (or None).

    Example:

    >>> check_int("num_layers", 4.0, minimum=1)
    4
    >>> check_int("num_layers", 0, minimum=1)
    Traceback (most recent call last):
    ...
    ValueError: `num_layers` must be an int >= 1, got 0.
    >>> check_int("hidden_dim", "64", minimum=1, allow_none=True)
    Traceback (most recent call last):
    ...
    ValueError: `hidden_dim` must be None or an int >= 1, got '64'.
    """
    if value is None and allow_none:
        return None
    if minimum is not None and maximum is not None:
        allowed = f"an int in [{minimum}, {maximum}]"
    elif minimum is not None:
        allowed = f"an int >= {minimum}"
    elif maximum is not None:
        allowed = f"an int <= {maximum}"
    else:
        allowed = "an int"
    if allow_none:
        allowed = f"None or {allowed}"
    whole = isinstance(value, numbers.Real) and not isinstance(value, bool) and float(value).is_integer()
    if not whole or (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(f"`{name}` must be {allowed}, got {value!r}.")
    return int(value)


def check_ints(name, values, minimum=None, maximum=None):
    """`check_int` on every entry of a list or tuple (a single number counts as one entry).

    Args:
        name: the argument, as the error should name it (entry `i` is `name[i]`).
        values: a list or tuple of numbers, or one number.
        minimum: optional smallest allowed value.
        maximum: optional largest allowed value.

    Returns:
        A tuple of ints.

    Example:

    >>> check_ints("ks", [1, 5.0, 10], minimum=1)
    (1, 5, 10)
    >>> check_ints("ks", (1, 0), minimum=1)
    Traceback (most recent call last):
    ...
    ValueError: `ks[1]` must be an int >= 1, got 0.
    """
    if not isinstance(values, (list, tuple)):
        return (check_int(name, values, minimum, maximum),)
    return tuple(check_int(f"{name}[{i}]", value, minimum, maximum) for i, value in enumerate(values))


def check_rate(name, value):
    """Returns `value` as a float in `[0, 1)` (a dropout rate), or raises a `ValueError` naming `name`.

    Args:
        name: the argument, as the error should name it.
        value: the value to check: a number (not a bool or a string).

    Returns:
        `float(value)`.

    Example:

    >>> check_rate("dropout", 0)
    0.0
    >>> check_rate("dropout", 1.5)
    Traceback (most recent call last):
    ...
    ValueError: `dropout` must be a float in [0, 1), got 1.5.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value < 1.0:
        raise ValueError(f"`{name}` must be a float in [0, 1), got {value!r}.")
    return float(value)


def type_matches(value, default):
    """Whether a config `value` has the type of its `default` (None matches anything; bools are not ints).

    Example:

    >>> type_matches(3, 1), type_matches(True, 1), type_matches(3, 0.5), type_matches("a", None)
    (True, False, True, True)
    """
    if default is None or value is None:
        return True
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, type(default))


def check_argument_types(function, arguments, field):
    """Checks config `arguments` for `function` against the types of its defaults.

    An argument whose default is a bool must be a bool, one whose default is
    an int must be an int, and one whose default is a float must be a number
    or a structure (such as per-modality rates), never a string. `None`, and
    arguments without a default or with a `None` default, are left to
    `function` itself.

    Args:
        function: the builder or constructor the arguments go to.
        arguments: dict of argument name -> value, as the config holds them.
        field: the config path of `arguments`, used in error messages.

    Raises:
        ValueError: naming `field.name`, the expected type and the value.

    Example:

    >>> def tower(num_layers=12, dropout=0.0, pooled_only=False, hidden_dim=None):
    ...     pass
    >>> check_argument_types(tower, {"num_layers": 2, "dropout": 0, "hidden_dim": 64}, "image_encoder")
    >>> check_argument_types(tower, {"num_layers": "two"}, "image_encoder")
    Traceback (most recent call last):
    ...
    ValueError: Config field `image_encoder.num_layers` must be of type int, got 'two'.
    """
    parameters = inspect.signature(function).parameters
    for key, value in arguments.items():
        default = parameters[key].default if key in parameters else None
        if value is None or default is None or default is inspect.Parameter.empty:
            continue
        if isinstance(default, float):
            ok = not isinstance(value, (str, bool))
        elif isinstance(default, int):  # bool included: `type_matches` tells them apart
            ok = type_matches(value, default)
        else:
            continue
        if not ok:
            raise ValueError(
                f"Config field `{field}.{key}` must be of type {type(default).__name__}, got {value!r}."
            )
