"""Hugging Face `ViTModel` checkpoints as mmkeras image towers, with their image preprocessing."""

import os

import keras

from mmkeras.pretrained.keras_hub_loader import KerasHubLoader
from mmkeras.pretrained.keras_hub_loader import read_hf_config
from mmkeras.pretrained.checkpoint_files import hf_image_converter, read_json

POOLINGS = ("cls", "pooler")
# transformers' ViTImageProcessor normalises with ImageNet's "standard" mean and std by default.
VIT_MEAN = VIT_STD = (0.5, 0.5, 0.5)


def load_hf_vit(directory, *, pooling="cls", dtype=None, name="image_encoder"):
    """Imports a Hugging Face `ViTModel` checkpoint from a local directory as an image tower.

    Reads `config.json`, `model.safetensors` (or a sharded
    `model.safetensors.index.json`) and `preprocessor_config.json`
    (optional; mean and std 0.5 otherwise). Nothing is downloaded and torch
    is not needed. The tower is keras-hub's `ViTBackbone` (sized by
    keras-hub's converter, with the checkpoint's layer-norm epsilon) in a
    `KerasHubEncoder`, its weights ported by keras-hub's ViT converter from
    the checkpoint (`vit.`-prefixed names, as in a
    `ViTForImageClassification` file, are read too).

    Outputs (`{"sequence", "pooled"}`, the mmkeras tower contract):
    `sequence` is the reference's `last_hidden_state` (class token first,
    after the final layer norm); `pooled` is

    - "cls": the class token of `sequence` (what image classifiers built on
      ViT read; every ViT checkpoint has trained it), or
    - "pooler": the reference's `pooler_output`, a dense layer and tanh on
      that class token (needs the checkpoint's `pooler.dense` weights; many
      fine-tuned ViT checkpoints have none). The class token itself stays
      available as `sequence[:, 0]`.

    The tower takes `images` `[B, H, W, 3]` already normalised as the
    reference's `pixel_values` (NHWC); the returned image converter, an
    `ImagePreprocessor`, produces them from image bytes or pixels as
    transformers' `ViTImageProcessor` does: transparent images composited on
    white, both sides resized to `image_size` (no crop), the checkpoint's
    mean and std.

    Args:
        directory: the checkpoint directory (a Hugging Face model folder).
        pooling: "cls" or "pooler", see above.
        dtype: optional dtype policy of the tower, e.g. "mixed_bfloat16".
        name: the tower's name.

    Returns:
        `(tower, image_converter)`: a `KerasHubEncoder` (`modality="image"`,
        `output_dim` the hidden size) and an `ImagePreprocessor`. A
        `DualEncoder` takes them as `image_encoder` and as the image converter
        of its `MultimodalPreprocessor`.

    Raises:
        ValueError: naming the file and the field, tensor or shapes: a missing
            file, a pickle checkpoint (`.bin`, `.pt`; with how to convert it),
            a `model_type` other than "vit", a `hidden_act` other than "gelu",
            image preprocessing other than ViT's (a centre crop, a size other
            than `image_size`), a missing tensor or a tensor whose shape does
            not fit the config.

    Example:

    ```python
    vit, image_converter = load_hf_vit("checkpoints/vit-base-patch16-224-in21k")
    features = vit(image_converter(tf.constant([jpeg_bytes])))["pooled"]
    ```
    """
    import keras_hub
    from keras_hub.src.utils.transformers import convert_vit

    from mmkeras.encoders.keras_hub_encoder import KerasHubEncoder

    if pooling not in POOLINGS:
        raise ValueError(f"`pooling` must be one of {POOLINGS}, got {pooling!r}.")
    config, config_path = read_hf_config(directory, "vit", "load_hf_vit")
    for field, supported in (("hidden_act", "gelu"), ("num_channels", 3)):
        if config.get(field, supported) != supported:
            raise ValueError(f"{config_path}: {field} is {config[field]!r}; load_hf_vit supports {supported!r}.")
    for field in ("image_size", "patch_size", "num_hidden_layers", "num_attention_heads", "hidden_size",
                  "intermediate_size"):
        if not isinstance(config.get(field), int):
            raise ValueError(f"{config_path}: {field} must be an int, got {config.get(field)!r}.")
    settings = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0, "qkv_bias": True, **config}
    loader = KerasHubLoader(os.fspath(directory), prefix="vit.")
    backbone = keras_hub.models.ViTBackbone(
        **convert_vit.convert_backbone_config(settings),
        layer_norm_epsilon=float(config.get("layer_norm_eps", 1e-12)),
        dtype=dtype,
        name="vit_backbone",
    )
    convert_vit.convert_weights(backbone, loader, settings)
    tower = backbone
    if pooling == "pooler":
        width = int(config["hidden_size"])
        images = keras.Input(backbone.image_shape, name="images")
        sequence = backbone(images)
        pooler = keras.layers.Dense(width, activation="tanh", dtype=dtype, name="pooler")
        tower = keras.Model(
            images, {"sequence_output": sequence, "pooled_output": pooler(sequence[:, 0, :])}, name="vit_with_pooler"
        )
        loader.port_weight(pooler.kernel, "pooler.dense.weight", hook_fn=lambda tensor, _: tensor.T)
        loader.port_weight(pooler.bias, "pooler.dense.bias")
    encoder = KerasHubEncoder(
        tower=tower, modality="image", pooling="first" if pooling == "cls" else "auto", dtype=dtype, name=name
    )
    return encoder, _image_converter(os.fspath(directory), config)


def _image_converter(directory, config):
    """The `ImagePreprocessor` of transformers' `ViTImageProcessor` settings: both sides resized, mean and std."""
    image_size = int(config["image_size"])
    path = os.path.join(directory, "preprocessor_config.json")
    settings = read_json(path, required=False) or {}
    if settings.get("do_center_crop"):
        raise ValueError(f"{path}: do_center_crop is true; load_hf_vit reads ViTImageProcessor settings (no crop).")
    size = settings.get("size", image_size) if settings.get("do_resize", True) else image_size
    sides = {size[k] for k in ("height", "width", "shortest_edge") if k in size} if isinstance(size, dict) else {size}
    if sides != {image_size}:
        raise ValueError(f"{path}: size {size} must be the image tower's image_size {image_size} on both sides.")
    # Like the reference processor: transparent images on white, both sides resized to the square.
    return hf_image_converter(path, settings, image_size, "stretch", VIT_MEAN, VIT_STD)
