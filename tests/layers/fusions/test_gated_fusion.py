import numpy as np
import pytest

from mmkeras.layers.fusions import GatedFusion

ARGS = {"output_dim": 4}


def test_softmax_gates_are_convex_and_one_modality_takes_all(kit):
    inputs = kit.make_inputs()
    layer = GatedFusion(**ARGS)
    out = layer(inputs).numpy()
    h_image = layer.projections[0](inputs["image"]["pooled"]).numpy()  # tanh(W x)
    h_text = layer.projections[1](inputs["text"]["pooled"]).numpy()
    # Each unit is a convex combination of the two modalities' hidden units.
    low, high = np.minimum(h_image, h_text), np.maximum(h_image, h_text)
    assert np.all(out >= low - 1e-5) and np.all(out <= high + 1e-5)
    only_image = layer(inputs, presence=kit.presence_of(inputs, absent="text", rows=(0, 1)))
    np.testing.assert_allclose(only_image.numpy(), h_image, atol=1e-5)


def test_nothing_present_gives_zeros(kit):
    inputs = kit.make_inputs()
    presence = {"image": np.array([0.0, 1.0], "float32"), "text": np.array([0.0, 1.0], "float32")}
    out = GatedFusion(**ARGS)(inputs, presence=presence).numpy()
    np.testing.assert_allclose(out[0], 0.0)
    assert np.any(out[1] != 0)


def test_bad_arguments(kit):
    with pytest.raises(ValueError, match="`gate`"):
        GatedFusion(output_dim=4, gate="tanh")
    with pytest.raises(ValueError, match="at least 2 modalities"):
        GatedFusion(output_dim=4)({"image": kit.make_inputs()["image"]})
