"""In-graph image decoding, resizing and normalisation for the mmkeras image towers.

Everything here is TensorFlow graph code: it runs eagerly, inside `tf.function`,
inside `tf.data` and inside SavedModel signatures that take raw image bytes, with
no Python callbacks.

Bad bytes. Decoding ops raise, and a graph cannot catch an exception, so the
image bytes are first *inspected* in-graph (`check_image_bytes`): the format is
recognised from its magic bytes and the container structure is walked:

- JPEG: the marker segments up to the first start-of-scan are walked; a
  start-of-frame (baseline, extended, progressive or arithmetic, 8-bit, 1/3/4
  components, non-zero size) must come first, and an end-of-image marker
  (`FF D9`) must follow the first start-of-scan. `FF D9` cannot occur inside
  entropy-coded data, so **every truncation that cuts into the header or the
  scan data is detected**, including truncations that only drop the final
  `FF D9` (TensorFlow's decoder rejects those too) and truncations of
  progressive JPEGs. Bytes cut after the end-of-image marker are harmless and
  the image still decodes. Not detected: damage *inside* the scan data with
  an intact structure (libjpeg usually decodes it with garbled blocks, but
  some damage makes it raise), and a file cut inside an APP segment that holds
  an embedded thumbnail whose own `FF D9` survives (rare).
- PNG: the signature and a valid `IHDR`; then either the file ends with the
  (constant) `IEND` chunk, or, when other data follows, the chunk chain is
  walked to `IEND` (with at least one `IDAT`, and `PLTE` for palette images).
  Any truncation is detected. Not detected: corrupted bytes inside a chunk (a
  CRC or zlib error) or a damaged chunk length in a file that still ends with
  `IEND`; both make the decoder raise.
- GIF: the header, a non-zero logical screen, then the block / sub-block
  chains are walked like TensorFlow's decoder reads them: the first frame must
  be complete and have a colour table (any truncation inside it is detected);
  after it, running out of data is accepted (the decoder keeps the complete
  frames) but an unknown block type is not. Not detected: corrupted LZW data.
- BMP: 8, 24 or 32 bits per pixel and a size that equals the pixel offset
  plus the padded rows, exactly as TensorFlow's decoder requires (so any
  truncation is detected). 8-bit palette BMPs are decoded through their
  palette. 1, 4 and 16-bit and RLE BMPs are not supported by TensorFlow and
  are reported as undecodable.

The test suite checks, for every prefix of small JPEG (baseline and
progressive), PNG, GIF (1 and 2 frames) and BMP (8 and 24-bit) files, that
`check_image_bytes` says `True` exactly when TensorFlow's decoder succeeds.

`ImagePreprocessor` raises an `InvalidArgumentError` naming the batch index of
the first bad image; `try_decode_image` never raises for the cases above and
returns an `ok` flag instead, so a `tf.data` pipeline can filter *and count*
bad records. For the residual cases listed as "not detected" (bytes that look
well formed but make a decoder raise), wrap the decoding in
`map_with_error_flags`, which catches every error of a `tf.data` map function
and turns it into an `ok=False` element (at a cost of about 1-3 ms per
element).
"""

import math

import keras
import tensorflow as tf

_UNKNOWN, _JPEG, _PNG, _GIF, _BMP = 0, 1, 2, 3, 4
_RESIZE_MODES = ("pad", "crop")
_PAD_BYTES = 64
_MAX_WALK_STEPS = 1 << 22
# JPEG start-of-frame markers libjpeg(-turbo) can decode: baseline, extended,
# progressive (Huffman) and extended / progressive (arithmetic).
_JPEG_SOF_DECODABLE = (0xC0, 0xC1, 0xC2, 0xC9, 0xCA)
# Every start-of-frame marker (C4, C8 and CC are DHT, JPG and DAC).
_JPEG_SOF_ALL = (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF)


# ---------------------------------------------------------------------------
# Byte inspection
# ---------------------------------------------------------------------------


class _Bytes:
    """Bounds-safe random access to the bytes of one encoded image."""

    def __init__(self, image_bytes):
        self.raw = tf.io.decode_raw(image_bytes, tf.uint8)
        self.size = tf.size(self.raw, out_type=tf.int64)
        self._padded = tf.concat([self.raw, tf.zeros([_PAD_BYTES], tf.uint8)], 0)

    def read(self, pos, length):
        """`length` bytes from `pos` as an int64 vector (zeros past the end)."""
        pos = tf.reshape(tf.clip_by_value(tf.cast(pos, tf.int64), 0, self.size), [1])
        return tf.cast(tf.slice(self._padded, pos, [length]), tf.int64)

    def byte(self, pos):
        return tf.cast(
            tf.gather(self._padded, tf.clip_by_value(tf.cast(pos, tf.int64), 0, self.size)),
            tf.int64,
        )


def _uint(values, little_endian=False):
    """Unsigned integer from a short int64 vector of bytes."""
    count = values.shape[0]
    weights = [256**i for i in range(count)]
    if not little_endian:
        weights.reverse()
    return tf.reduce_sum(values * tf.constant(weights, tf.int64))


def _matches(values, expected):
    return tf.reduce_all(tf.equal(values, tf.constant(list(expected), tf.int64)))


def _is_one_of(value, options):
    return tf.reduce_any(tf.equal(value, tf.constant(options, tf.int64)))


def _color_table_size(flags):
    """Bytes of a GIF colour table announced by a packed flags byte."""
    return tf.where(flags >= 128, 3 * tf.bitwise.left_shift(tf.constant(2, tf.int64), flags % 8), 0)


def _detect_format(data):
    head = data.read(0, 8)
    is_jpeg = _matches(head[:3], (0xFF, 0xD8, 0xFF))
    is_png = _matches(head, b"\x89PNG\r\n\x1a\n")
    is_gif = _matches(head[:4], b"GIF8")  # what TensorFlow's decoder requires
    is_bmp = _matches(head[:2], b"BM")
    codes = tf.constant([_JPEG, _PNG, _GIF, _BMP], tf.int32)
    flags = tf.stack([is_jpeg, is_png, is_gif, is_bmp])
    return tf.reduce_max(tf.where(flags, codes, _UNKNOWN))


def _inspect_jpeg(data):
    """Walks the marker segments to the first start-of-scan, then looks for `FF D9`."""
    n = data.size
    sof_markers = tf.constant(_JPEG_SOF_ALL, tf.int64)
    one, two, none = tf.constant(1, tf.int64), tf.constant(2, tf.int64), tf.constant(-1, tf.int64)

    def step(state):
        """One marker: state is [pos, sos_pos, sof_pos]; sos_pos != 0 means done."""
        pos, sos_pos, sof_pos = tf.unstack(state)
        w = tf.unstack(data.read(pos, 4))
        marker, length = w[1], w[2] * 256 + w[3]
        is_ff = tf.equal(w[0], 0xFF)
        # Standalone markers (TEM, RSTn, SOI) and fill bytes carry no length;
        # libjpeg skips stray bytes before a marker.
        standalone = tf.equal(marker, 0x01) | ((marker >= 0xD0) & (marker <= 0xD8))
        advance = tf.where(
            ~is_ff | tf.equal(marker, 0xFF), one, tf.where(standalone, two, 2 + length)
        )
        is_segment = is_ff & ~standalone & (marker != 0xFF) & (marker != 0xD9) & (marker != 0xDA)
        # End of data, an end-of-image marker before any scan, or a bad
        # segment length end the walk with no scan found (sos_pos = -1).
        bad = (
            (pos + 2 > n)
            | (is_ff & tf.equal(marker, 0xD9))
            | (is_segment & ((length < 2) | (pos + advance > n)))
        )
        is_sos = is_ff & tf.equal(marker, 0xDA)
        first_sof = is_segment & tf.equal(sof_pos, 0) & tf.reduce_any(tf.equal(marker, sof_markers))
        new = tf.stack(
            [
                pos + advance,
                tf.where(bad, none, tf.where(is_sos, pos, sos_pos)),
                tf.where(first_sof, pos, sof_pos),
            ]
        )
        return tf.where(tf.equal(sos_pos, 0), new, state)

    def body(state):
        # Four markers per iteration: the loop's own bookkeeping costs about
        # as much as a step, and headers rarely have more than a dozen markers.
        return step(step(step(step(state))))

    state = tf.while_loop(
        lambda state: tf.equal(state[1], 0),
        body,
        [tf.constant([2, 0, 0], tf.int64)],
        parallel_iterations=1,
    )[0]
    _, sos_pos, sof_pos = tf.unstack(state)
    sof = tf.unstack(data.read(sof_pos, 10))
    marker, precision, components = sof[1], sof[4], sof[9]
    height, width = sof[5] * 256 + sof[6], sof[7] * 256 + sof[8]

    def search_eoi():
        scan = data.raw[tf.maximum(sos_pos, 0) :]
        return tf.reduce_any(tf.equal(scan[:-1], 0xFF) & tf.equal(scan[1:], 0xD9))

    # Usually the file simply ends with FF D9; only otherwise scan the data.
    ends_with_eoi = _matches(data.read(n - 2, 2), (0xFF, 0xD9)) & (n - 2 > sos_pos)
    has_eoi = tf.cond(ends_with_eoi | (sos_pos <= 0), lambda: ends_with_eoi, search_eoi)
    ok = (
        (sos_pos > 0)
        & (sof_pos > 0)
        & (sof_pos + 10 <= sos_pos)
        & _is_one_of(marker, _JPEG_SOF_DECODABLE)
        & tf.equal(precision, 8)
        & (height > 0)
        & (width > 0)
        & _is_one_of(components, (1, 3, 4))
        & has_eoi
    )
    return ok, height, width


def _inspect_png(data):
    """Checks `IHDR`, then walks the chunk chain to `IEND`."""
    n = data.size
    ihdr = data.read(8, 21)
    width, height = _uint(ihdr[8:12]), _uint(ihdr[12:16])
    depth, color, interlace = ihdr[16], ihdr[17], ihdr[20]
    depth_ok = tf.where(
        tf.equal(color, 0),
        _is_one_of(depth, (1, 2, 4, 8, 16)),
        tf.where(tf.equal(color, 3), _is_one_of(depth, (1, 2, 4, 8)), _is_one_of(depth, (8, 16))),
    )
    header_ok = (
        _matches(ihdr[:8], b"\x00\x00\x00\x0dIHDR")
        & (width > 0)
        & (height > 0)
        & _is_one_of(color, (0, 2, 3, 4, 6))
        & depth_ok
        & (interlace <= 1)
        & (n >= 33)
    )
    iend, idat, plte = (_uint(tf.constant(list(t), tf.int64)) for t in (b"IEND", b"IDAT", b"PLTE"))

    def cond(pos, done, *_):
        return tf.logical_not(done)

    def body(pos, done, ended, seen_idat, seen_plte, steps):
        w = data.read(pos, 8)
        length, kind = _uint(w[:4]), _uint(w[4:])
        fits = pos + 12 + length <= n
        return (
            pos + 12 + length,
            ~fits | tf.equal(kind, iend) | (steps >= _MAX_WALK_STEPS),
            fits & tf.equal(kind, iend),
            seen_idat | (fits & tf.equal(kind, idat)),
            seen_plte | (fits & tf.equal(kind, plte)),
            steps + 1,
        )

    def walk():
        init = (
            tf.constant(33, tf.int64),
            ~header_ok,
            tf.constant(False),
            tf.constant(False),
            tf.constant(False),
            tf.constant(0, tf.int64),
        )
        _, _, ended, seen_idat, seen_plte, _ = tf.while_loop(cond, body, init)
        return ended & seen_idat & (~tf.equal(color, 3) | seen_plte)

    # A complete file normally ends with the constant 12-byte IEND chunk, and a
    # truncated one cannot; only files with data after IEND need the walk.
    ends_with_iend = _matches(data.read(n - 12, 12), b"\x00\x00\x00\x00IEND\xaeB`\x82") & (n >= 45)
    ok = header_ok & tf.cond(ends_with_iend | ~header_ok, lambda: ends_with_iend, walk)
    return ok, height, width


def _inspect_gif(data):
    """Walks the blocks (and their sub-block chains) to the trailer.

    Mirrors TensorFlow's GIF decoder: the first image must be complete and have
    a colour table; after it, running out of data anywhere is accepted (the
    decoder keeps the complete frames), but an unknown block type is not.
    """
    n = data.size
    head = data.read(0, 13)
    width, height = _uint(head[6:8], little_endian=True), _uint(head[8:10], little_endian=True)
    has_global_table = head[10] >= 128
    start = 13 + _color_table_size(head[10])
    header_ok = (width > 0) & (height > 0) & (start <= n)

    def skip_chain(pos):
        """Follows sub-block lengths to the 0 terminator; returns (next pos, complete)."""
        end = tf.while_loop(
            lambda p: (p < n) & tf.not_equal(data.byte(p), 0),
            lambda p: p + 1 + data.byte(p),
            [pos],
        )[0]
        return end + 1, end < n

    def cond(pos, done, ok, images, steps):
        return tf.logical_not(done)

    def body(pos, done, ok, images, steps):
        w = tf.unstack(data.read(pos, 10))
        is_ext, is_image, is_trailer = (
            tf.equal(w[0], 0x21),
            tf.equal(w[0], 0x2C),
            tf.equal(w[0], 0x3B),
        )
        # Image: 9-byte descriptor, optional local colour table, LZW code size.
        chain_start = tf.where(is_ext, pos + 2, pos + 11 + _color_table_size(w[9]))
        walk = (is_ext | is_image) & (chain_start <= n)
        next_pos, complete = tf.cond(
            walk, lambda: skip_chain(chain_start), lambda: (pos, tf.constant(False))
        )
        out_of_data = (pos >= n) | ((is_ext | is_image) & ~(walk & complete))
        # Frames need a colour table; only the first one is checked.
        has_table = has_global_table | (w[9] >= 128) | (images > 0)
        new_image = is_image & walk & complete
        wrong = ~out_of_data & ((~is_ext & ~is_image & ~is_trailer) | (new_image & ~has_table))
        finished = out_of_data | is_trailer | wrong | (steps >= _MAX_WALK_STEPS)
        images = images + tf.cast(new_image & ~wrong, tf.int64)
        return next_pos, finished, (images > 0) & ~wrong, images, steps + 1

    init = (
        start,
        ~header_ok,
        tf.constant(False),
        tf.constant(0, tf.int64),
        tf.constant(0, tf.int64),
    )
    _, _, ok, _, _ = tf.while_loop(cond, body, init)
    return header_ok & ok, height, width


def _bmp_header(data):
    h = data.read(0, 54)
    offset, dib = _uint(h[10:14], True), _uint(h[14:18], True)
    width, raw_height = _uint(h[18:22], True), _uint(h[22:26], True)
    height = tf.abs(tf.where(raw_height >= 2**31, raw_height - 2**32, raw_height))
    bpp, compression, colors = _uint(h[28:30], True), _uint(h[30:34], True), _uint(h[46:50], True)
    return offset, dib, width, height, bpp, compression, colors


def _inspect_bmp(data):
    """Mirrors TensorFlow's BMP decoder: 1, 3 or 4 bytes per pixel and an exact size."""
    offset, _, width, height, bpp, _, _ = _bmp_header(data)
    channels = bpp // 8
    row_size = (channels * width + 3) // 4 * 4
    ok = (
        (width > 0)
        & (width < 2**31)
        & (height > 0)
        & _is_one_of(channels, (1, 3, 4))
        & tf.equal(data.size, offset + row_size * height)
    )
    return ok, height, width


def _inspect_one(image_bytes):
    data = _Bytes(image_bytes)
    fmt = _detect_format(data)
    zero = tf.constant(0, tf.int64)
    ok, height, width = tf.switch_case(
        fmt,
        [
            lambda: (tf.constant(False), zero, zero),
            lambda: _inspect_jpeg(data),
            lambda: _inspect_png(data),
            lambda: _inspect_gif(data),
            lambda: _inspect_bmp(data),
        ],
    )
    return ok, fmt, height, width


# `(ok, format, height, width)` of one encoded image. Traced once per process
# and called as a function from every graph that uses it, so callers'
# `tf.function`s and `tf.data` maps do not re-trace the loops.
_inspect = tf.function(
    _inspect_one, input_signature=[tf.TensorSpec([], tf.string)], autograph=False
)


def check_image_bytes(image_bytes):
    """Tells, without raising, which encoded images `ImagePreprocessor` can decode.

    Recognises JPEG, PNG, GIF and BMP from their magic bytes and walks their
    container structure in-graph (see the module docstring for exactly which
    damage is detected). Empty strings, other formats, truncated files and
    malformed headers give `False`. A truncated file is rejected even where
    the decoder would cope: a JPEG cut inside its final end-of-image marker
    (ending in a lone `0xFF`) gives `False`, while libjpeg decodes some of
    those by supplying the missing marker.

    Args:
        image_bytes: a `tf.string` scalar or tensor of encoded images.

    Returns:
        A `tf.bool` tensor with the shape of `image_bytes`.

    Example:

    >>> import tensorflow as tf
    >>> png = tf.io.encode_png(tf.zeros([2, 3, 3], tf.uint8))
    >>> truncated = tf.strings.substr(png, 0, 20)
    >>> check_image_bytes(tf.stack([png, truncated, "", "hello"])).numpy().tolist()
    [True, False, False, False]
    """
    image_bytes = tf.convert_to_tensor(image_bytes, tf.string)
    ok = _traced(_check_batch)(tf.reshape(image_bytes, [-1]))
    return tf.reshape(ok, tf.shape(image_bytes))


# ---------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------


def _decode_bmp_rgb(image_bytes):
    data = _Bytes(image_bytes)
    image = tf.io.decode_bmp(image_bytes, channels=0)
    offset, dib, _, _, _, _, colors = _bmp_header(data)

    def from_palette():
        # The palette follows the info header; without a usable one, index = gray level.
        start = 14 + dib
        count = tf.where(colors > 0, colors, 256)
        count = tf.clip_by_value(tf.minimum(count, (offset - start) // 4), 0, 256)
        count = tf.where((dib >= 12) & (start <= offset) & (offset <= data.size), count, 0)

        def lookup():
            entries = tf.reshape(data.raw[start : start + 4 * count], [-1, 4])
            palette = tf.reverse(entries[:, :3], axis=[1])  # BGRx -> RGB
            index = tf.minimum(tf.cast(image[..., 0], tf.int64), count - 1)
            return tf.gather(palette, index)

        return tf.cond(count > 0, lookup, lambda: tf.image.grayscale_to_rgb(image[..., :1]))

    channels = tf.shape(image)[-1]
    rgb = tf.cond(
        tf.equal(channels, 1),
        from_palette,
        lambda: image[..., :3],
    )
    return tf.ensure_shape(rgb, [None, None, 3])


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


def _decode_rgb_one(image_bytes, fmt, jpeg_ratio_index):
    def jpeg():
        return tf.switch_case(
            jpeg_ratio_index,
            [lambda r=r: tf.io.decode_jpeg(image_bytes, channels=3, ratio=r) for r in (1, 2, 4, 8)],
        )

    image = tf.switch_case(
        fmt,
        [
            lambda: tf.zeros([1, 1, 3], tf.uint8),
            jpeg,
            lambda: tf.io.decode_png(image_bytes, channels=3),
            lambda: tf.io.decode_gif(image_bytes)[0],
            lambda: _decode_bmp_rgb(image_bytes),
        ],
    )
    return tf.ensure_shape(image, [None, None, 3])


# Decodes one recognised image to uint8 RGB `[h, w, 3]` (first GIF frame);
# traced once per process like `_inspect`.
_decode_rgb = tf.function(
    _decode_rgb_one,
    input_signature=[
        tf.TensorSpec([], tf.string),
        tf.TensorSpec([], tf.int32),
        tf.TensorSpec([], tf.int32),
    ],
    autograph=False,
)


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
    """
    h, w = _spatial_dims(images)
    m = _PyMath if isinstance(h, int) and isinstance(w, int) else _TfMath
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


def _to_rgb(images):
    channels = images.shape[-1]
    if channels == 3:
        return images
    if channels == 1:
        return tf.tile(images, [1, 1, 1, 3])
    if channels == 4:
        return images[..., :3]
    raise ValueError(
        f"`images` must have 1, 3 or 4 channels (gray, RGB, RGBA); got shape {images.shape}."
    )


_TRACED = {}


def _traced(fn, *static_args, shape=(None,)):
    """`fn(tensor, *static_args)` as one cached `tf.function` per configuration.

    The decoding graph (byte inspection loops, decoders, resizing, inside a
    `tf.map_fn`) has about a thousand ops. Tracing it once per process and
    calling the traced function (eagerly, or as a function-call op from a
    caller's `tf.function`, `tf.data` map or SavedModel signature) avoids
    re-tracing it in every graph that uses it, and avoids running it op by op
    in eager mode, which is two orders of magnitude slower.
    """
    key = (fn.__name__, tuple(shape)) + static_args
    if key not in _TRACED:
        _TRACED[key] = tf.function(
            lambda t: fn(t, *static_args),
            input_signature=[tf.TensorSpec(shape, tf.string)],
            autograph=False,
        )
    return _TRACED[key]


def _check_batch(image_bytes):
    return tf.map_fn(lambda b: _inspect(b)[0], image_bytes, fn_output_signature=tf.bool)


def _decode_batch(image_bytes, target_h, target_w, mode, strict, who):
    """Decodes and fits a `[N]` batch of encoded images; returns float [0, 1] pixels and ok flags."""
    if image_bytes.shape[0] == 1:  # e.g. one record per `tf.data` element: no `map_fn` loop
        return _traced(_decode_single_graph, target_h, target_w, mode, strict, who, shape=[1])(
            image_bytes
        )
    return _traced(_decode_batch_graph, target_h, target_w, mode, strict, who)(image_bytes)


def _decode_one(encoded, index, target_h, target_w, mode, strict, who):
    """Decodes and fits one encoded image; returns float [0, 1] pixels and the ok flag."""
    ok, fmt, height, width = _inspect(encoded)

    def decode():
        ratio_index = _jpeg_ratio_index(height, width, target_h, target_w, mode)
        image = _decode_rgb(encoded, fmt, ratio_index)
        image = tf.cast(image, tf.float32)[tf.newaxis] / 255.0
        return _fit(image, target_h, target_w, mode)[0]

    if strict:
        check = tf.debugging.Assert(
            ok,
            [
                f"{who} could not decode the image bytes at batch index",
                index,
                "(empty, truncated or corrupt data, or not a JPEG/PNG/GIF/BMP image)",
            ],
            summarize=1,
        )
        with tf.control_dependencies([check]):
            image = decode()
    else:
        image = tf.cond(ok, decode, lambda: tf.zeros([target_h, target_w, 3], tf.float32))
    return image, ok


def _decode_single_graph(image_bytes, target_h, target_w, mode, strict, who):
    image, ok = _decode_one(image_bytes[0], tf.constant(0), target_h, target_w, mode, strict, who)
    return image[tf.newaxis], ok[tf.newaxis]


def _decode_batch_graph(image_bytes, target_h, target_w, mode, strict, who):
    return tf.map_fn(
        lambda args: _decode_one(args[0], args[1], target_h, target_w, mode, strict, who),
        (image_bytes, tf.range(tf.shape(image_bytes)[0])),
        fn_output_signature=(
            tf.TensorSpec([target_h, target_w, 3], tf.float32),
            tf.TensorSpec([], tf.bool),
        ),
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


def try_decode_image(
    image_bytes, image_size=224, resize="pad", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)
):
    """Decodes encoded images like `ImagePreprocessor`, flagging bad ones instead of raising.

    Never raises for empty strings, unknown formats, truncated files or
    malformed headers (see the module docstring for the exact checks); those
    give `ok=False` and an all-zero image. Use it in `tf.data` to filter and
    count bad records:

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
    image_bytes = tf.convert_to_tensor(image_bytes, tf.string)
    batch, restore = _string_batch(image_bytes)
    images, ok = _decode_batch(
        batch, target_h, target_w, resize, strict=False, who="try_decode_image"
    )
    images = (images - mean) / std
    images = tf.where(ok[:, None, None, None], images, 0.0)
    return restore(images), restore(ok)


def map_with_error_flags(dataset, map_fn, num_parallel_calls=tf.data.AUTOTUNE):
    """Maps `map_fn` over a dataset, turning any error it raises into a flag.

    Each output element is `(outputs, ok)`. When `map_fn` raises for an
    element (any `tf.errors.OpError`, e.g. a PNG with a CRC error that passed
    `check_image_bytes`), that element becomes `(zeros, False)` instead of
    ending the epoch, so the pipeline can count and drop it. The zeros have the
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
    (first frame) / BMP, grayscale, RGB or RGBA) or decoded pixels (`uint8`
    in [0, 255], `uint16`, or float in [0, 1]; 1, 3 or 4 channels), and returns
    `[N, height, width, 3]` images in the layer's compute dtype, normalised as
    `(pixel - mean) / std` (the default maps [0, 1] to [-1, 1]). Alpha is
    dropped. Downscaling box-filters before the bilinear resize so large photos
    do not alias; large JPEGs are decoded at 1/2, 1/4 or 1/8 scale in the DCT
    domain when that loses no resolution.

    Bytes that cannot be decoded raise `tf.errors.InvalidArgumentError` whose
    message says the image bytes at a given batch index could not be decoded.
    Use `try_decode` / `try_decode_image` in data pipelines to flag them
    instead. The pixels path is XLA compatible (static shapes); the bytes path
    runs on CPU (decoders have no XLA kernels) and works in `tf.function`,
    `tf.data` and SavedModel signatures that take raw bytes.

    Args:
        image_size: int or `(height, width)` of the output.
        resize: `"pad"`: aspect-preserving resize so the whole image fits,
            centred on a black canvas (black is 0 before normalisation);
            `"crop"`: resize so the shorter side fits and keep the centre.
        mean: 3 per-channel means, for pixels in [0, 1].
        std: 3 per-channel standard deviations.
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

    def __init__(
        self, image_size=224, resize="pad", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), **kwargs
    ):
        super().__init__(**kwargs)
        # === Config ===
        (self._height, self._width), self.mean, self.std = _validate_options(
            image_size, resize, mean, std
        )
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
            images, _ = _decode_batch(
                batch, self._height, self._width, self.resize, True, "ImagePreprocessor"
            )
            return restore(self._normalize(images))
        rank = inputs.shape.rank
        if rank not in (3, 4):
            raise ValueError(
                f"`inputs` pixels must be [height, width, channels] or [batch, height, width, channels]; "
                f"got shape {inputs.shape}."
            )
        images = inputs[tf.newaxis] if rank == 3 else inputs
        images = _to_rgb(_to_unit_float(images))
        images = self._normalize(_fit(images, self._height, self._width, self.resize))
        return images[0] if rank == 3 else images

    def try_decode(self, image_bytes):
        """Like calling the layer on bytes, but returns `(images, ok)` and never raises for bad bytes.

        Args:
            image_bytes: `tf.string` scalar, `[N]` or `[N, 1]`.

        Returns:
            `(images, ok)`; images of bad records are all zeros.
        """
        images, ok = try_decode_image(
            image_bytes, self.image_size, self.resize, self.mean, self.std
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
            }
        )
        return config
