import io
import struct
import zlib

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from mmkeras.preprocessing import ImagePreprocessor
from mmkeras.preprocessing import check_image_bytes
from mmkeras.preprocessing import map_with_error_flags
from mmkeras.preprocessing import try_decode_image
from mmkeras.testing.layer_checks import run_layer_checks

RNG = np.random.default_rng(0)


# --- encoders written by the tests -------------------------------------------


def bmp_bytes(pixels, palette=None):
    """Hand-written BMP: [h, w, 3] -> 24-bit, [h, w, 4] -> 32-bit, [h, w] + palette -> 8-bit."""
    height, width = pixels.shape[:2]
    if pixels.ndim == 2:
        bpp, rows = 8, pixels
        table = b"".join(struct.pack("<BBBB", b, g, r, 0) for r, g, b in palette)
    else:
        bpp, rows, table = 8 * pixels.shape[2], pixels[..., [2, 1, 0, 3][: pixels.shape[2]]], b""
    row_size = (bpp // 8 * width + 3) // 4 * 4
    body = b"".join(
        rows[y].tobytes().ljust(row_size, b"\0") for y in range(height - 1, -1, -1)  # bottom-up
    )
    offset = 14 + 40 + len(table)
    colors = len(palette) if palette is not None else 0
    header = struct.pack("<2sIHHI", b"BM", offset + len(body), 0, 0, offset)
    info = struct.pack(
        "<IiiHHIIiiII", 40, width, height, 1, bpp, 0, len(body), 2835, 2835, colors, 0
    )
    return header + info + table + body


def gif_bytes(frames):
    """GIF with exact colours (few colours per frame), via PIL; returns bytes and the first frame."""
    images = [
        Image.fromarray(f).quantize(colors=256, method=Image.Quantize.MAXCOVERAGE) for f in frames
    ]
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:])
    data = buffer.getvalue()
    first = np.array(Image.open(io.BytesIO(data)).convert("RGB"))
    return data, first


def png(pixels):
    return tf.io.encode_png(pixels).numpy()


def jpeg(pixels, **kwargs):
    return tf.io.encode_jpeg(pixels, **kwargs).numpy()


def few_colours(height, width, channels=3):
    return RNG.choice(np.array([0, 64, 128, 255], np.uint8), size=(height, width, channels))


def tf_can_decode(data):
    try:
        tf.io.decode_image(data, channels=3, expand_animations=False)
        return True
    except tf.errors.InvalidArgumentError:
        return False


SIZES = [(1, 1), (5, 7), (300, 17), (17, 300)]


# --- standard checks -------------------------------------------------------------


@pytest.mark.parametrize("resize", ["pad", "crop"])
def test_layer_checks_uint8_pixels(tmp_path, resize):
    images = RNG.integers(0, 256, (2, 12, 10, 3), dtype=np.uint8)
    out = run_layer_checks(
        ImagePreprocessor,
        {"image_size": 8, "resize": resize},
        {"inputs": images},
        str(tmp_path),
        expected_output_shape=(2, 8, 8, 3),
    )
    assert out.dtype == tf.float32
    assert -1.0 <= float(tf.reduce_min(out)) and float(tf.reduce_max(out)) <= 1.0


def test_layer_checks_float_pixels_rectangular_output(tmp_path):
    images = RNG.random((2, 9, 13, 3)).astype("float32")
    run_layer_checks(
        ImagePreprocessor,
        {
            "image_size": [6, 10],
            "resize": "crop",
            "mean": [0.4, 0.5, 0.6],
            "std": [0.2, 0.3, 0.4],
            "max_pixels": 1000,
        },
        {"inputs": images},
        str(tmp_path),
        expected_output_shape=(2, 6, 10, 3),
    )


# --- decoding every format -------------------------------------------------------


def expected_from_pixels(layer, pixels):
    return np.stack([layer(p[None])[0].numpy() for p in pixels])


@pytest.mark.parametrize("resize", ["pad", "crop"])
def test_png_any_size_and_channels_matches_pixel_path(resize):
    layer = ImagePreprocessor(image_size=8, resize=resize)
    for channels in (1, 3, 4):
        pixels = [RNG.integers(0, 256, (h, w, channels), dtype=np.uint8) for h, w in SIZES]
        out = layer(tf.constant([png(p) for p in pixels])).numpy()
        assert out.shape == (len(SIZES), 8, 8, 3)
        np.testing.assert_allclose(out, expected_from_pixels(layer, pixels), atol=1e-5)
        if channels == 1:
            np.testing.assert_array_equal(out[..., 0], out[..., 2])


def test_jpeg_gray_and_rgb_match_the_decoded_pixels():
    layer = ImagePreprocessor(image_size=8)
    for channels in (1, 3):
        # Sizes below twice the output, so the DCT-domain down-scaling is not used.
        pixels = [
            RNG.integers(0, 256, (h, w, channels), dtype=np.uint8)
            for h, w in [(1, 1), (5, 7), (12, 5), (5, 12)]
        ]
        encoded = [jpeg(p) for p in pixels]
        decoded = [tf.io.decode_jpeg(e, channels=3).numpy() for e in encoded]
        out = layer(tf.constant(encoded)).numpy()
        np.testing.assert_allclose(out, expected_from_pixels(layer, decoded), atol=1e-5)


def test_large_jpeg_uses_dct_scaling_and_stays_close_to_full_decode():
    y, x = np.mgrid[0:160, 0:240]
    smooth = np.stack([y * 255 // 159, x * 255 // 239, (x + y) * 255 // 398], -1).astype(np.uint8)
    encoded = jpeg(smooth, quality=95)
    layer = ImagePreprocessor(image_size=8)
    fast = layer(tf.constant([encoded])).numpy()
    full = layer(tf.io.decode_jpeg(encoded)[None]).numpy()
    assert np.abs(fast - full).mean() < 0.02


def test_bmp_24_32_and_8_bit_palette_match_pixels():
    layer = ImagePreprocessor(image_size=8, resize="crop")
    rgb = [few_colours(h, w) for h, w in SIZES]
    rgba = [few_colours(h, w, 4) for h, w in SIZES]
    palette = RNG.integers(0, 256, (7, 3), dtype=np.uint8)
    indices = [RNG.integers(0, 7, (h, w), dtype=np.uint8) for h, w in SIZES]
    gray = [RNG.integers(0, 256, (h, w), dtype=np.uint8) for h, w in SIZES]
    gray_palette = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, 1)
    cases = [
        ([bmp_bytes(p) for p in rgb], rgb),
        ([bmp_bytes(p) for p in rgba], [p[..., :3] for p in rgba]),
        ([bmp_bytes(i, palette) for i in indices], [palette[i] for i in indices]),
        ([bmp_bytes(g, gray_palette) for g in gray], [g[..., None] for g in gray]),
    ]
    for encoded, pixels in cases:
        assert check_image_bytes(tf.constant(encoded)).numpy().all()
        np.testing.assert_allclose(
            layer(tf.constant(encoded)).numpy(), expected_from_pixels(layer, pixels), atol=1e-5
        )


def test_gif_first_frame_any_size():
    layer = ImagePreprocessor(image_size=8)
    encoded, firsts = [], []
    for h, w in SIZES:
        data, first = gif_bytes([few_colours(h, w), few_colours(h, w)])
        encoded.append(data)
        firsts.append(first)
    out = layer(tf.constant(encoded)).numpy()
    np.testing.assert_allclose(out, expected_from_pixels(layer, firsts), atol=1e-5)


def test_scalar_and_column_string_inputs_and_tf_data():
    layer = ImagePreprocessor(image_size=8)
    data = png(few_colours(6, 4))
    single = layer(tf.constant(data))
    assert single.shape == (8, 8, 3)
    np.testing.assert_allclose(layer(tf.constant([[data], [data]]))[1], single, atol=1e-6)
    batches = list(tf.data.Dataset.from_tensor_slices([data, data, data]).batch(2).map(layer))
    assert [tuple(b.shape) for b in batches] == [(2, 8, 8, 3), (1, 8, 8, 3)]
    np.testing.assert_allclose(batches[1][0], single, atol=1e-6)


def test_bfloat16_policy_on_bytes_and_pixels():
    layer = ImagePreprocessor(image_size=8, dtype="mixed_bfloat16")
    assert layer(tf.constant([png(few_colours(5, 3))])).dtype == tf.bfloat16
    assert layer(np.zeros((1, 4, 4, 3), np.uint8)).dtype == tf.bfloat16


# --- geometry -----------------------------------------------------------------------


def test_pad_keeps_aspect_ratio_on_black():
    tall_white = np.full((40, 20, 3), 255, np.uint8)
    layer = ImagePreprocessor(image_size=8, resize="pad")
    for out in (layer(tall_white[None])[0], layer(tf.constant([png(tall_white)]))[0]):
        out = out.numpy()[..., 0]
        # 40x20 -> 8x4, centred: columns 2..5 white (+1), the rest black (-1).
        np.testing.assert_allclose(out[:, 2:6], 1.0, atol=1e-6)
        np.testing.assert_allclose(out[:, :2], -1.0, atol=1e-6)
        np.testing.assert_allclose(out[:, 6:], -1.0, atol=1e-6)


def test_crop_keeps_the_centre():
    image = np.full((20, 40, 3), 255, np.uint8)
    image[:, :10] = (255, 0, 0)
    image[:, 30:] = (0, 0, 255)
    out = ImagePreprocessor(image_size=8, resize="crop")(tf.constant([png(image)]))
    np.testing.assert_allclose(out, 1.0, atol=1e-6)


@pytest.mark.parametrize("resize", ["pad", "crop"])
def test_centred_square_stays_centred(resize):
    image = np.zeros((32, 64, 3), np.uint8)
    image[12:20, 28:36] = 255
    layer = ImagePreprocessor(image_size=8, resize=resize)
    for out in (layer(image[None])[0], layer(tf.constant([png(image)]))[0]):
        weight = (out.numpy()[..., 0] + 1) / 2
        ys, xs = np.mgrid[0:8, 0:8]
        centre = (np.sum(ys * weight) / weight.sum(), np.sum(xs * weight) / weight.sum())
        np.testing.assert_allclose(centre, (3.5, 3.5), atol=1e-4)


def test_denormalize_round_trip():
    image = RNG.integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    layer = ImagePreprocessor(image_size=8, mean=[0.48, 0.46, 0.41], std=[0.27, 0.26, 0.28])
    np.testing.assert_array_equal(layer.denormalize(layer(image)).numpy(), image)
    np.testing.assert_array_equal(
        layer.inverse(layer(tf.constant([png(image[0])])))[0].numpy(), image[0]
    )


# --- bad bytes ---------------------------------------------------------------------------


def test_undecodable_bytes_raise_with_index():
    good = png(few_colours(4, 4))
    layer = ImagePreprocessor(image_size=8)
    for bad, index in (
        (b"", 0),
        (b"<html>not found</html>", 1),
        (jpeg(few_colours(8, 8))[:-40], 2),
    ):
        batch = [good, good, good]
        batch[index] = bad
        with pytest.raises(
            tf.errors.InvalidArgumentError,
            match=rf"could not decode the image bytes at batch index\] \[{index}\]",
        ):
            layer(tf.constant(batch))
    graph_call = tf.function(lambda b: layer(b))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"image bytes at batch index\] \[1\]"):
        graph_call(tf.constant([good, b"GIF89a junk"]))


def test_check_image_bytes_agrees_with_tensorflow_decoders_on_every_prefix():
    progressive = io.BytesIO()
    Image.fromarray(RNG.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(
        progressive, format="JPEG", progressive=True
    )
    gif_two_frames, _ = gif_bytes([few_colours(5, 6), few_colours(5, 6)])
    eoi_cut = jpeg(np.random.default_rng(30).integers(0, 256, (6, 9, 3), dtype=np.uint8))
    files = {
        "jpeg": jpeg(RNG.integers(0, 256, (6, 9, 3), dtype=np.uint8)),
        # libjpeg decodes this one without the last byte of its end-of-image marker
        "jpeg, EOI cut decodes": eoi_cut,
        "progressive jpeg": progressive.getvalue(),
        "png": png(few_colours(4, 6)),
        "gif": gif_two_frames,
        "bmp24": bmp_bytes(few_colours(3, 5)),
        "bmp8": bmp_bytes(
            RNG.integers(0, 3, (3, 5), dtype=np.uint8), [(1, 2, 3), (4, 5, 6), (7, 8, 9)]
        ),
    }
    for name, data in files.items():
        samples = [data[:k] for k in range(len(data) + 1)] + [data + b"\0\0", data + b"junk"]
        checks = check_image_bytes(tf.constant(samples)).numpy()
        decodable = np.array([tf_can_decode(s) for s in samples])
        assert checks[len(data)], name
        wrong = np.nonzero(checks != decodable)[0]
        assert wrong.size == 0, f"{name}: check disagrees with the decoder for prefixes {wrong[:5]}"
    assert eoi_cut[-2:] == b"\xff\xd9" and bool(check_image_bytes(tf.constant(eoi_cut[:-1])))


def test_try_decode_never_raises_and_flags_bad_records():
    rgb = few_colours(6, 10)
    gif, _ = gif_bytes([rgb])
    good = [png(rgb), jpeg(rgb), gif, bmp_bytes(rgb)]
    bad = [
        b"",
        b"\x89PNG\r\n\x1a\n",
        good[0][:-5],
        good[1][:-3],
        gif[:30],
        good[3][:-1],
        b"BM" + b"\0" * 60,
        "hello",
    ]
    images, ok = try_decode_image(tf.constant(good + bad), image_size=8)
    assert ok.numpy().tolist() == [True] * len(good) + [False] * len(bad)
    np.testing.assert_array_equal(images.numpy()[len(good) :], 0.0)
    layer = ImagePreprocessor(image_size=8)
    np.testing.assert_allclose(images[: len(good)], layer(tf.constant(good)), atol=1e-6)
    np.testing.assert_allclose(
        layer.try_decode(tf.constant(good))[0], layer(tf.constant(good)), atol=1e-6
    )
    assert check_image_bytes(tf.constant(good + bad)).numpy().tolist() == ok.numpy().tolist()
    # In tf.data: count good and bad records in one pass, never stopping the epoch.
    ds = tf.data.Dataset.from_tensor_slices(good + bad).map(lambda b: try_decode_image(b, 8))
    counts = ds.reduce(
        (0, 0), lambda n, x: (n[0] + tf.cast(x[1], tf.int32), n[1] + tf.cast(~x[1], tf.int32))
    )
    assert [int(c) for c in counts] == [len(good), len(bad)]
    scalar_image, scalar_ok = try_decode_image(tf.constant(b"nope"), 8)
    assert scalar_image.shape == (8, 8, 3) and not bool(scalar_ok)


def test_tiny_files_declaring_huge_sizes_are_flagged():
    """Decompression bombs without their pixel data: TensorFlow's decoders reject them."""

    def chunk(kind, data):
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    ihdr = struct.pack(">IIBBBBB", 23000, 23000, 8, 2, 0, 0, 0)
    png_bomb = b"\x89PNG\r\n\x1a\n" + b"".join(
        chunk(kind, data)
        for kind, data in ((b"IHDR", ihdr), (b"IDAT", zlib.compress(b"\0" * 100)), (b"IEND", b""))
    )
    screen = struct.pack("<HHBBB", 65535, 65535, 0x80, 0, 0) + b"\0\0\0\xff\xff\xff"
    frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, 65535, 65535, 0) + b"\x02\x02\x4c\x01\x00\x3b"
    gif_bomb = b"GIF89a" + screen + frame
    good = png(few_colours(3, 3))
    checks = check_image_bytes(tf.constant([png_bomb, gif_bomb, good]))
    assert checks.numpy().tolist() == [False, False, True]
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"batch index\] \[1\]"):
        ImagePreprocessor(image_size=8)(tf.constant([good, gif_bomb]))


def test_images_over_max_pixels_are_refused_before_decoding():
    """The header's size is checked first: a 20000x20000 bomb is never decoded."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0)
    bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 99))
    good = png(few_colours(3, 3))
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match=r"ImagePreprocessor refused the image at batch index\] \[2\] \[\(too many pixels:\] "
        r"\[20000x20000\] \[width x height, over max_pixels=50000000\)\]",
    ):
        ImagePreprocessor(image_size=8)(tf.constant([good, b"junk", bomb]))  # the size check comes first
    # Real 20x20 images in every format, against a limit of 100 and of 400 pixels.
    rgb = few_colours(20, 20)
    jpg = jpeg(rgb)
    sof = jpg.index(b"\xff\xc0")
    stray = jpg[:sof] + b"\0\0" + jpg[sof:]  # libjpeg skips the stray bytes; the header walk stops
    samples = [png(rgb), jpg, gif_bytes([rgb])[0], bmp_bytes(rgb), stray]
    assert tf_can_decode(stray)
    assert check_image_bytes(tf.constant(samples), max_pixels=100).numpy().tolist() == [False] * 5
    assert check_image_bytes(tf.constant(samples), max_pixels=400).numpy().tolist() == [True] * 5
    images, ok = try_decode_image(tf.constant(samples), 8, max_pixels=100)
    assert ok.numpy().tolist() == [False] * 5 and not np.any(images.numpy())
    layer = ImagePreprocessor(image_size=8, max_pixels=100)
    assert layer.try_decode(tf.constant(samples))[1].numpy().tolist() == [False] * 5
    for index in range(len(samples)):
        with pytest.raises(tf.errors.InvalidArgumentError, match=rf"batch index\] \[{index}\]"):
            layer(tf.constant([good] * index + [samples[index]]))
    np.testing.assert_allclose(
        ImagePreprocessor(image_size=8, max_pixels=400)(tf.constant(samples[:4])),
        ImagePreprocessor(image_size=8)(tf.constant(samples[:4])),
    )


def test_webp_and_empty_batches():
    pixels = few_colours(6, 9)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="WEBP", lossless=True)
    layer = ImagePreprocessor(image_size=8)
    np.testing.assert_allclose(
        layer(tf.constant([buffer.getvalue()])), layer(pixels[None]), atol=1e-5
    )
    assert layer(tf.constant([], tf.string)).shape == (0, 8, 8, 3)
    images, ok = try_decode_image(tf.constant([], tf.string), 8)
    assert images.shape == (0, 8, 8, 3) and ok.shape == (0,)


def test_corrupt_chunk_is_flagged_by_the_check_and_by_map_with_error_flags():
    data = bytearray(png(few_colours(8, 8)))
    idat = data.index(b"IDAT")
    data[idat + 6] ^= 0xFF  # damage the compressed data: the CRC no longer matches
    corrupt = bytes(data)
    assert not tf_can_decode(corrupt)
    assert not bool(check_image_bytes(tf.constant(corrupt)))
    assert not bool(try_decode_image(tf.constant(corrupt), 8)[1])
    good = png(few_colours(3, 5))
    ds = tf.data.Dataset.from_tensor_slices([good, corrupt, b"junk", good])
    layer = ImagePreprocessor(image_size=8)
    flagged = list(map_with_error_flags(ds, layer))
    assert [bool(ok) for _, ok in flagged] == [True, False, False, True]
    np.testing.assert_allclose(flagged[0][0], layer(tf.constant(good)), atol=1e-6)
    np.testing.assert_array_equal(flagged[1][0], np.zeros((8, 8, 3)))


def test_bad_arguments_raise_value_errors():
    with pytest.raises(ValueError, match="resize"):
        ImagePreprocessor(resize="squash")
    with pytest.raises(ValueError, match="transparency"):
        ImagePreprocessor(transparency="black")
    with pytest.raises(ValueError, match="image_size"):
        ImagePreprocessor(image_size=0)
    with pytest.raises(ValueError, match="std"):
        ImagePreprocessor(std=(0.5, 0.0, 0.5))
    with pytest.raises(ValueError, match="mean"):
        ImagePreprocessor(mean=(0.5, 0.5))
    with pytest.raises(ValueError, match="max_pixels"):
        ImagePreprocessor(max_pixels=0)
    with pytest.raises(ValueError, match="max_pixels"):
        check_image_bytes(tf.constant([b""]), max_pixels=True)
    layer = ImagePreprocessor(image_size=8)
    with pytest.raises(ValueError, match="channels"):
        layer(np.zeros((1, 4, 4, 2), np.uint8))
    with pytest.raises(ValueError, match="dtype int32"):
        layer(np.zeros((1, 4, 4, 3), np.int32))
    with pytest.raises(ValueError, match="inputs"):
        layer(np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="image_bytes"):
        layer(tf.constant([["a", "b"]]))


# --- Keras model and SavedModel ------------------------------------------------------


def test_keras_model_with_string_input_round_trips(tmp_path):
    inputs = keras.Input(shape=(), dtype="string")
    model = keras.Model(inputs, ImagePreprocessor(image_size=8, resize="crop")(inputs))
    data = tf.constant([png(few_colours(5, 9)), jpeg(few_colours(7, 3))])
    path = str(tmp_path / "pre.keras")
    model.save(path)
    np.testing.assert_allclose(keras.saving.load_model(path)(data), model(data), atol=1e-6)


def test_saved_model_with_raw_bytes_signature_in_fresh_process(tmp_path, serve_in_fresh_process):
    layer = ImagePreprocessor(image_size=8)
    module = tf.Module()
    module.preprocess = tf.function(
        lambda b: layer(b), input_signature=[tf.TensorSpec([None], tf.string)]
    )
    export_dir = str(tmp_path / "saved")
    tf.saved_model.save(module, export_dir)
    gif, _ = gif_bytes([few_colours(9, 4)])
    samples = [
        png(few_colours(20, 7, 4)),
        jpeg(few_colours(3, 17)),
        gif,
        bmp_bytes(few_colours(5, 5)),
    ]
    for i, sample in enumerate(samples):
        (tmp_path / f"{i}.bin").write_bytes(sample)
    script = (
        "import json, numpy as np, tensorflow as tf\n"
        f"d = {str(tmp_path)!r}\n"
        f"samples = [open(f'{{d}}/{{i}}.bin', 'rb').read() for i in range({len(samples)})]\n"
        f"m = tf.saved_model.load({export_dir!r})\n"
        "np.save(f'{d}/out.npy', m.preprocess(tf.constant(samples)).numpy())\n"
        "try:\n"
        "    m.preprocess(tf.constant([samples[0], b'junk']))\n"
        "    raised = ''\n"
        "except tf.errors.InvalidArgumentError as e:\n"
        "    raised = e.message\n"
        "print(json.dumps({'raised': raised}))\n"
    )
    report = serve_in_fresh_process(script, timeout=120)
    assert "could not decode the image bytes at batch index" in report["raised"]
    np.testing.assert_allclose(
        np.load(tmp_path / "out.npy"), layer(tf.constant(samples)).numpy(), atol=1e-6
    )


def test_stretch_resizes_each_side_to_the_target():
    image = np.zeros((4, 16, 3), "uint8")
    image[:, 8:] = 255  # left half black, right half white
    out = ImagePreprocessor(image_size=8, resize="stretch", mean=(0, 0, 0), std=(1, 1, 1))(tf.constant([png(image)]))
    out = out.numpy()[0]
    assert out.shape == (8, 8, 3)
    np.testing.assert_allclose(out[:, :3], 0.0, atol=1e-6)  # the whole height, no padding rows
    np.testing.assert_allclose(out[:, 5:], 1.0, atol=1e-6)
    round_trip = ImagePreprocessor.from_config(ImagePreprocessor(image_size=8, resize="stretch").get_config())
    assert round_trip.resize == "stretch"


def test_transparency_white_composites_alpha_on_white_for_bytes_and_pixels():
    rgba = np.zeros((8, 8, 4), "uint8")
    rgba[..., 0] = 200  # red 200 ...
    rgba[:4, ..., 3] = 255  # ... opaque in the top half,
    rgba[4:, ..., 3] = 0  # transparent in the bottom half
    encoded = tf.constant([tf.io.encode_png(rgba).numpy()])
    unit = {"mean": (0, 0, 0), "std": (1, 1, 1), "image_size": 8}
    white = ImagePreprocessor(transparency="white", **unit)
    dropped = ImagePreprocessor(**unit)
    top, bottom = white(encoded).numpy()[0, 0], white(encoded).numpy()[0, 7]
    np.testing.assert_allclose(top[0], [200 / 255, 0, 0], atol=1e-6)
    np.testing.assert_allclose(bottom[0], [1, 1, 1], atol=1e-6)
    np.testing.assert_allclose(dropped(encoded).numpy()[0, 7, 0], [200 / 255, 0, 0], atol=1e-6)
    np.testing.assert_allclose(white(rgba[None]).numpy()[0, 7, 0], [1, 1, 1], atol=1e-6)
    images, ok = white.try_decode(encoded)
    assert bool(ok[0]) and np.allclose(images.numpy()[0, 7, 0], 1.0)
    assert ImagePreprocessor.from_config(white.get_config()).transparency == "white"
