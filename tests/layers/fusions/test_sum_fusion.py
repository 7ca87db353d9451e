import numpy as np
import pytest

from mmkeras.layers.fusions import SumFusion


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


def test_bad_arguments():
    with pytest.raises(ValueError, match="`output_dim`"):
        SumFusion(output_dim=-1)
