import numpy as np
import pytest

from mmkeras.layers.fusions import CrossAttentionFusion
from mmkeras.layers.fusions.cross_attention_fusion import _CrossAttention

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


def test_null_attention_adds_a_learned_key_and_value_every_query_may_attend_to():
    rng = np.random.default_rng(0)
    x, context = rng.normal(size=(2, 3, 8)).astype("float32"), rng.normal(size=(2, 4, 8)).astype("float32")
    mask = np.array([[1, 1, 1, 0], [1, 1, 1, 1]], bool)
    layer = _CrossAttention(2, null_attention=True)
    layer.build(x.shape, context.shape)
    null = rng.normal(size=(1, 1, 2, 2, 4)).astype("float32")
    layer.null_key_value.assign(null)
    out = layer(x, context, mask).numpy()

    def heads(t):  # [B, T, 8] -> [B, 2, T, 4]
        return t.reshape(t.shape[0], t.shape[1], 2, 4).transpose(0, 2, 1, 3)

    query = heads(layer.query(x).numpy())
    key_value = layer.key_value(context).numpy().reshape(2, 4, 2, 2, 4)
    keys = np.concatenate([np.broadcast_to(null[:, :, 0], (2, 1, 2, 4)), key_value[:, :, 0]], 1).transpose(0, 2, 1, 3)
    values = np.concatenate([np.broadcast_to(null[:, :, 1], (2, 1, 2, 4)), key_value[:, :, 1]], 1).transpose(0, 2, 1, 3)
    scores = query @ keys.transpose(0, 1, 3, 2) / 2.0  # sqrt of the head width 4
    scores = np.where(np.concatenate([np.ones((2, 1), bool), mask], 1)[:, None, None], scores, -np.inf)
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    attended = (weights @ values).transpose(0, 2, 1, 3).reshape(2, 3, 8)
    np.testing.assert_allclose(out, layer.output_dense(attended).numpy(), atol=1e-5)
    # Zeros at first: the null key scores 0 and brings a zero value.
    fresh = CrossAttentionFusion(hidden_dim=8, num_heads=2, null_attention=True)
    fresh({"image": {"sequence": context[:, :, :6]}, "text": {"sequence": x[:, :, :5]}})
    assert not np.any(fresh.query_layers[2].null_key_value.numpy())
    plain = CrossAttentionFusion(hidden_dim=8, num_heads=2)
    plain({"image": {"sequence": context[:, :, :6]}, "text": {"sequence": x[:, :, :5]}})
    assert plain.weights and not any("null" in w.path for w in plain.weights)


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
