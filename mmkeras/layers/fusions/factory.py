"""`get_fusion`: builds a fusion layer from its short name."""

from mmkeras.layers.fusions.bilinear_fusion import BilinearFusion
from mmkeras.layers.fusions.concat_fusion import ConcatFusion
from mmkeras.layers.fusions.cross_attention_fusion import CrossAttentionFusion
from mmkeras.layers.fusions.early_fusion import EarlyFusion
from mmkeras.layers.fusions.gated_fusion import GatedFusion
from mmkeras.layers.fusions.hybrid_fusion import HybridFusion
from mmkeras.layers.fusions.late_fusion import LateFusion
from mmkeras.layers.fusions.sum_fusion import SumFusion

FUSIONS = {
    "early": EarlyFusion,
    "concat": ConcatFusion,
    "sum": SumFusion,
    "late": LateFusion,
    "gated": GatedFusion,
    "bilinear": BilinearFusion,
    "cross_attention": CrossAttentionFusion,
    "hybrid": HybridFusion,
}


def get_fusion(name, **kwargs):
    """Builds the fusion layer called `name` with the given constructor arguments.

    Args:
        name: one of "early", "concat", "sum", "late", "gated", "bilinear",
            "cross_attention", "hybrid".
        **kwargs: the constructor arguments of that class (e.g. `output_dim`,
            `hidden_dim`, `num_classes` for "late").

    Returns:
        A new, unbuilt fusion layer.

    Example:

    >>> get_fusion("concat", output_dim=8).__class__.__name__
    'ConcatFusion'
    """
    if not isinstance(name, str) or name not in FUSIONS:
        raise ValueError(f"Unknown fusion `name` {name!r}; valid names: {sorted(FUSIONS)}.")
    return FUSIONS[name](**kwargs)
