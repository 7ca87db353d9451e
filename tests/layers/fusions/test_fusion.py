"""What every fusion layer shares: the `Fusion` base class's input validation, and the
checks each fusion must pass (config, `.keras`, XLA and bfloat16; absent modalities and
text padding have no influence, nor the inputs when nothing is present; a third modality;
a training step).

The tests of one fusion's own behaviour live in its test file.
"""

import numpy as np
import pytest

from mmkeras.layers.fusions import (
    BilinearFusion,
    ConcatFusion,
    CrossAttentionFusion,
    EarlyFusion,
    GatedFusion,
    HybridFusion,
    LateFusion,
    SumFusion,
)

ATTENTION = {"hidden_dim": 8, "num_heads": 2, "mlp_dim": 16}  # the attention fusions' sizes
BILINEAR = {"output_dim": 4, "factor_dim": 3}
CONCAT = {"output_dim": 4, "hidden_dims": [8]}
EARLY = {**ATTENTION, "num_layers": 1}
HYBRID = {**ATTENTION, "num_layers": 2, "num_bottleneck_tokens": 2}
LATE = {"num_classes": 3}


def fusions(*cases):
    """`(id, layer class, arguments, *more)` rows as pytest parameters named by their id."""
    return [pytest.param(*case[1:], id=case[0]) for case in cases]


# (layer class, arguments, modality absent from row 0, output shape)
SAVED = fusions(
    ("bilinear", BilinearFusion, BILINEAR, "text", (2, 4)),
    ("concat", ConcatFusion, CONCAT, "text", (2, 4)),
    ("cross_attention", CrossAttentionFusion, {**ATTENTION, "co_attention": True, "output_dim": 6}, "image",
     (2, 6)),
    ("cross_attention-null", CrossAttentionFusion, {**ATTENTION, "null_attention": True}, "image", (2, 8)),
    ("early", EarlyFusion, {**EARLY, "output_dim": 6}, "text", (2, 6)),
    ("early-mean", EarlyFusion, {**EARLY, "pooling": "mean"}, "image", (2, 8)),
    ("gated", GatedFusion, {"output_dim": 4}, "image", (2, 4)),
    ("hybrid", HybridFusion, {**HYBRID, "num_layers": 1, "output_dim": 6}, "text", (2, 6)),
    *((f"late-{c}", LateFusion, {**LATE, "combine": c, "hidden_dim": 8}, "text", (2, 3))
      for c in ("learned", "product")),
    ("sum", SumFusion, {"output_dim": 4, "normalize": True}, "image", (2, 4)),
)
# (layer class, arguments): each variant whose masking differs.
MASKING = fusions(
    ("bilinear", BilinearFusion, BILINEAR),
    ("concat", ConcatFusion, CONCAT),
    ("cross_attention", CrossAttentionFusion, {**ATTENTION, "num_layers": 2, "co_attention": False}),
    ("cross_attention-co_attention", CrossAttentionFusion, {**ATTENTION, "num_layers": 2, "co_attention": True}),
    ("cross_attention-null", CrossAttentionFusion,
     {**ATTENTION, "num_layers": 2, "co_attention": True, "null_attention": True}),
    ("early", EarlyFusion, {**EARLY, "num_layers": 2}),
    ("early-mean", EarlyFusion, {**EARLY, "num_layers": 2, "pooling": "mean"}),
    *((f"gated-{gate}", GatedFusion, {"output_dim": 4, "gate": gate}) for gate in ("softmax", "sigmoid")),
    ("hybrid", HybridFusion, HYBRID),
    *((f"late-{c}-{a}", LateFusion, {**LATE, "combine": c, "activation": a})
      for a in ("softmax", "sigmoid") for c in ("mean", "learned", "product")),
    ("sum", SumFusion, {"output_dim": 4, "activation": None, "normalize": True}),
)
# (layer class, arguments, output shape); cross-attention takes exactly two modalities.
THREE_MODALITIES = fusions(
    ("bilinear", BilinearFusion, BILINEAR, (2, 4)),
    ("concat", ConcatFusion, CONCAT, (2, 4)),
    ("early", EarlyFusion, EARLY, (2, 8)),
    ("gated", GatedFusion, {"output_dim": 4}, (2, 4)),
    ("hybrid", HybridFusion, HYBRID, (2, 8)),
    ("late", LateFusion, {**LATE, "combine": "learned"}, (2, 3)),
    ("sum", SumFusion, {"output_dim": 4, "activation": "tanh"}, (2, 4)),
)
# (layer class, arguments): the fusions that attend over the text tokens.
SEQUENCES = fusions(
    ("cross_attention", CrossAttentionFusion, {**ATTENTION, "co_attention": True}),
    ("early", EarlyFusion, EARLY),
    ("hybrid", HybridFusion, HYBRID),
)
# (layer class, arguments), with dropout where the fusion has it.
TRAINED = fusions(
    ("bilinear", BilinearFusion, {**BILINEAR, "dropout": 0.1}),
    ("concat", ConcatFusion, {**CONCAT, "dropout": 0.1}),
    ("cross_attention", CrossAttentionFusion, {**ATTENTION, "co_attention": True}),
    ("early", EarlyFusion, {**EARLY, "dropout": 0.1}),
    ("gated", GatedFusion, {"output_dim": 4}),
    ("hybrid", HybridFusion, HYBRID),
    *((f"late-{c}", LateFusion, {**LATE, "combine": c, "hidden_dim": 8}) for c in ("learned", "product")),
    ("sum", SumFusion, {"output_dim": 4}),
)


@pytest.mark.parametrize("layer_cls, kwargs, absent, shape", SAVED)
def test_checks(tmp_path, kit, layer_cls, kwargs, absent, shape):
    inputs = kit.make_inputs()
    presence = kit.presence_of(inputs, absent=absent)
    kit.run_checks(layer_cls, kwargs, inputs, str(tmp_path), presence=presence, expected_shape=shape)


@pytest.mark.parametrize("modality", ["image", "text"])
@pytest.mark.parametrize("layer_cls, kwargs", MASKING)
def test_absent_modality_has_no_influence(kit, layer_cls, kwargs, modality):
    kit.check_absent_has_no_influence(layer_cls(**kwargs), kit.make_inputs(), modality)


@pytest.mark.parametrize("layer_cls, kwargs", MASKING)
def test_nothing_present_is_finite_and_ignores_the_inputs(kit, layer_cls, kwargs):
    inputs = kit.make_inputs()  # two different examples
    presence = {"image": np.zeros(2, "float32"), "text": np.zeros(2, "float32")}
    out = layer_cls(**kwargs)(inputs, presence=presence).numpy()
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out[0], out[1], atol=1e-6)


@pytest.mark.parametrize("layer_cls, kwargs, shape", THREE_MODALITIES)
def test_three_modalities(kit, layer_cls, kwargs, shape):
    inputs = kit.make_inputs(numeric=True)
    layer = layer_cls(**kwargs)
    assert layer(inputs).shape == shape
    kit.check_absent_has_no_influence(layer, inputs, "numeric")


@pytest.mark.parametrize("layer_cls, kwargs", SEQUENCES)
def test_text_padding_is_masked(kit, layer_cls, kwargs):
    layer = layer_cls(**kwargs)
    out = layer(kit.make_inputs()).numpy()
    changed = kit.make_inputs()
    changed["text"]["sequence"][0, 2] = 50.0  # row 0, position 2 is padding
    np.testing.assert_allclose(layer(changed).numpy(), out, atol=1e-6)
    changed["text"]["sequence"][0, 1] = 50.0  # a real token
    assert not np.allclose(layer(changed).numpy()[0], out[0], atol=1e-4)


@pytest.mark.parametrize("layer_cls, kwargs", TRAINED)
def test_gradient_step(kit, layer_cls, kwargs):
    kit.check_gradient_step(layer_cls(**kwargs), kit.make_inputs())


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
