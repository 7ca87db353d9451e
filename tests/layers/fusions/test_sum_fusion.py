import numpy as np
import pytest

from mmkeras.layers.fusions import SumFusion

ARGS = {"output_dim": 4}


def test_checks(tmp_path, kit):
    inputs = kit.make_inputs()
    kit.run_checks(
        SumFusion,
        {**ARGS, "normalize": True},
        inputs,
        str(tmp_path),
        presence=kit.presence_of(inputs, absent="image"),
        expected_shape=(2, 4),
    )


@pytest.mark.parametrize("modality", ["image", "text"])
def test_absent_modality_has_no_influence(kit, modality):
    layer = SumFusion(output_dim=4, activation=None, normalize=True)
    kit.check_absent_has_no_influence(layer, kit.make_inputs(), modality)


def test_three_modalities(kit):
    inputs = kit.make_inputs(numeric=True)
    layer = SumFusion(output_dim=4, activation="tanh")
    assert layer(inputs).shape == (2, 4)
    kit.check_absent_has_no_influence(layer, inputs, "numeric")


@pytest.mark.parametrize("normalize", [False, True])
def test_is_sum_of_projections_over_present(kit, normalize):
    inputs = kit.make_inputs()
    layer = SumFusion(output_dim=4, activation=None, normalize=normalize)
    presence = kit.presence_of(inputs, absent="text", rows=(0,))
    out = layer(inputs, presence=presence).numpy()
    layer.bias.assign(np.arange(4, dtype="float32"))
    out = layer(inputs, presence=presence).numpy()
    w_image, w_text = (p.kernel.numpy() for p in layer.projections)  # sorted: image, text
    image = inputs["image"]["pooled"] @ w_image
    text = inputs["text"]["pooled"] @ w_text
    bias = np.arange(4)
    np.testing.assert_allclose(out[0], image[0] + bias, atol=1e-5)
    both = image[1] + text[1]
    np.testing.assert_allclose(out[1], (both / 2 if normalize else both) + bias, atol=1e-5)


def test_gradient_step(kit):
    kit.check_gradient_step(SumFusion(**ARGS), kit.make_inputs())


def test_bad_arguments():
    with pytest.raises(ValueError, match="`output_dim`"):
        SumFusion(output_dim=-1)
