import numpy as np
import pytest

from mmkeras.layers.fusions import HybridFusion

ARGS = {"hidden_dim": 8, "num_layers": 2, "num_heads": 2, "mlp_dim": 16, "num_bottleneck_tokens": 2}


def test_checks(tmp_path, kit):
    inputs = kit.make_inputs()
    kit.run_checks(
        HybridFusion,
        {**ARGS, "num_layers": 1, "output_dim": 6},
        inputs,
        str(tmp_path),
        presence=kit.presence_of(inputs, absent="text"),
        expected_shape=(2, 6),
    )


@pytest.mark.parametrize("modality", ["image", "text"])
def test_absent_modality_has_no_influence(kit, modality):
    kit.check_absent_has_no_influence(HybridFusion(**ARGS), kit.make_inputs(), modality)


def test_three_modalities(kit):
    inputs = kit.make_inputs(numeric=True)
    layer = HybridFusion(**ARGS)
    assert layer(inputs).shape == (2, 8)
    assert len(layer.blocks) == 2 * 3  # one block per modality and depth
    kit.check_absent_has_no_influence(layer, inputs, "numeric")


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


def test_text_padding_is_masked(kit):
    inputs = kit.make_inputs()
    layer = HybridFusion(**ARGS)
    out = layer(inputs).numpy()
    changed = kit.make_inputs()
    changed["text"]["sequence"][0, 2] = 50.0  # padding
    np.testing.assert_allclose(layer(changed).numpy(), out, atol=1e-6)


def test_nothing_present_keeps_learned_bottleneck(kit):
    inputs = kit.make_inputs()
    presence = {"image": np.zeros(2, "float32"), "text": np.zeros(2, "float32")}
    out = HybridFusion(**ARGS)(inputs, presence=presence).numpy()
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out[0], out[1], atol=1e-6)


def test_gradient_step(kit):
    kit.check_gradient_step(HybridFusion(**ARGS), kit.make_inputs())


def test_bad_arguments():
    with pytest.raises(ValueError, match="`num_bottleneck_tokens`"):
        HybridFusion(hidden_dim=8, num_bottleneck_tokens=0)
