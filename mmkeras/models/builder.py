"""Builder functions whose parameters are their model class's, so the two cannot drift apart."""

import functools
import inspect


def builder_of(model_class):
    """Decorator: makes a function the builder of `model_class`, taking the class's arguments.

    The builder's signature is that of `model_class.__init__` without `self`
    and `**kwargs`, followed by the decorated function's own keyword-only
    parameters (such as `name`). A call binds its arguments to that signature
    (a wrong argument is a `TypeError` naming the builder), fills in the
    defaults, and passes every argument by keyword to the function, which
    builds the model. `inspect.signature(builder)` returns that signature, so
    callers that inspect the builder (config checks) see the class's
    arguments and defaults.

    Args:
        model_class: the class the builder builds.

    Returns:
        The decorator.

    Example:

    >>> class Tower:
    ...     def __init__(self, width, depth=2, **kwargs):
    ...         self.width, self.depth, self.name = width, depth, kwargs.get("name")
    >>> @builder_of(Tower)
    ... def tower(*, name="tower", **arguments):
    ...     return Tower(name=name, **arguments)
    >>> str(inspect.signature(tower))
    "(width, depth=2, *, name='tower')"
    >>> vars(tower(8))
    {'width': 8, 'depth': 2, 'name': 'tower'}
    >>> tower(8, height=3)
    Traceback (most recent call last):
    ...
    TypeError: tower() got an unexpected keyword argument 'height'
    """
    class_parameters = [
        parameter
        for parameter in list(inspect.signature(model_class.__init__).parameters.values())[1:]
        if parameter.kind is not inspect.Parameter.VAR_KEYWORD
    ]

    def decorate(function):
        own = [
            parameter
            for parameter in inspect.signature(function).parameters.values()
            if parameter.kind is inspect.Parameter.KEYWORD_ONLY
        ]
        signature = inspect.Signature(class_parameters + own)

        @functools.wraps(function)
        def builder(*args, **kwargs):
            try:
                bound = signature.bind(*args, **kwargs)
            except TypeError as error:
                raise TypeError(f"{function.__name__}() {error}") from None
            bound.apply_defaults()
            return function(**bound.arguments)

        builder.__signature__ = signature
        return builder

    return decorate
