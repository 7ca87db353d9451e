import numpy as np
import pytest
import tensorflow as tf

from mmkeras.preprocessing import RandomResizedCrop
from mmkeras.testing.layer_checks import run_layer_checks

RNG = np.random.default_rng(0)


def row_index_images(batch, height, width):
    """Images whose value is the row index (channel 0) and column index (channel 1)."""
    rows, cols = np.mgrid[0:height, 0:width].astype("float32")
    image = np.stack([rows, cols, np.zeros_like(rows)], -1)
    return np.repeat(image[None], batch, 0)


def test_layer_checks_inference_path(tmp_path):
    images = RNG.random((2, 12, 10, 3)).astype("float32")
    out = run_layer_checks(
        RandomResizedCrop,
        {"image_size": 8, "seed": 1},
        {"images": images},
        str(tmp_path),
        expected_output_shape=(2, 8, 8, 3),
    )
    np.testing.assert_allclose(out, tf.image.resize(images, [8, 8]), atol=1e-5)


def test_inference_is_identity_when_size_matches_and_accepts_uint8():
    images = RNG.integers(0, 256, (2, 6, 9, 3), dtype=np.uint8)
    layer = RandomResizedCrop((6, 9))
    np.testing.assert_array_equal(layer(images).numpy(), images.astype("float32"))
    np.testing.assert_array_equal(layer(images[0]).numpy(), images[0].astype("float32"))


def test_training_crops_are_random_reproducible_and_inside_the_image():
    images = row_index_images(16, 16, 16)
    out = RandomResizedCrop(8, scale=(0.25, 0.25), ratio=(1.0, 1.0), flip=False, seed=3)(
        images, training=True
    ).numpy()
    again = RandomResizedCrop(8, scale=(0.25, 0.25), ratio=(1.0, 1.0), flip=False, seed=3)(
        images, training=True
    ).numpy()
    np.testing.assert_array_equal(out, again)
    assert out.min() >= 0.0 and out.max() <= 15.0
    # A quarter of the area at ratio 1 is an 8x8 crop: each output spans 8 source pixels.
    rows, cols = out[..., 0], out[..., 1]
    np.testing.assert_allclose(rows[:, -1, 0] - rows[:, 0, 0], 7.0, atol=1e-4)
    np.testing.assert_allclose(cols[:, 0, -1] - cols[:, 0, 0], 7.0, atol=1e-4)
    # Crops are placed independently per image.
    assert len(np.unique(np.round(rows[:, 0, 0], 3))) > 4


def test_flip_mirrors_about_half_of_the_images():
    images = RNG.random((32, 8, 8, 3)).astype("float32")
    out = RandomResizedCrop(8, scale=(1.0, 1.0), ratio=(1.0, 1.0), flip=True, seed=0)(
        images, training=True
    ).numpy()
    same = [np.allclose(o, i, atol=1e-5) for o, i in zip(out, images)]
    mirrored = [np.allclose(o, i[:, ::-1], atol=1e-5) for o, i in zip(out, images)]
    assert all(s or m for s, m in zip(same, mirrored))
    assert 4 <= sum(mirrored) <= 28


def test_impossible_ratio_falls_back_to_a_centred_crop():
    images = row_index_images(2, 16, 16)
    out = RandomResizedCrop(4, scale=(0.9, 1.0), ratio=(4.0, 4.0), flip=False, seed=0)(
        images, training=True
    ).numpy()
    # No 4:1 crop covers 90% of a square, so the whole width and a centred 4-row band are kept.
    np.testing.assert_allclose(out[:, :, 0, 0], np.tile([6.0, 7.0, 8.0, 9.0], (2, 1)), atol=1e-4)
    np.testing.assert_allclose(out[:, 0, :, 1], np.tile([1.5, 5.5, 9.5, 13.5], (2, 1)), atol=1e-4)


def test_jit_compile_tf_data_and_dynamic_shapes():
    images = RNG.random((3, 10, 14, 3)).astype("float32")
    layer = RandomResizedCrop(6, seed=5)
    compiled = tf.function(lambda x: layer(x, training=True), jit_compile=True)
    assert compiled(images).shape == (3, 6, 6, 3)
    dynamic = tf.function(
        lambda x: layer(x, training=True),
        input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)],
    )
    assert dynamic(images).shape == (3, 6, 6, 3)
    same_image = tf.data.Dataset.from_tensor_slices(np.repeat(images[:1], 4, 0))
    crops = [c.numpy() for c in same_image.map(lambda x: layer(x, training=True))]
    assert all(c.shape == (6, 6, 3) for c in crops)
    assert not all(
        np.allclose(crops[0], c) for c in crops[1:]
    ), "the seed must advance inside tf.data"
    assert RandomResizedCrop(6, dtype="mixed_bfloat16")(images, training=True).dtype == tf.bfloat16


def test_bad_arguments_raise_value_errors():
    with pytest.raises(ValueError, match="image_size"):
        RandomResizedCrop(0)
    with pytest.raises(ValueError, match="scale"):
        RandomResizedCrop(8, scale=(0.5, 1.5))
    with pytest.raises(ValueError, match="ratio"):
        RandomResizedCrop(8, ratio=(2.0, 1.0))
    with pytest.raises(ValueError, match="images"):
        RandomResizedCrop(8)(np.zeros((8, 8), "float32"))
