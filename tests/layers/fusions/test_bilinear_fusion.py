import numpy as np
import pytest

from mmkeras.layers.fusions import BilinearFusion

ARGS = {"output_dim": 4, "factor_dim": 3}


def _signed_sqrt_l2(z, eps=1e-6):
    z = np.sign(z) * (np.sqrt(np.abs(z) + eps) - np.sqrt(eps))
    return z / np.linalg.norm(z, axis=-1, keepdims=True)


def test_three_modalities_multiply_all_projections(kit):
    inputs = kit.make_inputs(numeric=True)
    layer = BilinearFusion(**ARGS)
    out = layer(inputs).numpy()
    assert out.shape == (2, 4)
    names = ["image", "numeric", "text"]
    projections = [
        p(inputs[n]["pooled"]).numpy().astype("float64") for p, n in zip(layer.projections, names)
    ]
    z = np.prod(projections, axis=0).reshape(2, 4, 3).sum(-1)
    np.testing.assert_allclose(out, _signed_sqrt_l2(z), atol=1e-5)


def test_mfb_for_two_and_absent_factor_is_ones(kit):
    inputs = kit.make_inputs()
    layer = BilinearFusion(**ARGS)
    out = layer(inputs, presence=kit.presence_of(inputs, absent="text", rows=(1,))).numpy()
    image = layer.projections[0](inputs["image"]["pooled"]).numpy().astype("float64")
    text = layer.projections[1](inputs["text"]["pooled"]).numpy().astype("float64")
    np.testing.assert_allclose(
        out[0], _signed_sqrt_l2((image * text).reshape(2, 4, 3).sum(-1))[0], atol=1e-5
    )
    np.testing.assert_allclose(
        out[1], _signed_sqrt_l2(image.reshape(2, 4, 3).sum(-1))[1], atol=1e-5
    )
    np.testing.assert_allclose(np.linalg.norm(out, axis=-1), 1.0, atol=1e-5)


def test_bad_arguments(kit):
    with pytest.raises(ValueError, match="`factor_dim`"):
        BilinearFusion(output_dim=4, factor_dim=0)
    with pytest.raises(ValueError, match="at least 2 modalities"):
        BilinearFusion(output_dim=4, modalities=["image"])
