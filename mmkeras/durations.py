"""`format_duration`: a wall time as people read it ("45.2 s", "1 min 10 s", "1 h 2 min")."""

import numbers


def format_duration(seconds):
    """A duration in the largest fitting units: tenths of a second under a minute, then
    minutes and whole seconds, then hours and whole minutes.

    Args:
        seconds: the duration in seconds, a number >= 0.

    Returns:
        The text, e.g. "1 min 10 s".

    Raises:
        ValueError: naming `seconds` when it is not a number >= 0.

    Example:

    >>> format_duration(45.23), format_duration(70.3), format_duration(3725)
    ('45.2 s', '1 min 10 s', '1 h 2 min')
    >>> format_duration(59.97)  # rounds up to the next unit
    '1 min 0 s'
    """
    if isinstance(seconds, bool) or not isinstance(seconds, numbers.Real) or not seconds >= 0:
        raise ValueError(f"`seconds` must be a number >= 0, got {seconds!r}.")
    if round(seconds, 1) < 60:
        return f"{seconds:.1f} s"
    if round(seconds) < 3600:
        minutes, rest = divmod(round(seconds), 60)
        return f"{minutes} min {rest} s"
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"{hours} h {minutes} min"
