"""Fusion modules: combine the outputs of several modality towers.

Every fusion layer is called as `fusion(inputs, presence=None, training=None)`:

- `inputs`: a dict `{modality_name: entry}`. An entry is a dict with
  `"sequence"` `[B, T, D_m]` and/or `"pooled"` `[B, D_m]`, and optionally
  `"padding_mask"` bool `[B, T]` (`False` = padding), exactly what the mmkeras
  towers return; e.g.
  `{"image": image_tower(images), "text": text_tower(token_ids),
  "numeric": {"pooled": features}}`. A bare `[B, D]` tensor is taken as
  `{"pooled": ...}`, a bare `[B, T, D]` one as `{"sequence": ...}`. Token-based
  fusions treat a pooled-only modality as a one-token sequence; vector-based
  ones mean-pool a sequence-only modality over its unpadded tokens. Widths may
  differ between modalities.
- `presence`: optional dict `{modality_name: [B]}` of float or bool masks
  (1 / True = present); a modality not in it is present in every example.
  Absent features may be anything (zeros, garbage, even NaN): they are replaced
  by zeros and masked, so they never influence the output, and an example
  with some (or all) modalities absent still gets a finite output.
- Modality order and weight ownership follow the constructor's `modalities`
  list when given (every call must then feed exactly those names), otherwise
  the sorted input keys. Every modality is always fed (a static graph); an
  absent one is signalled through `presence` only.

Output: fused features `[B, output_dim]` (each layer exposes `output_dim`), for
the builder's heads to consume. `LateFusion` is the exception: it owns one
classifier head per modality and returns combined logits `[B, num_classes]`
(instantiate one per task for multi-task models).

Nested dict inputs work in Keras 3 functional models, `.keras` files and XLA,
so a builder writes `fusion({"image": image_out, "text": text_out},
presence={"image": image_present, "text": text_present})` with symbolic tensors.

| name | class | modalities |
| --- | --- | --- |
| "early" | `EarlyFusion`: joint Transformer over all tokens + [CLS] | >= 1 |
| "concat" | `ConcatFusion`: concatenated pooled features + MLP | >= 1 |
| "sum" | `SumFusion`: `act(sum_m W_m x_m + b)` | >= 1 |
| "late" | `LateFusion`: per-modality heads, mean / learned / product | >= 1 |
| "gated" | `GatedFusion`: gated multimodal unit | >= 2 |
| "bilinear" | `BilinearFusion`: low-rank bilinear (MFB / MLB) pooling | >= 2 |
| "cross_attention" | `CrossAttentionFusion`: query stream attends to context | exactly 2 |
| "hybrid" | `HybridFusion`: per-depth bottleneck fusion, all depths combined | >= 1 |

`ModalityDropout` drops whole modalities per example during training by
editing the presence masks; `get_fusion(name, **kwargs)` builds a fusion by
name.
"""

from mmkeras.layers.fusions.bilinear_fusion import BilinearFusion
from mmkeras.layers.fusions.concat_fusion import ConcatFusion
from mmkeras.layers.fusions.cross_attention_fusion import CrossAttentionFusion
from mmkeras.layers.fusions.early_fusion import EarlyFusion
from mmkeras.layers.fusions.factory import FUSIONS, get_fusion
from mmkeras.layers.fusions.fusion import Fusion
from mmkeras.layers.fusions.gated_fusion import GatedFusion
from mmkeras.layers.fusions.hybrid_fusion import HybridFusion
from mmkeras.layers.fusions.late_fusion import LateFusion
from mmkeras.layers.fusions.modality_dropout import ModalityDropout
from mmkeras.layers.fusions.sum_fusion import SumFusion

__all__ = [
    "BilinearFusion",
    "ConcatFusion",
    "CrossAttentionFusion",
    "EarlyFusion",
    "FUSIONS",
    "Fusion",
    "GatedFusion",
    "HybridFusion",
    "LateFusion",
    "ModalityDropout",
    "SumFusion",
    "get_fusion",
]
