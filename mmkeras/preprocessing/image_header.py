"""The pixel size an encoded image declares in its header, read in-graph without decoding.

A few header bytes hold an image's height and width, so an image that would
decode to gigabytes (a "decompression bomb") can be refused before any pixel
is allocated. Everything here is `tf.strings` / `tf.io.decode_raw` graph code:
it runs eagerly, in `tf.function`, in `tf.data` and in SavedModel signatures.

Where the size is read (the same format sniffing as `tf.io.decode_image`):

- JPEG: the first SOFn segment, found by walking the marker segments
  (at most `_MAX_JPEG_SEGMENTS` of them);
- PNG: the IHDR chunk; GIF: the logical screen (what TensorFlow allocates);
- BMP: the info header (a negative height is a top-down image);
- WebP: the VP8, VP8L or VP8X (canvas) header.
"""

import numpy as np
import tensorflow as tf

_MAX_JPEG_SEGMENTS = 512
_HEAD = 32  # bytes read from the start: enough for every fixed-offset header
_ONE = np.int64(1)
_UNKNOWN = np.int64(-1)


def _bytes_at(strings, pos, size):
    """uint8 `[N, size]` of `strings[pos:pos + size]`, zero-padded past the end of each string."""
    pos = tf.clip_by_value(pos, 0, tf.strings.length(strings))
    part = tf.strings.substr(strings, pos, tf.fill(tf.shape(strings), size))
    part = tf.strings.substr(tf.strings.join([part, "\0" * size]), 0, size)
    return tf.cast(tf.io.decode_raw(part, tf.uint8, fixed_length=size), tf.int64)


def _big_endian(b):
    """The unsigned big-endian integers of the byte columns `b` `[N, k]`."""
    value = tf.zeros_like(b[:, 0])
    for i in range(b.shape[1]):
        value = value * 256 + b[:, i]
    return value


def _little_endian(b):
    return _big_endian(b[:, ::-1])


def _jpeg_size(strings, is_jpeg):
    """`(height, width)` of the first SOFn segment of the JPEGs; -1 where it is not found."""
    n = tf.shape(strings)[0]
    length = tf.cast(tf.strings.length(strings), tf.int64)
    not_found = tf.fill([n], _UNKNOWN)

    def body(step, pos, done, height, width):
        b = _bytes_at(strings, tf.cast(pos, tf.int32), 9)
        marker = b[:, 1]
        valid = (b[:, 0] == 0xFF) & (pos + 2 <= length)
        fill = valid & (marker == 0xFF)  # a fill byte before the marker
        standalone = valid & (((marker >= 0xD0) & (marker <= 0xD7)) | (marker == 0x01))
        sof = (
            valid
            & (marker >= 0xC0)
            & (marker <= 0xCF)
            & (marker != 0xC4)
            & (marker != 0xC8)
            & (marker != 0xCC)
        )
        found = ~done & sof & (pos + 9 <= length)
        height = tf.where(found, _big_endian(b[:, 5:7]), height)
        width = tf.where(found, _big_endian(b[:, 7:9]), width)
        # Scan data, the end of the image or a broken marker: no size before it.
        stop = ~valid | (marker == 0xDA) | (marker == 0xD9) | (sof & ~found)
        step_size = tf.where(fill, _ONE, tf.where(standalone, 2 * _ONE, 2 + _big_endian(b[:, 2:4])))
        done = done | found | stop
        return step + 1, tf.where(done, pos, pos + step_size), done, height, width

    _, _, _, height, width = tf.while_loop(
        lambda step, pos, done, *_: (step < _MAX_JPEG_SEGMENTS) & ~tf.reduce_all(done),
        body,
        [tf.constant(0), tf.fill([n], 2 * _ONE), ~is_jpeg, not_found, not_found],
    )
    return height, width


def read_image_size(image_bytes):
    """Height and width an encoded image declares in its header, without decoding it.

    Reads a few bytes of each image (see the module docstring for where);
    costs the same for a 1 KB thumbnail and a 20000x20000 bomb. Gives -1 for
    both where the format is unknown or the header is missing or truncated
    (the decoders reject most of those).

    Args:
        image_bytes: a `tf.string` scalar or tensor of encoded images.

    Returns:
        int64 tensor `image_bytes.shape + [2]` of `(height, width)`.

    Example:

    >>> import tensorflow as tf
    >>> png = tf.io.encode_png(tf.zeros([20, 30, 3], tf.uint8))
    >>> jpeg = tf.io.encode_jpeg(tf.zeros([7, 5, 3], tf.uint8))
    >>> read_image_size(tf.stack([png, jpeg, "not an image"])).numpy().tolist()
    [[20, 30], [7, 5], [-1, -1]]
    """
    image_bytes = tf.convert_to_tensor(image_bytes, tf.string)
    strings = tf.reshape(image_bytes, [-1])
    length = tf.cast(tf.strings.length(strings), tf.int64)
    head = _bytes_at(strings, tf.zeros(tf.shape(strings), tf.int32), _HEAD)
    head_text = tf.strings.substr(tf.strings.join([tf.strings.substr(strings, 0, 16), "\0" * 16]), 0, 16)

    def at(offset, text):
        return tf.equal(tf.strings.substr(head_text, offset, len(text)), text)

    is_webp = at(0, b"RIFF") & at(8, b"WEBP")
    vp8l = _little_endian(head[:, 21:25])
    bmp_height = _little_endian(head[:, 22:26])
    bmp_height = tf.abs(tf.where(bmp_height >= 2**31, bmp_height - 2**32, bmp_height))
    bmp_width = _little_endian(head[:, 18:22])
    # (matches, bytes in the whole header, height, width) per format.
    formats = [
        (
            at(0, b"\x89PNG\r\n\x1a\n") & at(12, b"IHDR"),
            33,
            _big_endian(head[:, 20:24]),
            _big_endian(head[:, 16:20]),
        ),
        (at(0, b"GIF"), 13, _little_endian(head[:, 8:10]), _little_endian(head[:, 6:8])),
        (at(0, b"BM"), 26, bmp_height, tf.where(bmp_width >= 2**31, _UNKNOWN, bmp_width)),
        (
            is_webp & at(12, b"VP8 "),
            30,
            _little_endian(head[:, 28:30]) % 16384,
            _little_endian(head[:, 26:28]) % 16384,
        ),
        (is_webp & at(12, b"VP8L"), 25, (vp8l // 16384) % 16384 + 1, vp8l % 16384 + 1),
        (
            is_webp & at(12, b"VP8X"),
            30,
            _little_endian(head[:, 27:30]) + 1,
            _little_endian(head[:, 24:27]) + 1,
        ),
    ]
    height = width = tf.fill(tf.shape(strings), _UNKNOWN)
    for matches, needed, h, w in formats:
        known = matches & (length >= needed)
        height, width = tf.where(known, h, height), tf.where(known, w, width)
    is_jpeg = at(0, b"\xff\xd8\xff")
    jpeg_height, jpeg_width = _jpeg_size(strings, is_jpeg)
    height = tf.where(is_jpeg, jpeg_height, height)
    width = tf.where(is_jpeg, jpeg_width, width)
    sizes = tf.stack([height, width], axis=-1)
    return tf.reshape(sizes, tf.concat([tf.shape(image_bytes, out_type=tf.int32), [2]], 0))
