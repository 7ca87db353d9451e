"""`get_config` entries read from an object's attributes, named once."""


def config_fields(obj, names, **renamed):
    """The config entries `{name: obj.name}` of a layer or loss, for its `get_config`.

    Args:
        obj: the object whose attributes hold its constructor arguments.
        names: the argument names, separated by spaces; each is read from the
            attribute of the same name.
        **renamed: `argument=attribute` for an argument kept under another
            attribute name.

    Returns:
        A dict, in the order given.

    Example:

    >>> class Pooling:
    ...     num_heads, num_queries, _dim = 4, 1, None
    >>> config_fields(Pooling(), "num_heads num_queries", output_dim="_dim")
    {'num_heads': 4, 'num_queries': 1, 'output_dim': None}
    """
    fields = {name: getattr(obj, name) for name in names.split()}
    fields.update({key: getattr(obj, attribute) for key, attribute in renamed.items()})
    return fields
