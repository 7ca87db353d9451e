import numpy as np
import pytest

from mmkeras.layers import PatchEmbedding
from mmkeras.testing.layer_checks import run_layer_checks


def test_checks_and_shape(tmp_path):
    images = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")
    run_layer_checks(
        PatchEmbedding,
        {"patch_size": 8, "hidden_dim": 16},
        {"images": images},
        str(tmp_path),
        expected_output_shape=(2, 17, 16),
    )


def test_without_class_token_patches_are_local():
    layer = PatchEmbedding(patch_size=8, hidden_dim=4, use_class_token=False)
    images = np.zeros((1, 16, 16, 3), "float32")
    base = layer(images).numpy()
    images[0, :8, :8] = 1.0  # only the top-left patch changes
    changed = np.abs(layer(images).numpy() - base).sum(-1)[0]
    assert changed.shape == (4,)
    assert changed[0] > 0 and np.all(changed[1:] == 0)


def test_indivisible_image_size_is_a_clear_error():
    with pytest.raises(ValueError, match="not divisible by `patch_size`"):
        PatchEmbedding(patch_size=7, hidden_dim=4)(np.zeros((1, 16, 16, 3), "float32"))


def test_conv_stem_checks_shape_and_weights(tmp_path):
    images = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")
    run_layer_checks(
        PatchEmbedding,
        {"patch_size": 8, "hidden_dim": 16, "stem": "conv"},
        {"images": images},
        str(tmp_path),
        expected_output_shape=(2, 17, 16),
    )
    layer = PatchEmbedding(patch_size=8, hidden_dim=16, stem="conv", use_class_token=False)
    layer(images)
    kernels = {w.path.split("/")[-2]: tuple(w.shape) for w in layer.weights if w.path.endswith("kernel")}
    # one 3x3 stride-2 convolution (+ channel norm + GELU) per factor 2 of the patch, widening to
    # hidden_dim, then a 1x1 projection and a norm of each token
    assert kernels == {"stem_0": (3, 3, 3, 8), "stem_1": (3, 3, 8, 8), "stem_2": (3, 3, 8, 16),
                       "projection": (1, 1, 16, 16)}
    norms = {w.path.split("/")[-2]: tuple(w.shape) for w in layer.weights if w.path.endswith("gamma")}
    assert norms == {"stem_0_norm": (8,), "stem_1_norm": (8,), "stem_2_norm": (16,), "token_norm": (16,)}


def test_conv_stem_tokens_say_what_they_see_louder_than_where_they_are():
    # At initialisation each token's content is normalised (unit scale) while the
    # learned positions start at stddev 0.02: image content must dominate, or a
    # tower trained from scratch learns shapes slowly.
    images = np.random.default_rng(0).uniform(-1, 1, size=(4, 64, 64, 3)).astype("float32")
    layer = PatchEmbedding(patch_size=16, hidden_dim=32, stem="conv", use_class_token=False)
    content = layer(images).numpy() - layer.position_embedding.numpy()
    assert content.shape == (4, 16, 32)
    np.testing.assert_allclose(content.std(axis=-1), 1.0, atol=0.05)
    assert content.std(axis=(0, 1)).mean() > 0.1  # the tokens differ from image to image, not only by place
    assert float(np.std(layer.position_embedding.numpy())) < 0.05


def test_bad_stem_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="`stem` must be one of"):
        PatchEmbedding(patch_size=8, hidden_dim=4, stem="resnet")
    with pytest.raises(ValueError, match="power-of-2 `patch_size`"):
        PatchEmbedding(patch_size=6, hidden_dim=4, stem="conv")


def test_position_initializer_sets_the_scale_and_round_trips(tmp_path):
    import keras

    images = np.zeros((1, 64, 64, 3), "float32")
    default = PatchEmbedding(patch_size=4, hidden_dim=64, use_class_token=False)
    loud = PatchEmbedding(patch_size=4, hidden_dim=64, use_class_token=False,
                          position_initializer=keras.initializers.RandomNormal(stddev=1.0))
    default(images), loud(images)
    assert abs(float(np.std(default.position_embedding.numpy())) - 0.02) < 0.002
    assert abs(float(np.std(loud.position_embedding.numpy())) - 1.0) < 0.05
    clone = PatchEmbedding.from_config(loud.get_config())
    assert clone.get_config()["position_initializer"]["config"]["stddev"] == 1.0
    run_layer_checks(
        PatchEmbedding,
        {"patch_size": 8, "hidden_dim": 16, "position_initializer": {"class_name": "RandomNormal",
                                                                      "config": {"stddev": 0.5}}},
        {"images": np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")},
        str(tmp_path),
        expected_output_shape=(2, 17, 16),
    )
