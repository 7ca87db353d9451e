import contextlib

import keras
import tensorflow as tf
from keras import ops

from mmkeras.encoders.encoder import Encoder

# name -> (constructor, input convention). The inputs of every mmkeras image
# tower are in [-1, 1]; each application expects its own range.
CNN_ARCHITECTURES = {
    "resnet50": (keras.applications.ResNet50, "caffe"),
    "efficientnetb0": (keras.applications.EfficientNetB0, "0_255"),
    "mobilenetv3small": (keras.applications.MobileNetV3Small, "0_255"),
    "mobilenetv3large": (keras.applications.MobileNetV3Large, "0_255"),
}
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


@keras.saving.register_keras_serializable(package="mmkeras")
class CNNEncoder(Encoder):
    """A `keras.applications` CNN as an image tower.

    The feature map `[B, h, w, C]` becomes the token sequence `[B, h*w, C]` and its
    global average the pooled vector. Inputs in `[-1, 1]` are mapped to the range
    each architecture was trained with. Weights come from nowhere (`None`, random
    init) or a local weights file (`.weights.h5` / `.h5` saved from the same
    architecture without its top); nothing is downloaded.

    Args:
        architecture: one of "resnet50", "efficientnetb0", "mobilenetv3small",
            "mobilenetv3large".
        image_size: int, side of the (square) input image (>= 32).
        weights: None, or the path to a local weights file.
        dtype: optional dtype policy, e.g. "mixed_bfloat16".
        **kwargs: `keras.Model` arguments such as `name`.

    Example:

    >>> import numpy as np
    >>> cnn = CNNEncoder("mobilenetv3small", image_size=64)
    >>> out = cnn(np.zeros((1, 64, 64, 3), "float32"))
    >>> out["sequence"].shape, out["pooled"].shape
    (TensorShape([1, 4, 576]), TensorShape([1, 576]))
    """

    def __init__(self, architecture="resnet50", image_size=224, weights=None, dtype=None, **kwargs):
        if architecture not in CNN_ARCHITECTURES:
            raise ValueError(
                f"Unknown `architecture` {architecture!r}; valid: {sorted(CNN_ARCHITECTURES)}."
            )
        if weights == "imagenet":
            raise ValueError(
                "`weights='imagenet'` would download weights; mmkeras never downloads. "
                "Pass None or the path to a local weights file."
            )
        if weights is not None and not tf.io.gfile.exists(weights):
            raise ValueError(f"`weights` file not found: {weights!r}.")
        constructor, convention = CNN_ARCHITECTURES[architecture]

        # === Layers ===
        extra = {"include_preprocessing": False} if architecture.startswith("mobilenet") else {}
        with _global_dtype_policy(dtype):  # keras.applications takes no dtype argument
            backbone = constructor(
                include_top=False,
                weights=None,
                input_shape=(image_size, image_size, 3),
                name=f"{architecture}_backbone",
                **extra,
            )
        if weights is not None:
            backbone.load_weights(weights)

        # === Functional Model ===
        images = keras.Input((image_size, image_size, 3), name="images")
        x = _to_application_range(images, architecture, convention)
        features = backbone(x)
        batch_shape = ops.shape(features)
        sequence = ops.reshape(features, (-1, batch_shape[1] * batch_shape[2], batch_shape[3]))
        pooled = ops.mean(sequence, axis=1)
        super().__init__(inputs=images, outputs={"sequence": sequence, "pooled": pooled}, **kwargs)

        # === Config ===
        self.backbone = backbone
        self._set_config(
            output_dim=features.shape[-1],
            architecture=architecture,
            image_size=int(image_size),
            weights=weights,
            dtype=dtype,
        )


def _to_application_range(images, architecture, convention):
    pixels = images * 127.5 + 127.5  # [-1, 1] -> [0, 255]
    if convention == "caffe":  # RGB -> BGR, minus the ImageNet mean
        pixels = ops.flip(pixels, axis=-1) - ops.convert_to_tensor(_CAFFE_MEAN_BGR, pixels.dtype)
    if architecture.startswith("mobilenet"):
        pixels = pixels / 127.5 - 1.0  # MobileNetV3 without its own rescaling layer
    return pixels


@contextlib.contextmanager
def _global_dtype_policy(dtype):
    if dtype is None:
        yield
        return
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(dtype)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
