"""Calling a tower that may be locked (trained before, not trained here), one way for every family."""


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
