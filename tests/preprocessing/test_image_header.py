import io
import struct
import zlib

import numpy as np
import tensorflow as tf
from PIL import Image

from mmkeras.preprocessing.image_header import read_image_size


def pil_bytes(height, width, fmt, mode="RGB", **kwargs):
    buffer = io.BytesIO()
    Image.new(mode, (width, height), "red").save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_only(height, width):
    """A PNG whose IHDR declares `height` x `width`, with a few bytes of pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + b"".join(
        png_chunk(kind, data)
        for kind, data in ((b"IHDR", ihdr), (b"IDAT", zlib.compress(b"\0" * 100)), (b"IEND", b""))
    )


def jpeg_header_only(height, width, app_segments=3):
    """SOI, some APPn segments, then a baseline SOF0 declaring `height` x `width`."""
    app = b"".join(b"\xff\xe1" + struct.pack(">H", 2 + 40) + b"\0" * 40 for _ in range(app_segments))
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app + b"\xff\xff" + sof + b"\xff\xda"  # with a fill byte before SOF


def test_exact_sizes_of_real_files():
    pixels = np.zeros((37, 53, 3), np.uint8)
    files = {
        "jpeg": tf.io.encode_jpeg(pixels).numpy(),
        "progressive jpeg": pil_bytes(37, 53, "JPEG", progressive=True),
        "jpeg with exif": pil_bytes(37, 53, "JPEG", exif=Image.Exif()),
        "png": tf.io.encode_png(pixels).numpy(),
        "gray png": tf.io.encode_png(pixels[..., :1]).numpy(),
        "gif": pil_bytes(37, 53, "GIF"),
        "bmp": pil_bytes(37, 53, "BMP"),
        "8-bit bmp": pil_bytes(37, 53, "BMP", mode="P"),
        "webp": pil_bytes(37, 53, "WEBP"),
        "lossless webp": pil_bytes(37, 53, "WEBP", lossless=True),
        "webp with alpha": pil_bytes(37, 53, "WEBP", mode="RGBA"),
    }
    sizes = read_image_size(tf.constant(list(files.values()))).numpy().tolist()
    assert dict(zip(files, sizes)) == {name: [37, 53] for name in files}


def test_huge_declared_sizes_are_read_from_tiny_headers():
    gif = b"GIF89a" + struct.pack("<HH", 65535, 40000) + b"\x80\0\0"
    bmp = b"BM" + b"\0" * 16 + struct.pack("<ii", 30000, -25000) + b"\0" * 28  # top-down
    webp_vp8x = b"RIFF\0\0\0\0WEBPVP8X" + b"\0" * 8 + (16383).to_bytes(3, "little") + (9999).to_bytes(3, "little")
    samples = [png_header_only(20000, 30000), jpeg_header_only(65000, 60000), gif, bmp, webp_vp8x]
    sizes = read_image_size(tf.constant(samples)).numpy().tolist()
    assert sizes == [[20000, 30000], [65000, 60000], [40000, 65535], [25000, 30000], [10000, 16384]]


def test_unreadable_headers_give_minus_one():
    png = png_header_only(5, 6)
    samples = [b"", b"hello", png[:30], b"GIF89a", b"\xff\xd8\xff", jpeg_header_only(5, 6)[:-20],
               b"\xff\xd8\xff\xda" + b"\0" * 20]
    sizes = read_image_size(tf.constant(samples)).numpy().tolist()
    assert sizes == [[-1, -1]] * len(samples)


def test_shapes_graph_and_tf_data():
    png = png_header_only(3, 4)
    assert read_image_size(tf.constant(png)).numpy().tolist() == [3, 4]
    assert read_image_size(tf.constant([[png], [b"x"]])).numpy().tolist() == [[[3, 4]], [[-1, -1]]]
    assert read_image_size(tf.constant([], tf.string)).shape == (0, 2)
    graph = tf.function(read_image_size, input_signature=[tf.TensorSpec([None], tf.string)])
    assert graph(tf.constant([jpeg_header_only(7, 8, app_segments=40)])).numpy().tolist() == [[7, 8]]
    ds = tf.data.Dataset.from_tensor_slices([png, jpeg_header_only(9, 2)]).map(read_image_size)
    assert [s.numpy().tolist() for s in ds] == [[3, 4], [9, 2]]


def test_a_large_file_reads_only_its_header():
    big = png_header_only(11, 12) + b"\0" * 10**7
    assert read_image_size(tf.constant([big])).numpy().tolist() == [[11, 12]]
