"""In-graph image decoding, resizing and normalisation for the mmkeras image towers.

Everything here is TensorFlow graph code: it runs eagerly, inside `tf.function`,
inside `tf.data` and inside SavedModel signatures that take raw image bytes, with
no Python callbacks.

Decoding uses TensorFlow's own decoders: `tf.io.decode_image` (PNG, GIF (first
frame), WebP), `tf.io.decode_jpeg` (at 1/2, 1/4 or 1/8 scale in the DCT domain
when that loses no resolution, sized with `tf.io.extract_jpeg_shape`) and
`tf.io.decode_bmp`. TensorFlow returns the palette indices of 8-bit BMPs as
gray levels, so those are looked up in the file's palette.

Bad bytes. Decoding ops raise, and a graph cannot catch an exception, so a
batch is decoded inside a small `tf.data` pipeline built in the graph: its
`ignore_errors` drops the images a decoder rejects, and the others keep their
batch index, which gives an `ok` flag per image. An image is bad exactly when
TensorFlow's decoder raises for it (empty, truncated or corrupt data, an
unknown format, a damaged chunk or a CRC error, a zero width or height).
TensorFlow's decoders reject tiny files that declare a huge size without
allocating the pixels, and refuse PNGs and JPEGs over 2**29 pixels.

Too many pixels. Before decoding, the height and width each image declares
in its header are read (`image_header.read_image_size`, a few bytes per
image); images over `max_pixels` (default 50 megapixels, about 150 MB of
decoded RGB) are refused without being decoded, so a small file that would
decode to gigabytes (a decompression bomb) costs nothing. JPEGs are checked
again with `tf.io.extract_jpeg_shape` (libjpeg's own header reader) just
before their decode.

`ImagePreprocessor` raises an `InvalidArgumentError` naming the batch index of
the first bad image (and, for too many pixels, its size);
`try_decode_image` returns the `ok` flags instead, so a `tf.data` pipeline
can filter *and count* bad records.
"""

import math

import keras
import tensorflow as tf

from mmkeras.preprocessing.image_header import read_image_size

DEFAULT_MAX_PIXELS = 50_000_000
_RESIZE_MODES = ("pad", "crop", "stretch")
_BAD_BYTES = "(empty, truncated or corrupt data, or not a JPEG/PNG/GIF/BMP image)"


# ---------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------


def _bmp_rgb(image_bytes):
    """uint8 RGB `[h, w, 3]` of a BMP; 8-bit BMPs are looked up in their palette."""
    image = tf.io.decode_bmp(image_bytes, channels=0)

    def from_palette():
        # Little-endian header fields: pixel offset (at 10), info header size (14), colours (46).
        header = tf.io.decode_raw(tf.strings.substr(image_bytes, 10, 40), tf.int32)
        offset, dib, colors = header[0], header[1], header[9]
        start = 14 + dib  # the palette follows the info header, 4 bytes (BGRx) per entry
        count = tf.minimum(tf.where(colors > 0, colors, 256), (offset - start) // 4)
        count = tf.where(dib >= 12, tf.clip_by_value(count, 0, 256), 0)
        entries = tf.io.decode_raw(
            tf.strings.substr(image_bytes, tf.where(count > 0, start, 0), 4 * count), tf.uint8
        )
        # Without a palette the index is the gray level (a gray ramp after the palette).
        gray = tf.tile(tf.range(256, dtype=tf.int32)[:, None], [1, 3])
        palette = tf.reverse(tf.reshape(entries, [-1, 4])[:, :3], [1])  # BGRx -> RGB
        table = tf.concat([palette, tf.cast(gray, tf.uint8)], 0)
        index = tf.cast(image[..., 0], tf.int32)
        return tf.gather(table, tf.where(count > 0, tf.minimum(index, count - 1), index))

    return tf.cond(tf.equal(tf.shape(image)[-1], 1), from_palette, lambda: image[..., :3])


def _jpeg_ratio_index(height, width, target_h, target_w, mode):
    """Index into (1, 2, 4, 8) of the largest DCT down-scaling that loses nothing."""
    height = tf.cast(tf.maximum(height, 1), tf.float64)
    width = tf.cast(tf.maximum(width, 1), tf.float64)
    sy, sx = target_h / height, target_w / width
    scale = tf.minimum(sy, sx) if mode == "pad" else tf.maximum(sy, sx)
    index = tf.constant(0, tf.int32)
    for i, ratio in enumerate((2, 4, 8)):
        index = tf.where(ratio * scale <= 1.0, i + 1, index)
    return index


def _decode_rgb(image_bytes, max_pixels, target=None, mode="pad", transparency="drop"):
    """uint8 RGB `[h, w, 3]` of one encoded image (a GIF's first frame); raises for bad bytes.

    `transparency` "white" composites a PNG, GIF or WebP alpha channel on white; "drop" drops it.

    JPEGs over `max_pixels` (by libjpeg's header reader) raise before decoding.
    With `target` (height, width), JPEGs are decoded at the smallest DCT scale
    that still covers the `mode` resize to `target`.
    """

    def jpeg():
        shape = tf.io.extract_jpeg_shape(image_bytes, output_type=tf.int64)
        check = tf.debugging.assert_less_equal(shape[0] * shape[1], tf.constant(max_pixels, tf.int64))
        with tf.control_dependencies([check]):
            shape = tf.identity(shape)
        if target is None:
            with tf.control_dependencies([shape]):
                return tf.io.decode_jpeg(image_bytes, channels=3)
        index = _jpeg_ratio_index(shape[0], shape[1], *target, mode)
        return tf.switch_case(
            index,
            [lambda r=r: tf.io.decode_jpeg(image_bytes, channels=3, ratio=r) for r in (1, 2, 4, 8)],
        )

    def other():
        if transparency == "drop":
            return tf.io.decode_image(image_bytes, channels=3, expand_animations=False)
        rgba = tf.cast(tf.io.decode_image(image_bytes, channels=4, expand_animations=False), tf.float32)
        alpha = rgba[..., 3:] / 255.0
        return tf.cast(tf.round(rgba[..., :3] * alpha + 255.0 * (1.0 - alpha)), tf.uint8)

    is_jpeg = tf.equal(tf.strings.substr(image_bytes, 0, 3), b"\xff\xd8\xff")
    is_bmp = tf.equal(tf.strings.substr(image_bytes, 0, 2), b"BM")
    branch = tf.where(is_jpeg, 1, tf.where(is_bmp, 2, 0))
    image = tf.switch_case(branch, [other, jpeg, lambda: _bmp_rgb(image_bytes)])
    return tf.ensure_shape(image, [None, None, 3])


# Traced once per process; every decoding graph calls it as a function.
_read_sizes = tf.function(
    read_image_size, input_signature=[tf.TensorSpec([None], tf.string)], autograph=False
)


def _oversized(image_bytes, max_pixels):
    """`(refused, sizes)`: `[N]` flags of the images whose header declares over `max_pixels`, and `[N, 2]` sizes."""
    sizes = _read_sizes(image_bytes)
    pixels = sizes[:, 0] * sizes[:, 1]
    return (sizes[:, 0] >= 0) & (pixels > max_pixels), sizes


def _decode_flagged(image_bytes, fn, shape, refused):
    """`(outputs, ok)` of `fn` (bytes -> float32 `shape`) on `[N]` bytes; zeros where it raised or `refused`."""
    n = tf.shape(image_bytes)[0]
    decoded = (
        tf.data.Dataset.from_tensor_slices((tf.range(n), image_bytes, refused))
        .filter(lambda i, b, skip: ~skip)
        .map(lambda i, b, _: (i, fn(b)), num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
        .ignore_errors()
        .batch(tf.cast(tf.maximum(n, 1), tf.int64))
    )
    none = tf.data.Dataset.from_tensors((tf.zeros([0], tf.int32), tf.zeros([0, *shape])))
    index, values = decoded.concatenate(none).take(1).get_single_element()
    ok = tf.scatter_nd(index[:, None], tf.ones_like(index), [n]) > 0
    return tf.scatter_nd(index[:, None], values, tf.stack([n, *shape])), ok


def _check_graph(image_bytes, max_pixels):
    def decode(encoded):
        return tf.cast(tf.size(_decode_rgb(encoded, max_pixels)), tf.float32)

    return _decode_flagged(image_bytes, decode, [], _oversized(image_bytes, max_pixels)[0])[1]


def _decode_graph(image_bytes, target_h, target_w, mode, strict, who, max_pixels, transparency="drop"):
    def decode(encoded):
        image = tf.cast(_decode_rgb(encoded, max_pixels, (target_h, target_w), mode, transparency), tf.float32)
        return _fit(image[tf.newaxis] / 255.0, target_h, target_w, mode)[0]

    refused, sizes = _oversized(image_bytes, max_pixels)
    if strict:
        # Refused before any image of the batch is decoded.
        first = tf.argmax(tf.concat([tf.cast(refused, tf.int32), [1]], 0), output_type=tf.int32)
        size = tf.strings.format("{}x{}", tf.unstack(tf.concat([sizes, [[0, 0]]], 0)[first][::-1]))
        check = tf.debugging.Assert(
            ~tf.reduce_any(refused),
            [
                f"{who} refused the image at batch index",
                first,
                "(too many pixels:",
                size,
                f"width x height, over max_pixels={max_pixels})",
            ],
            summarize=1,
        )
        with tf.control_dependencies([check]):
            image_bytes = tf.identity(image_bytes)
    images, ok = _decode_flagged(image_bytes, decode, [target_h, target_w, 3], refused)
    if strict:
        first_bad = tf.argmin(tf.concat([tf.cast(ok, tf.int32), [0]], 0), output_type=tf.int32)
        message = f"{who} could not decode the image bytes at batch index"
        check = tf.debugging.Assert(
            tf.reduce_all(ok), [message, first_bad, _BAD_BYTES], summarize=1
        )
        with tf.control_dependencies([check]):
            images = tf.identity(images)
    return images, ok


_TRACED = {}


def _traced(fn, *static_args):
    """`fn(tensor, *static_args)` as one cached `tf.function` per configuration.

    Tracing the decoding graph once per process and calling it (eagerly, or as
    a function-call op from a caller's `tf.function`, `tf.data` map or
    SavedModel signature) avoids re-tracing it in every graph that uses it.
    """
    key = (fn.__name__,) + static_args
    if key not in _TRACED:
        _TRACED[key] = tf.function(
            lambda t: fn(t, *static_args),
            input_signature=[tf.TensorSpec([None], tf.string)],
            autograph=False,
        )
    return _TRACED[key]


def check_image_bytes(image_bytes, max_pixels=DEFAULT_MAX_PIXELS):
    """Tells, without raising, which encoded images `ImagePreprocessor` can decode.

    Runs TensorFlow's decoders (see the module docstring): empty strings,
    other formats, truncated files and corrupt data give `False`, and so do
    images whose header declares more than `max_pixels` (not decoded).

    Args:
        image_bytes: a `tf.string` scalar or tensor of encoded images.
        max_pixels: the most pixels (height x width) an image may have.

    Returns:
        A `tf.bool` tensor with the shape of `image_bytes`.

    Example:

    >>> import tensorflow as tf
    >>> png = tf.io.encode_png(tf.zeros([2, 3, 3], tf.uint8))
    >>> truncated = tf.strings.substr(png, 0, 20)
    >>> check_image_bytes(tf.stack([png, truncated, "", "hello"])).numpy().tolist()
    [True, False, False, False]
    """
    max_pixels = _validate_max_pixels(max_pixels)
    image_bytes = tf.convert_to_tensor(image_bytes, tf.string)
    ok = _traced(_check_graph, max_pixels)(tf.reshape(image_bytes, [-1]))
    return tf.reshape(ok, tf.shape(image_bytes))


# ---------------------------------------------------------------------------
# Geometry (shared by the bytes path and the pixels path)
# ---------------------------------------------------------------------------


class _PyMath:
    """Geometry on static (Python int) sizes: keeps shapes static for XLA."""

    @staticmethod
    def ratio(a, b):
        return a / b

    minimum, maximum = staticmethod(min), staticmethod(max)

    @staticmethod
    def round(x):
        return int(math.floor(x + 0.5))

    @staticmethod
    def clip(x, lo, hi):
        return max(lo, min(x, hi))


class _TfMath:
    """The same geometry on dynamic (tensor) sizes, in float64 like Python."""

    @staticmethod
    def ratio(a, b):
        return tf.cast(a, tf.float64) / tf.cast(b, tf.float64)

    minimum, maximum = staticmethod(tf.minimum), staticmethod(tf.maximum)

    @staticmethod
    def round(x):
        return tf.cast(tf.floor(x + 0.5), tf.int32)

    @staticmethod
    def clip(x, lo, hi):
        return tf.clip_by_value(x, lo, hi)


def _spatial_dims(images):
    shape = tf.shape(images)
    h = images.shape[1] if images.shape[1] is not None else shape[1]
    w = images.shape[2] if images.shape[2] is not None else shape[2]
    return h, w


def _box_reduce(images, rows, cols):
    """Averages `rows` x `cols` blocks (each 1 or 2); drops an odd last row / column.

    Written as a reshape and sums of contiguous slices, which is several times
    faster on CPU than `avg_pool2d` for 3-channel images, and XLA friendly.
    """
    shape = tf.shape(images)
    dims = [images.shape[i] if images.shape[i] is not None else shape[i] for i in range(4)]
    batch, height, width, channels = dims
    height, width = height // rows, width // cols
    images = images[:, : height * rows, : width * cols]
    images = tf.reshape(images, [batch, height, rows, width, cols * channels])
    if rows == 2:
        images = images[:, :, 0] + images[:, :, 1]
    else:
        images = images[:, :, 0]
    if cols == 2:
        images = images[..., :channels] + images[..., channels:]
    return images * (1.0 / (rows * cols))


def _resize(images, out_h, out_w):
    """Bilinear resize with box-filter pre-reduction so downscaling does not alias.

    Halves an axis by 2-pixel box averaging while it is at least twice the
    target, then resizes bilinearly. Works on static shapes (XLA) and dynamic
    shapes, with the same arithmetic.
    """
    h, w = _spatial_dims(images)
    if all(isinstance(v, int) for v in (h, w, out_h, out_w)):
        while h >= 2 * out_h or w >= 2 * out_w:
            rows, cols = (2 if h >= 2 * out_h else 1), (2 if w >= 2 * out_w else 1)
            images, h, w = _box_reduce(images, rows, cols), h // rows, w // cols
    else:

        def halve_rows(x):
            return tf.shape(x)[1] >= 2 * out_h

        def halve_cols(x):
            return tf.shape(x)[2] >= 2 * out_w

        def body(x):
            branch = tf.cast(halve_rows(x), tf.int32) * 2 + tf.cast(halve_cols(x), tf.int32)
            return tf.switch_case(
                branch,
                [
                    lambda: x,
                    lambda: _box_reduce(x, 1, 2),
                    lambda: _box_reduce(x, 2, 1),
                    lambda: _box_reduce(x, 2, 2),
                ],
            )

        images = tf.while_loop(
            lambda x: halve_rows(x) | halve_cols(x),
            body,
            [images],
            shape_invariants=[tf.TensorShape([images.shape[0], None, None, 3])],
        )[0]
    return tf.image.resize(
        images, tf.stack([out_h, out_w]) if not isinstance(out_h, int) else [out_h, out_w]
    )


def _fit(images, target_h, target_w, mode):
    """Resizes float `[B, h, w, 3]` images to `[B, target_h, target_w, 3]`.

    "pad": the whole image is scaled to fit inside the target and centred on a
    black (zero) canvas. "crop": the image is scaled so that it covers the
    target and the centre is kept (cropping happens on the source first).
    "stretch": each side is scaled to the target's (the aspect ratio changes).
    """
    h, w = _spatial_dims(images)
    m = _PyMath if isinstance(h, int) and isinstance(w, int) else _TfMath
    if mode == "stretch":
        return _resize(images, target_h, target_w)
    if mode == "crop":
        scale = m.maximum(m.ratio(target_h, h), m.ratio(target_w, w))
        crop_h = m.clip(m.round(target_h / scale), 1, h)
        crop_w = m.clip(m.round(target_w / scale), 1, w)
        top, left = (h - crop_h) // 2, (w - crop_w) // 2
        images = images[:, top : top + crop_h, left : left + crop_w]
        images = _resize(images, target_h, target_w)
    else:
        scale = m.minimum(m.ratio(target_h, h), m.ratio(target_w, w))
        new_h = m.clip(m.round(m.ratio(h, 1) * scale), 1, target_h)
        new_w = m.clip(m.round(m.ratio(w, 1) * scale), 1, target_w)
        images = _resize(images, new_h, new_w)
        top, left = (target_h - new_h) // 2, (target_w - new_w) // 2
        images = tf.pad(
            images,
            [[0, 0], [top, target_h - new_h - top], [left, target_w - new_w - left], [0, 0]],
        )
    return tf.ensure_shape(images, [images.shape[0], target_h, target_w, 3])


def _to_unit_float(images):
    """uint8 / uint16 pixels to float32 in [0, 1]; float pixels are kept as they are."""
    dtype = images.dtype
    if dtype == tf.uint8:
        return tf.cast(images, tf.float32) / 255.0
    if dtype == tf.uint16:
        return tf.cast(images, tf.float32) / 65535.0
    if dtype.is_floating:
        return tf.cast(images, tf.float32)
    raise ValueError(
        f"`images` must be encoded bytes (tf.string), uint8, uint16 or float pixels; got dtype {dtype.name}."
    )


def _to_rgb(images, transparency="drop"):
    channels = images.shape[-1]
    if channels == 3:
        return images
    if channels == 1:
        return tf.tile(images, [1, 1, 1, 3])
    if channels == 4:
        if transparency == "white":  # pixels in [0, 1]: composite on white
            return images[..., :3] * images[..., 3:] + (1.0 - images[..., 3:])
        return images[..., :3]
    raise ValueError(
        f"`images` must have 1, 3 or 4 channels (gray, RGB, RGBA); got shape {images.shape}."
    )


def _validate_options(image_size, resize, mean, std):
    if isinstance(image_size, bool) or not (
        (isinstance(image_size, int) and image_size > 0)
        or (
            isinstance(image_size, (tuple, list))
            and len(image_size) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in image_size)
        )
    ):
        raise ValueError(
            f"`image_size` must be a positive int or a (height, width) pair; got {image_size!r}."
        )
    if resize not in _RESIZE_MODES:
        raise ValueError(f"`resize` must be one of {_RESIZE_MODES}; got {resize!r}.")
    for name, values in (("mean", mean), ("std", std)):
        if not isinstance(values, (tuple, list)) or len(values) != 3:
            raise ValueError(f"`{name}` must be 3 numbers (one per RGB channel); got {values!r}.")
    if any(not s > 0 for s in std):
        raise ValueError(f"`std` must be positive; got {std!r}.")
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    return size, [float(v) for v in mean], [float(v) for v in std]


TRANSPARENCY_MODES = ("drop", "white")


def _validate_transparency(transparency):
    if transparency not in TRANSPARENCY_MODES:
        raise ValueError(f"`transparency` must be one of {TRANSPARENCY_MODES}; got {transparency!r}.")
    return transparency


def _validate_max_pixels(max_pixels):
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1:
        raise ValueError(f"`max_pixels` must be a positive int; got {max_pixels!r}.")
    return max_pixels


def _string_batch(image_bytes):
    """Returns `(bytes [N], restore)` for scalar, `[N]` or `[N, 1]` string inputs."""
    rank = image_bytes.shape.rank
    if rank == 0:
        return image_bytes[tf.newaxis], lambda x: x[0]
    if rank == 1:
        return image_bytes, lambda x: x
    if rank == 2 and image_bytes.shape[1] == 1:
        return image_bytes[:, 0], lambda x: x
    raise ValueError(
        f"`image_bytes` must be a scalar or a [N] (or [N, 1]) string tensor; got shape {image_bytes.shape}."
    )


def try_decode_image(image_bytes, image_size=224, resize="pad", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
                     max_pixels=DEFAULT_MAX_PIXELS, transparency="drop"):
    """Decodes encoded images like `ImagePreprocessor`, flagging bad ones instead of raising.

    Never raises for bytes TensorFlow's decoders reject (empty strings,
    unknown formats, truncated files, corrupt data) or for images over
    `max_pixels`; those give `ok=False` and an all-zero image. Use it in
    `tf.data` to filter and count bad records:

    ```python
    ds = ds.map(lambda b: try_decode_image(b, 224))
    bad = ds.reduce(0, lambda n, x: n + tf.cast(~x[1], tf.int32))
    ds = ds.filter(lambda image, ok: ok)
    ```

    Args:
        image_bytes: `tf.string` scalar, `[N]` or `[N, 1]` of JPEG/PNG/GIF/BMP bytes.
        image_size: int or `(height, width)` of the output.
        resize: `"pad"` (aspect-preserving resize, centred on black) or
            `"crop"` (resize the shorter side, centre crop).
        mean: per-channel mean subtracted from pixels in [0, 1].
        std: per-channel standard deviation divided out.
        max_pixels: the most pixels (height x width, read from the header
            before decoding) an image may have.

    Returns:
        `(images, ok)`: float32 `[..., height, width, 3]` normalised images and
        a `tf.bool` flag per image.

    Example:

    >>> import tensorflow as tf
    >>> png = tf.io.encode_png(tf.zeros([5, 9, 3], tf.uint8))
    >>> images, ok = try_decode_image(tf.stack([png, "not an image"]), 8)
    >>> images.shape, ok.numpy().tolist()
    (TensorShape([2, 8, 8, 3]), [True, False])
    """
    (target_h, target_w), mean, std = _validate_options(image_size, resize, mean, std)
    max_pixels = _validate_max_pixels(max_pixels)
    _validate_transparency(transparency)
    image_bytes = tf.convert_to_tensor(image_bytes, tf.string)
    batch, restore = _string_batch(image_bytes)
    decode = _traced(
        _decode_graph, target_h, target_w, resize, False, "try_decode_image", max_pixels, transparency
    )
    images, ok = decode(batch)
    images = (images - mean) / std
    images = tf.where(ok[:, None, None, None], images, 0.0)
    return restore(images), restore(ok)


def map_with_error_flags(dataset, map_fn, num_parallel_calls=tf.data.AUTOTUNE):
    """Maps `map_fn` over a dataset, turning any error it raises into a flag.

    Each output element is `(outputs, ok)`. When `map_fn` raises for an
    element (any `tf.errors.OpError`, e.g. from a decoder or a shape check),
    that element becomes `(zeros, False)` instead of ending the epoch, so the
    pipeline can count and drop it. The zeros have the
    structure and dtypes of `map_fn`'s output, with unknown dimensions set to 0.
    Order is preserved. Each element runs in its own tiny dataset, which costs
    about 1-3 ms of CPU per element: use it around the decoding step, not
    around cheap maps.

    Args:
        dataset: a `tf.data.Dataset`.
        map_fn: the function to map; receives the element like `Dataset.map`.
        num_parallel_calls: parallelism of the per-element maps (`None`: sequential).

    Returns:
        A `tf.data.Dataset` of `(outputs, ok)`.

    Example:

    >>> import tensorflow as tf
    >>> ds = tf.data.Dataset.from_tensor_slices([b"junk", tf.io.encode_png(tf.zeros([2, 2, 3], tf.uint8)).numpy()])
    >>> decode = lambda b: tf.io.decode_png(b, channels=3)
    >>> [bool(ok) for _, ok in map_with_error_flags(ds, decode)]
    [False, True]
    """
    spec = dataset.map(map_fn).element_spec

    def fallback_value(s):
        if not isinstance(s, tf.TensorSpec):
            raise ValueError(
                f"`map_fn` must return (nested) dense tensors; got an output with spec {s}."
            )
        return tf.zeros([d if d is not None else 0 for d in s.shape.as_list()], s.dtype)

    def per_element(*element):
        single = tf.data.Dataset.from_tensors(element)
        good = single.map(lambda *e: (map_fn(*e), tf.constant(True))).ignore_errors()
        fallback = tf.data.Dataset.from_tensors(
            (tf.nest.map_structure(fallback_value, spec), tf.constant(False))
        )
        return good.concatenate(fallback).take(1)

    # One-element sub-datasets, taken one at a time in turn: the order is kept.
    parallel = (
        {}
        if num_parallel_calls is None
        else {"num_parallel_calls": num_parallel_calls, "deterministic": True}
    )
    return dataset.interleave(
        per_element, cycle_length=tf.data.AUTOTUNE, block_length=1, **parallel
    )


# ---------------------------------------------------------------------------
# The layer
# ---------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="mmkeras")
class ImagePreprocessor(keras.layers.Layer):
    """Decodes, resizes and normalises images in-graph, from bytes or pixels.

    Takes either encoded image bytes (`tf.string`, any size, JPEG / PNG / GIF
    (first frame) / BMP / WebP, grayscale, palette, RGB or RGBA) or decoded
    pixels (`uint8` in [0, 255], `uint16`, or float in [0, 1]; 1, 3 or 4
    channels), and returns
    `[N, height, width, 3]` images in the layer's compute dtype, normalised as
    `(pixel - mean) / std` (the default maps [0, 1] to [-1, 1]). Alpha is
    dropped, or composited on white (`transparency="white"`). Downscaling box-filters before the bilinear resize so large photos
    do not alias; large JPEGs are decoded at 1/2, 1/4 or 1/8 scale in the DCT
    domain when that loses no resolution.

    Bytes that cannot be decoded raise `tf.errors.InvalidArgumentError` whose
    message says the image bytes at a given batch index could not be decoded.
    Images whose header declares more than `max_pixels` pixels are refused
    before anything is decoded, with an `InvalidArgumentError` naming the
    batch index and the size ("... refused the image at batch index] [0]
    [(too many pixels:] [20000x20000] [width x height, over
    max_pixels=50000000)"). Use `try_decode` / `try_decode_image` in data pipelines to flag them
    instead. The pixels path is XLA compatible (static shapes); the bytes path
    runs on CPU (decoders have no XLA kernels) and works in `tf.function`,
    `tf.data` and SavedModel signatures that take raw bytes.

    Args:
        image_size: int or `(height, width)` of the output.
        resize: `"pad"`: aspect-preserving resize so the whole image fits,
            centred on a black canvas (black is 0 before normalisation);
            `"crop"`: resize so the shorter side fits and keep the centre;
            `"stretch"`: both sides resized to the target (as ViT processors do).
        mean: 3 per-channel means, for pixels in [0, 1].
        std: 3 per-channel standard deviations.
        max_pixels: the most pixels (height x width, read from the header
            before decoding) an encoded image may have; the default, 50
            million, decodes to about 150 MB of RGB.
        transparency: `"drop"` (the alpha channel is ignored) or `"white"`
            (transparent pixels composited on white, as the Hugging Face
            image processors do).
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`).

    Example:

    >>> import numpy as np, tensorflow as tf
    >>> pre = ImagePreprocessor(image_size=16)
    >>> jpeg = tf.io.encode_jpeg(np.full((30, 20, 3), 255, "uint8"))
    >>> pre(tf.stack([jpeg, jpeg])).shape
    TensorShape([2, 16, 16, 3])
    >>> pre(np.zeros((2, 8, 8, 3), "uint8")).shape
    TensorShape([2, 16, 16, 3])
    >>> pre.denormalize(pre(tf.stack([jpeg])))[0, 8, 8].numpy().tolist()
    [255, 255, 255]
    """

    def __init__(self, image_size=224, resize="pad", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
                 max_pixels=DEFAULT_MAX_PIXELS, transparency="drop", **kwargs):
        super().__init__(**kwargs)
        # === Config ===
        (self._height, self._width), self.mean, self.std = _validate_options(
            image_size, resize, mean, std
        )
        self.max_pixels = _validate_max_pixels(max_pixels)
        self.transparency = _validate_transparency(transparency)
        self.image_size = image_size if isinstance(image_size, int) else list(image_size)
        self.resize = resize
        # Strings and raw pixels are handled in `call`; keep them as given.
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True
        self.built = True

    def _normalize(self, images):
        images = (images - tf.constant(self.mean, tf.float32)) / tf.constant(self.std, tf.float32)
        return tf.cast(images, self.compute_dtype)

    def call(self, inputs):
        inputs = tf.convert_to_tensor(inputs)
        if inputs.dtype == tf.string:
            batch, restore = _string_batch(inputs)
            decode = _traced(
                _decode_graph,
                self._height,
                self._width,
                self.resize,
                True,
                "ImagePreprocessor",
                self.max_pixels,
                self.transparency,
            )
            images, _ = decode(batch)
            return restore(self._normalize(images))
        rank = inputs.shape.rank
        if rank not in (3, 4):
            raise ValueError(
                f"`inputs` pixels must be [height, width, channels] or [batch, height, width, channels]; "
                f"got shape {inputs.shape}."
            )
        images = inputs[tf.newaxis] if rank == 3 else inputs
        images = _to_rgb(_to_unit_float(images), self.transparency)
        images = self._normalize(_fit(images, self._height, self._width, self.resize))
        return images[0] if rank == 3 else images

    def try_decode(self, image_bytes):
        """Like calling the layer on bytes, but returns `(images, ok)` and never raises for bad bytes.

        Images over `max_pixels` are flagged bad too.

        Args:
            image_bytes: `tf.string` scalar, `[N]` or `[N, 1]`.

        Returns:
            `(images, ok)`; images of bad records are all zeros.
        """
        images, ok = try_decode_image(
            image_bytes, self.image_size, self.resize, self.mean, self.std, self.max_pixels, self.transparency
        )
        return tf.cast(images, self.compute_dtype), ok

    def denormalize(self, images):
        """Maps normalised images back to uint8 pixels in [0, 255] for visualisation.

        Args:
            images: output of this layer (any float dtype).

        Returns:
            `tf.uint8` tensor of the same shape.
        """
        images = tf.cast(images, tf.float32) * tf.constant(self.std) + tf.constant(self.mean)
        return tf.cast(tf.round(tf.clip_by_value(images, 0.0, 1.0) * 255.0), tf.uint8)

    inverse = denormalize

    def compute_output_spec(self, inputs):
        shape = tuple(inputs.shape)
        dtype = keras.backend.standardize_dtype(inputs.dtype)
        if dtype == "string":
            unbatched = len(shape) == 0
        else:
            unbatched = len(shape) == 3
        out = (self._height, self._width, 3)
        return keras.KerasTensor(out if unbatched else (shape[0],) + out, dtype=self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "image_size": self.image_size,
                "resize": self.resize,
                "mean": list(self.mean),
                "std": list(self.std),
                "max_pixels": self.max_pixels,
                "transparency": self.transparency,
            }
        )
        return config
