import numpy as np
import pytest

from mmkeras.layers.fusions import EarlyFusion

ARGS = {"hidden_dim": 8, "num_layers": 1, "num_heads": 2, "mlp_dim": 16}


def test_modality_type_embedding_tells_modalities_apart(kit):
    inputs = {
        "a": {"pooled": np.ones((1, 4), "float32")},
        "b": {"pooled": np.ones((1, 4), "float32")},
    }
    layer = EarlyFusion(**ARGS, modalities=["a", "b"])
    layer(inputs)
    assert layer.type_embedding.embedding.shape == (2, 8)
    assert [p.name for p in layer.projections] == ["a_projection", "b_projection"]


def test_mean_pooling_is_the_normed_mean_of_the_unmasked_final_tokens(kit):
    inputs = kit.make_inputs()
    layer = EarlyFusion(**ARGS, pooling="mean")
    out = np.asarray(layer(inputs))
    # the same layer's blocks, read by hand: [CLS] + image tokens + text tokens, padding left out
    views = layer.modality_views(inputs, None)
    batch = out.shape[0]
    tokens = [np.broadcast_to(np.asarray(layer.cls_token), (batch, 1, 8))]
    masks = [np.ones((batch, 1), bool)]
    for index, (view, projection) in enumerate(zip(views, layer.projections)):
        tokens.append(np.asarray(layer.type_embedding(projection(view["tokens"]), modality_index=index)))
        masks.append(np.asarray(view["token_mask"]))
    x, mask = np.concatenate(tokens, 1), np.concatenate(masks, 1)
    for block in layer.blocks:
        x = np.asarray(block(x, padding_mask=mask))
    mean = (x * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
    np.testing.assert_allclose(out, np.asarray(layer.final_norm(mean)), atol=1e-5)
    assert not mask.all()  # the text's padding was left out
    cls_layer = EarlyFusion(**ARGS)
    cls_layer(inputs)
    cls_layer.set_weights(layer.get_weights())
    assert not np.allclose(np.asarray(cls_layer(inputs)), out)


def test_bad_arguments():
    with pytest.raises(ValueError, match="`pooling` must be 'cls' or 'mean'"):
        EarlyFusion(hidden_dim=8, num_heads=2, pooling="max")
    with pytest.raises(ValueError, match="must divide `hidden_dim`"):
        EarlyFusion(hidden_dim=6, num_heads=4)
    with pytest.raises(ValueError, match="`num_layers`"):
        EarlyFusion(hidden_dim=8, num_layers=0)
