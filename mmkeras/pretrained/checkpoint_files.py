"""The checks and readers the checkpoint importers share: the checkpoint folder, its JSON files, image settings."""

import json
import math
import os

from mmkeras.pretrained.safetensors_checkpoint import SafetensorsCheckpoint


def checkpoint_directory(directory, config_file="config.json", folder="checkpoint directory"):
    """The checkpoint folder as a path string, refused with a message where it is a file or missing.

    A pickle checkpoint file (`.bin`, `.pt`) is refused with how to convert it.

    Args:
        directory: the path (str or path-like) the caller was given.
        config_file: the config file such a folder holds, for the message.
        folder: what the caller calls the folder, for the message.

    Returns:
        The directory as a str.

    Example:

    >>> checkpoint_directory("no/such/folder")
    Traceback (most recent call last):
    ...
    ValueError: Checkpoint directory not found: no/such/folder.
    """
    directory = os.fspath(directory)
    if os.path.isfile(directory):
        SafetensorsCheckpoint(directory)  # a pickle file is refused with how to convert it
        raise ValueError(f"{directory} is a file; pass the {folder} that holds it and {config_file}.")
    if not os.path.isdir(directory):
        raise ValueError(f"Checkpoint directory not found: {directory}.")
    return directory


def read_json(path, required, missing="a Hugging Face checkpoint directory has a config.json"):
    """The parsed JSON file, or None where it is missing and not required.

    Args:
        path: the file.
        required: bool, whether a missing file is an error.
        missing: what the message of a missing required file says in brackets.

    Returns:
        The parsed JSON value, or None.

    Raises:
        ValueError: a required file is missing, or the file is not valid JSON.

    Example:

    >>> read_json("no/such/config.json", required=False) is None
    True
    """
    if not os.path.isfile(path):
        if required:
            raise ValueError(f"{path} is missing ({missing}).")
        return None
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except ValueError as error:
        raise ValueError(f"{path} is not valid JSON ({error}).") from None


def hf_image_converter(path, settings, image_size, resize, mean, std):
    """The `ImagePreprocessor` of a Hugging Face image processor's rescaling and normalisation settings.

    Like the Hugging Face processors, it composites transparent images on white before resizing.

    Args:
        path: the preprocessor_config.json the settings come from, for the messages.
        settings: its parsed settings (an empty dict where there is none).
        image_size: the image tower's image size.
        resize: the `ImagePreprocessor` resize mode ("crop" or "stretch").
        mean: the processor's default image_mean.
        std: the processor's default image_std.

    Returns:
        An `ImagePreprocessor` named "image_converter".

    Raises:
        ValueError: a rescale factor other than 1/255.

    Example:

    >>> hf_image_converter("preprocessor_config.json", {}, 32, "stretch", [0.5] * 3, [0.5] * 3).std
    [0.5, 0.5, 0.5]
    """
    from mmkeras.preprocessing.image_preprocessor import ImagePreprocessor

    if settings.get("do_rescale", True) and not math.isclose(settings.get("rescale_factor", 1 / 255), 1 / 255):
        raise ValueError(f"{path}: rescale_factor {settings['rescale_factor']} is not 1/255.")
    normalize = settings.get("do_normalize", True)
    mean = settings.get("image_mean", mean) if normalize else (0.0, 0.0, 0.0)
    std = settings.get("image_std", std) if normalize else (1.0, 1.0, 1.0)
    return ImagePreprocessor(image_size=image_size, resize=resize, mean=list(mean), std=list(std),
                             transparency="white", name="image_converter")
