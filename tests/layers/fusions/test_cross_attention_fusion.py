import numpy as np
import pytest

from mmkeras.layers.fusions import CrossAttentionFusion

ARGS = {"hidden_dim": 8, "num_heads": 2, "mlp_dim": 16}


def test_image_absent_falls_back_to_text_self_representation(kit):
    inputs = kit.make_inputs()
    layer = CrossAttentionFusion(**ARGS)
    presence = kit.presence_of(inputs, absent="image", rows=(0, 1))
    out = layer(inputs, presence=presence).numpy()
    # Without the cross-attention update the text stream is just its self-attention block.
    q = layer.projections[0](inputs["text"]["sequence"])
    q = layer.query_layers[3](q, padding_mask=inputs["text"]["padding_mask"])
    q = layer.final_norms[0](q).numpy()
    mask = inputs["text"]["padding_mask"][..., None]
    pooled = (q * mask).sum(1) / mask.sum(1)
    features = np.concatenate([pooled, np.zeros((2, 8)), np.ones((2, 1)), np.zeros((2, 1))], -1)
    expected = layer.output_projection(features.astype("float32")).numpy()
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_image_padding_is_respected(kit):
    inputs = kit.make_inputs()
    layer = CrossAttentionFusion(**ARGS, co_attention=True)
    image_mask = {
        "sequence": inputs["image"]["sequence"],
        "padding_mask": np.array([[1, 1, 0, 0]] * 2, bool),
    }
    masked = layer({"text": inputs["text"], "image": image_mask}).numpy()
    shifted = dict(image_mask, sequence=inputs["image"]["sequence"].copy())
    shifted["sequence"][:, 2:] = -30.0
    np.testing.assert_allclose(
        layer({"text": inputs["text"], "image": shifted}).numpy(), masked, atol=1e-6
    )


def test_custom_modality_names(kit):
    inputs = kit.make_inputs()
    layer = CrossAttentionFusion(**ARGS, query_modality="image", context_modality="text")
    assert layer(inputs).shape == (2, 8)
    assert layer.projections[0].name == "image_projection"


def test_three_modalities_raise(kit):
    with pytest.raises(ValueError, match="exactly two modalities"):
        CrossAttentionFusion(**ARGS)(kit.make_inputs(numeric=True))
    with pytest.raises(ValueError, match="exactly two modalities"):
        CrossAttentionFusion(**ARGS, modalities=["image", "text", "numeric"])


def test_bad_arguments():
    with pytest.raises(ValueError, match="must differ"):
        CrossAttentionFusion(hidden_dim=8, query_modality="text", context_modality="text")
    with pytest.raises(ValueError, match="must divide `hidden_dim`"):
        CrossAttentionFusion(hidden_dim=6, num_heads=4)
