import numpy as np
import pytest

from mmkeras.layers.fusions import HybridFusion

ARGS = {"hidden_dim": 8, "num_layers": 2, "num_heads": 2, "mlp_dim": 16, "num_bottleneck_tokens": 2}


def test_one_block_per_modality_and_depth(kit):
    layer = HybridFusion(**ARGS)
    layer(kit.make_inputs(numeric=True))
    assert len(layer.blocks) == 2 * 3


def test_every_depth_contributes(kit):
    inputs = kit.make_inputs()
    layer = HybridFusion(**ARGS)
    out = layer(inputs).numpy()
    kernel = layer.output_projection.kernel
    for depth in range(2):
        saved = kernel.numpy()
        zeroed = saved.copy()
        zeroed[depth * 8 : (depth + 1) * 8] = 0.0
        kernel.assign(zeroed)
        assert not np.allclose(layer(inputs).numpy(), out, atol=1e-5)
        kernel.assign(saved)


def test_bad_arguments():
    with pytest.raises(ValueError, match="`num_bottleneck_tokens`"):
        HybridFusion(hidden_dim=8, num_bottleneck_tokens=0)
