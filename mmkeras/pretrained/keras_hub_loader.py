"""keras-hub's Hugging Face weight converters on a `SafetensorsCheckpoint`, with mmkeras' errors."""

import os

import numpy as np

from mmkeras.pretrained.safetensors_checkpoint import SafetensorsCheckpoint
from mmkeras.pretrained.checkpoint_files import checkpoint_directory, read_json


class KerasHubLoader:
    """The weight loader keras-hub's `convert_weights(backbone, loader, config)` functions call.

    keras-hub converts Hugging Face checkpoints with one function per
    architecture (`keras_hub.src.utils.transformers.convert_bert`, ...) that
    calls `loader.port_weight(variable, name, hook_fn)` for every weight. This
    loader reads the tensors from a `SafetensorsCheckpoint` (safetensors only,
    pickles refused with how to convert them) and finds a tensor whether or
    not the checkpoint names it with the model's `prefix` (`bert.` in a
    `BertForMaskedLM` file, absent in a `BertModel` one). A missing tensor or
    one whose shape does not fit its variable is one `ValueError` naming the
    file, the tensor and both shapes.

    Args:
        checkpoint: a `SafetensorsCheckpoint`, or a path it opens.
        prefix: the model's name prefix, e.g. "bert." or "vit.".

    Example:

    ```python
    from keras_hub.src.utils.transformers import convert_bert

    backbone = keras_hub.models.BertBackbone(**convert_bert.convert_backbone_config(config))
    convert_bert.convert_weights(backbone, KerasHubLoader("checkpoints/bert", "bert."), config)
    ```
    """

    def __init__(self, checkpoint, prefix=""):
        if not isinstance(checkpoint, SafetensorsCheckpoint):
            checkpoint = SafetensorsCheckpoint(checkpoint)
        self.checkpoint = checkpoint
        self.prefix = prefix
        self._prefixed = None

    def name_of(self, key):
        """The checkpoint's name for tensor `key`, with or without the prefix as the checkpoint names its tensors."""
        if key in self.checkpoint or not self.prefix:
            return key
        bare = key[len(self.prefix):] if key.startswith(self.prefix) else key
        if self._prefixed is None:
            self._prefixed = any(name.startswith(self.prefix) for name in self.checkpoint.names)
        return self.prefix + bare if self._prefixed else bare

    def get_tensor(self, key):
        """Tensor `key` as a float32 NumPy array; a `ValueError` naming the file when it is missing."""
        return self.checkpoint.get(self.name_of(key))

    def port_weight(self, keras_variable, hf_weight_key, hook_fn=None):
        """Assigns tensor `hf_weight_key` (through `hook_fn(tensor, shape)`) to `keras_variable`."""
        name = self.name_of(hf_weight_key)
        tensor = self.checkpoint.get(name)
        shape = tuple(keras_variable.shape)
        try:
            value = np.asarray(tensor if hook_fn is None else hook_fn(tensor, list(shape)))
        except ValueError:  # a reshape that cannot fit
            value = None
        if value is None or tuple(value.shape) != shape:
            raise ValueError(
                f"{self.checkpoint.file_of(name)}: tensor {name!r} has shape {tuple(tensor.shape)}, which does not "
                f"fit the model's {keras_variable.path} of shape {shape} (the sizes in config.json)."
            )
        keras_variable.assign(value.astype(keras_variable.dtype))


def read_hf_config(directory, model_type, loader):
    """`(config, config_path)` of a Hugging Face model directory whose `model_type` must be `model_type`.

    Args:
        directory: the checkpoint directory.
        model_type: the `model_type` the caller reads, e.g. "bert".
        loader: the caller's name, for the error messages.

    Returns:
        The parsed `config.json` and its path.
    """
    directory = checkpoint_directory(directory)
    path = os.path.join(directory, "config.json")
    config = read_json(path, required=True)
    architectures = config.get("architectures") or []
    if config.get("model_type") != model_type:
        raise ValueError(
            f"{path}: architectures={architectures} model_type={config.get('model_type')!r} is not a "
            f"{model_type!r} checkpoint ({loader} reads model_type {model_type!r})."
        )
    return config, path
