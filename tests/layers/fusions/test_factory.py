import pytest

from mmkeras.layers import fusions
from mmkeras.layers.fusions import get_fusion

KWARGS = {
    "early": {"hidden_dim": 8, "num_heads": 2},
    "concat": {"output_dim": 8},
    "sum": {"output_dim": 8},
    "late": {"num_classes": 3},
    "gated": {"output_dim": 8},
    "bilinear": {"output_dim": 8},
    "cross_attention": {"hidden_dim": 8, "num_heads": 2},
    "hybrid": {"hidden_dim": 8, "num_heads": 2},
}


@pytest.mark.parametrize("name", sorted(KWARGS))
def test_every_name_builds_a_working_fusion(kit, name):
    layer = get_fusion(name, **KWARGS[name])
    assert isinstance(layer, fusions.Fusion)
    inputs = kit.make_inputs()
    out = layer(inputs, presence=kit.presence_of(inputs, absent="text"))
    assert out.shape == (2, layer.output_dim)


def test_names_cover_the_exports():
    assert set(fusions.FUSIONS) == set(KWARGS)
    assert {cls.__name__ for cls in fusions.FUSIONS.values()} <= set(fusions.__all__)


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="valid names: .*'cross_attention'.*'hybrid'"):
        get_fusion("mutan", output_dim=8)
