"""Restoring the Keras objects a model family holds (towers, preprocessor) from its config."""

import keras

PARTS = ("image_encoder", "text_encoder", "preprocessor")


def from_config_with_parts(model_class, config):
    """`model_class(**config)`, with the towers and the preprocessor in `config` deserialized first.

    Args:
        model_class: the model class (`DualEncoder`, `Captioner`, `FusionClassifier`).
        config: its `get_config()`, whose `PARTS` entries hold serialized Keras objects (or None).

    Returns:
        The model.

    Example:

    >>> class Holder:
    ...     def __init__(self, image_encoder=None, name=None):
    ...         self.image_encoder = image_encoder
    >>> tower = keras.layers.Dense(2, name="tower")
    >>> config = {"image_encoder": keras.saving.serialize_keras_object(tower), "name": "holder"}
    >>> from_config_with_parts(Holder, config).image_encoder.name
    'tower'
    """
    config = dict(config)
    for part in PARTS:
        if part in config:
            config[part] = keras.saving.deserialize_keras_object(config[part])
    return model_class(**config)
