import numpy as np
import pytest

from mmkeras.encoders import CNNEncoder
from mmkeras.testing.layer_checks import run_model_checks


@pytest.mark.parametrize(
    "architecture,tokens,width",
    [("resnet50", 4, 2048), ("efficientnetb0", 4, 1280), ("mobilenetv3small", 4, 576)],
)
def test_output_shapes(architecture, tokens, width):
    encoder = CNNEncoder(architecture, image_size=64)
    out = encoder(np.zeros((2, 64, 64, 3), "float32"))
    assert out["sequence"].shape == (2, tokens, width)
    assert out["pooled"].shape == (2, width)
    assert encoder.output_dim == width


def test_round_trips_and_local_weights(tmp_path):
    encoder = CNNEncoder("mobilenetv3small", image_size=32)
    images = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    expected = run_model_checks(encoder, images, str(tmp_path), atol=1e-4, rtol=1e-4)
    weights = str(tmp_path / "backbone.weights.h5")
    encoder.backbone.save_weights(weights)
    loaded = CNNEncoder("mobilenetv3small", image_size=32, weights=weights)
    np.testing.assert_allclose(loaded(images)["pooled"], expected["pooled"], atol=1e-5)


def test_bf16():
    encoder = CNNEncoder("mobilenetv3small", image_size=32, dtype="mixed_bfloat16")
    assert encoder(np.zeros((1, 32, 32, 3), "float32"))["pooled"].dtype == "bfloat16"


def test_no_downloads_and_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="never downloads"):
        CNNEncoder("resnet50", weights="imagenet")
    with pytest.raises(ValueError, match="not found"):
        CNNEncoder("resnet50", weights=str(tmp_path / "missing.h5"))
    with pytest.raises(ValueError, match="valid: "):
        CNNEncoder("vgg16")
