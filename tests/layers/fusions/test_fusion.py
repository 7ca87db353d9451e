"""Input validation shared by every fusion layer (the `Fusion` base class)."""

import numpy as np
import pytest

from mmkeras.layers.fusions import ConcatFusion, EarlyFusion


def test_bare_tensors_are_pooled_or_sequence(kit):
    inputs = kit.make_inputs()
    layer = EarlyFusion(hidden_dim=8, num_heads=2, num_layers=1)
    out = layer(inputs).numpy()
    bare = {"image": {"sequence": inputs["image"]["sequence"]}, "text": inputs["text"]}
    as_dict = layer(bare).numpy()
    bare["image"] = inputs["image"]["sequence"]
    np.testing.assert_allclose(layer(bare).numpy(), as_dict, atol=1e-6)
    assert out.shape == (2, 8)


def test_modalities_fix_order_and_names(kit):
    inputs = kit.make_inputs(numeric=True)
    layer = ConcatFusion(output_dim=4, modalities=["text", "image", "numeric"])
    layer(inputs)
    assert layer.modality_names == ["text", "image", "numeric"]
    with pytest.raises(ValueError, match="missing: \\['numeric'\\]"):
        layer({"text": inputs["text"], "image": inputs["image"]})


def test_bad_inputs_raise_clear_errors(kit):
    inputs = kit.make_inputs()
    layer = ConcatFusion(output_dim=4)
    with pytest.raises(ValueError, match="unknown keys \\['tokens'\\]"):
        layer({"image": {"tokens": inputs["image"]["pooled"]}, "text": inputs["text"]})
    with pytest.raises(ValueError, match="'pooled'\\]` must have rank 2"):
        layer({"image": {"pooled": inputs["image"]["sequence"]}, "text": inputs["text"]})
    with pytest.raises(ValueError, match="'padding_mask' but no 'sequence'"):
        layer(
            {
                "image": {
                    "pooled": inputs["image"]["pooled"],
                    "padding_mask": np.ones((2, 4), bool),
                },
                "text": inputs["text"],
            }
        )
    with pytest.raises(ValueError, match="`inputs` must be a dict"):
        layer(inputs["image"]["pooled"])
    layer(inputs)
    with pytest.raises(ValueError, match="`presence` has modalities \\['audio'\\]"):
        layer(inputs, presence={"audio": np.ones(2, "float32")})
    with pytest.raises(ValueError, match="`modalities`"):
        ConcatFusion(output_dim=4, modalities=["image", "image"])
    with pytest.raises(ValueError, match="`modalities`"):
        ConcatFusion(output_dim=4, modalities="image")


def test_bool_presence_equals_float_presence(kit):
    inputs = kit.make_inputs()
    layer = ConcatFusion(output_dim=4)
    as_float = layer(inputs, presence={"text": np.array([0.0, 1.0], "float32")}).numpy()
    as_bool = layer(inputs, presence={"text": np.array([False, True])}).numpy()
    np.testing.assert_allclose(as_float, as_bool)
