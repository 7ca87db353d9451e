"""Restores a family model's compiled state from a `.keras` file."""

import keras


def restore_compiled_state(model, config):
    """Compiles `model` from the compile config stored in its `.keras` file, building its optimizer.

    Keras restores the compiled state (optimizer, losses, metrics) only for
    models that do not override `compile`; the family models do (their losses
    are built in), so their `compile_from_config` calls this.

    Args:
        model: the model being loaded.
        config: the serialised compile config (`model.get_compile_config()`).

    Example:

    ```python
    class MyModel(keras.Model):
        def compile(self, optimizer="adamw", **kwargs): ...
        def compile_from_config(self, config):
            restore_compiled_state(self, config)
    ```
    """
    model.compile(**keras.saving.deserialize_keras_object(config))
    if model.built:
        model.optimizer.build(model.trainable_variables)
