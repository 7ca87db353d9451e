import numpy as np
import pytest

from mmkeras.encoders import ViTEncoder
from mmkeras.testing.layer_checks import run_model_checks

TINY = dict(image_size=32, patch_size=8, hidden_dim=16, num_layers=2, num_heads=2, mlp_dim=32)


@pytest.mark.parametrize("pooling", ["cls", "mean", "attention"])
def test_outputs_and_round_trips(pooling, tmp_path):
    encoder = ViTEncoder(pooling=pooling, **TINY)
    images = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    out = run_model_checks(encoder, images, str(tmp_path))
    tokens = 16 + (pooling == "cls")
    assert out["sequence"].shape == (2, tokens, 16)
    assert out["pooled"].shape == (2, 16)
    assert encoder.output_dim == 16


def test_flatten_pooling_keeps_every_patch_token_in_its_place(tmp_path):
    encoder = ViTEncoder(pooling="flatten", **TINY)
    images = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    out = run_model_checks(encoder, images, str(tmp_path))
    assert out["sequence"].shape == (2, 16, 16)  # no class token
    assert out["pooled"].shape == (2, 256) and encoder.output_dim == 256
    # patch p's token is pooled[:, p * 16:(p + 1) * 16]
    np.testing.assert_array_equal(out["pooled"][:, 5 * 16:6 * 16], out["sequence"][:, 5])
    np.testing.assert_array_equal(np.reshape(out["pooled"], (2, 16, 16)), out["sequence"])


def test_bf16():
    encoder = ViTEncoder(dtype="mixed_bfloat16", **TINY)
    out = encoder(np.zeros((1, 32, 32, 3), "float32"))
    assert out["pooled"].dtype == "bfloat16"
    assert ViTEncoder.from_config(encoder.get_config()).get_config()["dtype"] == "mixed_bfloat16"


@pytest.mark.parametrize("size,width", [("tiny", 192), ("small", 384), ("base", 768)])
def test_standard_sizes(size, width):
    encoder = ViTEncoder.from_size(size, image_size=32, patch_size=16, num_layers=1)
    assert encoder(np.zeros((1, 32, 32, 3), "float32"))["pooled"].shape == (1, width)


def test_bad_arguments():
    with pytest.raises(ValueError, match="Unknown ViT size"):
        ViTEncoder.from_size("huge")
    with pytest.raises(ValueError, match="pooling"):
        ViTEncoder(pooling="max", **{k: v for k, v in TINY.items()})


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_pooled_only_gives_the_same_pooled_vector(pooling, tmp_path):
    full = ViTEncoder(pooling=pooling, **TINY)
    fast = ViTEncoder(pooling=pooling, pooled_only=True, **TINY)
    fast.set_weights(full.get_weights())  # the same weights, layer for layer
    images = np.random.default_rng(0).uniform(-1, 1, (3, 32, 32, 3)).astype("float32")
    out = run_model_checks(fast, images, str(tmp_path))
    assert set(out) == {"pooled"}
    np.testing.assert_allclose(out["pooled"], full(images)["pooled"].numpy(), atol=1e-5)
    back = fast.rebuild(pooled_only=False)  # e.g. to caption with a CLIP-trained tower
    np.testing.assert_allclose(back(images)["sequence"].numpy(), full(images)["sequence"].numpy(), atol=1e-6)


def test_conv_stem(tmp_path):
    encoder = ViTEncoder(stem="conv", **TINY)
    images = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    out = run_model_checks(encoder, images, str(tmp_path))
    assert out["sequence"].shape == (2, 17, 16) and encoder.get_config()["stem"] == "conv"
    assert any("stem_0" in w.path for w in encoder.weights)


def test_position_stddev(tmp_path):
    encoder = ViTEncoder(position_stddev=1.0, **{**TINY, "image_size": 64, "patch_size": 4})
    table = next(w for w in encoder.weights if w.path.endswith("position_embedding")).numpy()
    assert abs(float(table.std()) - 1.0) < 0.05  # 257 x 16 draws
    images = np.random.default_rng(0).uniform(-1, 1, (2, 64, 64, 3)).astype("float32")
    run_model_checks(encoder, images, str(tmp_path))
    assert ViTEncoder.from_config(encoder.get_config()).get_config()["position_stddev"] == 1.0
    with pytest.raises(ValueError, match="position_stddev"):
        ViTEncoder(position_stddev=0.0, **TINY)


def test_no_blocks_gives_each_patch_its_own_token(tmp_path):
    encoder = ViTEncoder(pooling="mean", **{**TINY, "num_layers": 0})
    assert not [w for w in encoder.weights if "block_" in w.path]
    images = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    out = run_model_checks(encoder, images, str(tmp_path))
    assert out["sequence"].shape == (2, 16, 16)
    changed = images.copy()
    changed[:, :8, :8] = -changed[:, :8, :8]  # the first 8x8 patch only
    before, after = out["sequence"], encoder(changed)["sequence"].numpy()
    assert np.abs(before[:, 0] - after[:, 0]).max() > 1e-3  # its token moves ...
    np.testing.assert_allclose(before[:, 1:], after[:, 1:], atol=1e-6)  # ... no other does
    with pytest.raises(ValueError, match="must be >= 0"):
        ViTEncoder(**{**TINY, "num_layers": -1})
    with pytest.raises(ValueError, match="class token would never see the patches"):
        ViTEncoder(pooling="cls", pooled_only=True, **{**TINY, "num_layers": 0})


def test_clip_options(tmp_path):
    encoder = ViTEncoder(pre_norm=True, layer_norm_epsilon=1e-5, activation="quick_gelu", **TINY)
    images = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    out = run_model_checks(encoder, images, str(tmp_path))
    assert out["pooled"].shape == (2, 16)
    norms = [layer for layer in encoder.layers if layer.name in ("pre_norm", "final_norm")]
    assert [n.epsilon for n in norms] == [1e-5, 1e-5]
    config = ViTEncoder.from_config(encoder.get_config()).get_config()
    assert (config["pre_norm"], config["activation"], config["layer_norm_epsilon"]) == (True, "quick_gelu", 1e-5)
    assert all(block.activation == "quick_gelu" for block in encoder.layers if block.name.startswith("block_"))
    plain = ViTEncoder(**TINY)  # defaults keep the plain tower: no pre-norm weights
    assert len(plain.weights) == len(encoder.weights) - 2
