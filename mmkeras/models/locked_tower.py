"""Locking a tower (trained before, not trained here), one way for every family: when building a model, or on a built one."""


def call_tower(tower, inputs, locked=False):
    """The tower's outputs on `inputs`; a `locked` tower gets `trainable = False` and runs in inference mode.

    A locked tower (as in LiT) keeps its weights through the model's training, and its dropout and
    normalisation statistics behave as at inference, so the model learns to read exactly what it will
    be given at serving time.

    Args:
        tower: a Keras layer or model (an image or text tower).
        inputs: the tower's inputs (a symbolic `keras.Input` when building a functional model).
        locked: bool, lock the tower.

    Returns:
        What the tower returns.

    Example:

    >>> import keras
    >>> tower = keras.Sequential([keras.Input((3,)), keras.layers.Dropout(0.5), keras.layers.Dense(2)])
    >>> outputs = call_tower(tower, keras.Input((3,)), locked=True)
    >>> tower.trainable, len(tower.trainable_weights), outputs.shape
    (False, 0, (None, 2))
    """
    if not locked:
        return tower(inputs)
    tower.trainable = False
    # A functional model passes its own `training` to every layer it calls, over the `training=False` given
    # here; a layer that does not take `training` from its caller keeps it (tested in tests/models).
    tower._call_context_args = tower._call_context_args - {"training"}
    return tower(inputs, training=False)


def locked_copy(model):
    """`model` rebuilt with its image tower locked (`freeze_image_encoder=True`), with the same weights.

    Setting the flag on a built model would not do: its graph already calls the tower in training mode.
    Works for any model whose config has `freeze_image_encoder` (the dual encoder, the fusion classifier).

    Args:
        model: a built model whose config takes `freeze_image_encoder`.

    Returns:
        A new model of the same class; `model` is left as it was.

    Raises:
        ValueError: when the rebuilt model's weights do not line up with `model`'s.

    Example:

    >>> from mmkeras import zoo
    >>> model = zoo.build("shapes-clip-tiny", **{"data.image_size": 32})
    >>> locked = locked_copy(model)
    >>> locked.image_encoder.trainable, model.image_encoder.trainable
    (False, True)
    """
    locked = type(model).from_config({**model.get_config(), "freeze_image_encoder": True})
    for target, source in zip(locked.weights, model.weights, strict=True):
        if target.path != source.path or target.shape != source.shape:
            raise ValueError(f"Cannot lock {model.name}'s image tower: its rebuilt copy has weight {target.path} "
                             f"{target.shape} where it has {source.path} {source.shape}.")
        target.assign(source)
    return locked
