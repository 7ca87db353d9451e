import numpy as np
import pytest

from mmkeras.layers.fusions import EarlyFusion

ARGS = {"hidden_dim": 8, "num_layers": 1, "num_heads": 2, "mlp_dim": 16}


def test_text_padding_is_masked(kit):
    inputs = kit.make_inputs()
    layer = EarlyFusion(**ARGS)
    out = layer(inputs).numpy()
    changed = kit.make_inputs()
    changed["text"]["sequence"][0, 2] = 50.0  # row 0, position 2 is padding
    np.testing.assert_allclose(layer(changed).numpy(), out, atol=1e-6)
    changed["text"]["sequence"][0, 1] = 50.0  # a real token
    assert not np.allclose(layer(changed).numpy()[0], out[0], atol=1e-4)


def test_modality_type_embedding_tells_modalities_apart(kit):
    inputs = {
        "a": {"pooled": np.ones((1, 4), "float32")},
        "b": {"pooled": np.ones((1, 4), "float32")},
    }
    layer = EarlyFusion(**ARGS, modalities=["a", "b"])
    layer(inputs)
    assert layer.type_embedding.embedding.shape == (2, 8)
    assert [p.name for p in layer.projections] == ["a_projection", "b_projection"]


def test_nothing_present_is_finite(kit):
    inputs = kit.make_inputs()
    presence = {"image": np.zeros(2, "float32"), "text": np.zeros(2, "float32")}
    out = EarlyFusion(**ARGS)(inputs, presence=presence).numpy()
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out[0], out[1], atol=1e-6)  # only the [CLS] token is left


def test_bad_arguments():
    with pytest.raises(ValueError, match="must divide `hidden_dim`"):
        EarlyFusion(hidden_dim=6, num_heads=4)
    with pytest.raises(ValueError, match="`num_layers`"):
        EarlyFusion(hidden_dim=8, num_layers=0)
