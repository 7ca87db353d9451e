"""Fixture files for the loader tests: good, repairable and broken images, written per test."""

import io
import types

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image


def _pil_bytes(array, fmt, mode=None):
    image = Image.fromarray(array)
    if mode:
        image = image.convert(mode)
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


def image_files():
    """`{file name: bytes}`: 3 good, 4 repairable (kept), 5 broken (skipped)."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (12, 10, 3), dtype=np.uint8)
    jpeg = tf.io.encode_jpeg(pixels).numpy()
    png = tf.io.encode_png(pixels).numpy()
    corrupt = bytearray(jpeg)
    corrupt[4:40] = b"\x00" * 36  # the magic survives, the marker walk breaks
    return {
        "good.jpg": jpeg,
        "good.png": png,
        "good.gif": _pil_bytes(pixels, "GIF"),
        "gray.jpg": _pil_bytes(pixels, "JPEG", "L"),
        "cmyk.jpg": _pil_bytes(pixels, "JPEG", "CMYK"),
        "rgba.png": _pil_bytes(pixels, "PNG", "RGBA"),
        "photo.webp": _pil_bytes(pixels, "WEBP"),
        "truncated.jpg": jpeg[: len(jpeg) // 2],
        "truncated.png": png[:-20],
        "corrupt.jpg": bytes(corrupt),
        "empty.jpg": b"",
        "notes.txt": b"not an image at all",
    }


GOOD = ("good.jpg", "good.png", "good.gif")
REPAIRED = {
    "gray.jpg": "grayscale image",
    "cmyk.jpg": "cmyk image",
    "rgba.png": "rgba image",
    "photo.webp": "webp re-encoded as png",
}
SKIPPED = {
    "truncated.jpg": "corrupt image",
    "truncated.png": "corrupt image",
    "corrupt.jpg": "corrupt image",
    "empty.jpg": "empty image file",
    "notes.txt": "unsupported image format",
}


@pytest.fixture(scope="session")
def image_set():
    """The fixture images and what the loaders must do with them."""
    return types.SimpleNamespace(files=image_files(), good=GOOD, repaired=REPAIRED, skipped=SKIPPED)


@pytest.fixture
def image_dir(tmp_path):
    """A folder holding `image_files()`."""
    folder = tmp_path / "images"
    folder.mkdir()
    for name, data in image_files().items():
        (folder / name).write_bytes(data)
    return folder
