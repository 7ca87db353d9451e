"""Inception-style random resized crop with an optional horizontal flip."""

import math

import keras
from keras import ops


def _sample_axis(images, start, extent, out_size, axis, reverse=None):
    """Bilinearly samples `out_size` points along `axis` (1 rows, 2 columns).

    Sample `j` of image `b` sits at `start[b] + (j + 0.5) * extent[b] / out_size`
    in pixel-edge coordinates (half-pixel centres, like `tf.image.resize`), so a
    box covering the whole axis with `out_size` equal to its length copies it.
    """
    size = ops.shape(images)[axis]
    steps = (ops.arange(out_size, dtype="float32") + 0.5) / out_size
    coords = start[:, None] + steps[None, :] * extent[:, None] - 0.5  # [B, out]
    if reverse is not None:
        coords = ops.where(reverse[:, None], ops.flip(coords, axis=1), coords)
    coords = ops.clip(coords, 0.0, ops.cast(size, "float32") - 1.0)
    low = ops.floor(coords)
    frac = coords - low
    low = ops.cast(low, "int32")
    high = ops.minimum(low + 1, ops.cast(size, "int32") - 1)
    if axis == 1:
        index_shape, frac_shape = (-1, out_size, 1, 1), (-1, out_size, 1, 1)
    else:
        index_shape, frac_shape = (-1, 1, out_size, 1), (-1, 1, out_size, 1)
    low = ops.reshape(low, index_shape)
    high = ops.reshape(high, index_shape)
    frac = ops.reshape(frac, frac_shape)
    below = ops.take_along_axis(images, _broadcast_index(low, images, axis), axis=axis)
    above = ops.take_along_axis(images, _broadcast_index(high, images, axis), axis=axis)
    return below + (above - below) * frac


def _broadcast_index(index, images, axis):
    shape = list(ops.shape(images))
    shape[axis] = ops.shape(index)[axis]
    return ops.broadcast_to(index, shape)


@keras.saving.register_keras_serializable(package="mmkeras")
class RandomResizedCrop(keras.layers.Layer):
    """Inception-style random resized crop (and flip) for training; plain resize at inference.

    In training, each image gets its own crop: an area fraction drawn from
    `scale` and an aspect ratio drawn log-uniformly from `ratio` (10 tries; if
    none fits, the largest centred crop within `ratio`), placed uniformly at
    random, then resized bilinearly to `image_size`, and mirrored left-right
    with probability 1/2 when `flip=True`. At inference (`training=False`, the
    default outside `fit`) the whole image is resized to `image_size` (an exact
    copy when the size already matches). Pure Keras ops with stateless random
    numbers from a `keras.random.SeedGenerator`: works in `tf.data`, in
    `tf.function` and under `jit_compile=True`.

    Typically applied to the output of `ImagePreprocessor` (values are
    interpolated, not rescaled, so normalised inputs stay normalised).

    Args:
        image_size: int or `(height, width)` of the output.
        scale: `(min, max)` fraction of the image area kept, in (0, 1].
        ratio: `(min, max)` crop aspect ratio (width / height), positive.
        flip: also flip horizontally at random in training.
        seed: int seed for reproducible crops, or `None`.
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`).

    Example:

    >>> import numpy as np
    >>> crop = RandomResizedCrop(8, seed=0)
    >>> images = np.random.rand(2, 16, 12, 3).astype("float32")
    >>> crop(images, training=True).shape
    TensorShape([2, 8, 8, 3])
    >>> crop(images).shape
    TensorShape([2, 8, 8, 3])
    """

    def __init__(
        self, image_size, scale=(0.5, 1.0), ratio=(3 / 4, 4 / 3), flip=True, seed=None, **kwargs
    ):
        super().__init__(**kwargs)
        # === Config ===
        if isinstance(image_size, bool) or not (
            (isinstance(image_size, int) and image_size > 0)
            or (
                isinstance(image_size, (tuple, list))
                and len(image_size) == 2
                and all(
                    isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in image_size
                )
            )
        ):
            raise ValueError(
                f"`image_size` must be a positive int or a (height, width) pair; got {image_size!r}."
            )
        if not (
            isinstance(scale, (tuple, list)) and len(scale) == 2 and 0 < scale[0] <= scale[1] <= 1
        ):
            raise ValueError(f"`scale` must be (min, max) with 0 < min <= max <= 1; got {scale!r}.")
        if not (isinstance(ratio, (tuple, list)) and len(ratio) == 2 and 0 < ratio[0] <= ratio[1]):
            raise ValueError(f"`ratio` must be (min, max) with 0 < min <= max; got {ratio!r}.")
        self.image_size = image_size if isinstance(image_size, int) else list(image_size)
        self._height, self._width = (
            (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        )
        self.scale = [float(v) for v in scale]
        self.ratio = [float(v) for v in ratio]
        self.flip = bool(flip)
        self.seed = seed
        # === Layers ===
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.built = True

    def _crop_boxes(self, batch, height, width, tries=10):
        """Per-image crop boxes `(top, left, crop_h, crop_w)` in pixels (float)."""
        area = height * width
        target = area * keras.random.uniform(
            (batch, tries), self.scale[0], self.scale[1], seed=self.seed_generator
        )
        log_ratio = keras.random.uniform(
            (batch, tries),
            math.log(self.ratio[0]),
            math.log(self.ratio[1]),
            seed=self.seed_generator,
        )
        aspect = ops.exp(log_ratio)
        crop_w = ops.sqrt(target * aspect)
        crop_h = ops.sqrt(target / aspect)
        fits = ops.logical_and(crop_w <= width, crop_h <= height)
        first = ops.argmax(ops.cast(fits, "int32"), axis=1)[:, None]
        any_fits = ops.any(fits, axis=1)
        crop_w = ops.take_along_axis(crop_w, first, axis=1)[:, 0]
        crop_h = ops.take_along_axis(crop_h, first, axis=1)[:, 0]
        # Fallback: the whole image, narrowed to the allowed aspect ratios.
        in_ratio = width / height
        fallback_w = ops.where(in_ratio > self.ratio[1], height * self.ratio[1], width)
        fallback_h = ops.where(in_ratio < self.ratio[0], width / self.ratio[0], height)
        crop_w = ops.where(any_fits, crop_w, ops.minimum(fallback_w, width))
        crop_h = ops.where(any_fits, crop_h, ops.minimum(fallback_h, height))
        offsets = keras.random.uniform((batch, 2), 0.0, 1.0, seed=self.seed_generator)
        offsets = ops.where(any_fits[:, None], offsets, 0.5)
        top = offsets[:, 0] * (height - crop_h)
        left = offsets[:, 1] * (width - crop_w)
        return top, left, crop_h, crop_w

    def call(self, images, training=None):
        images = ops.convert_to_tensor(images)
        if len(images.shape) not in (3, 4):
            raise ValueError(
                f"`images` must be [height, width, channels] or [batch, ...]; got shape {images.shape}."
            )
        unbatched = len(images.shape) == 3
        if unbatched:
            images = images[None]
        x = ops.cast(images, "float32")
        shape = ops.shape(x)
        batch = shape[0]
        height = ops.cast(shape[1], "float32")
        width = ops.cast(shape[2], "float32")
        if training:
            top, left, crop_h, crop_w = self._crop_boxes(batch, height, width)
            if self.flip:
                reverse = keras.random.uniform((batch,), 0.0, 1.0, seed=self.seed_generator) < 0.5
            else:
                reverse = None
        else:
            top = left = ops.zeros((batch,), "float32")
            crop_h = ops.full((batch,), height)
            crop_w = ops.full((batch,), width)
            reverse = None
        x = _sample_axis(x, top, crop_h, self._height, axis=1)
        x = _sample_axis(x, left, crop_w, self._width, axis=2, reverse=reverse)
        x = ops.cast(x, self.compute_dtype)
        return x[0] if unbatched else x

    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) == 3:
            return (self._height, self._width, input_shape[-1])
        return (input_shape[0], self._height, self._width, input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "image_size": self.image_size,
                "scale": list(self.scale),
                "ratio": list(self.ratio),
                "flip": self.flip,
                "seed": self.seed,
            }
        )
        return config
