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


def test_bad_arguments():
    with pytest.raises(ValueError, match="must divide `hidden_dim`"):
        EarlyFusion(hidden_dim=6, num_heads=4)
    with pytest.raises(ValueError, match="`num_layers`"):
        EarlyFusion(hidden_dim=8, num_layers=0)
