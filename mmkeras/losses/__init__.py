"""Losses: CLIP / SigLIP contrastive losses, their learnable logit scale and cross-replica gathering."""

from mmkeras.losses.clip_loss import ClipLoss
from mmkeras.losses.contrastive_loss import ContrastiveLoss
from mmkeras.losses.cross_replica import all_gather_with_grad
from mmkeras.losses.cross_replica import gather_global_batch
from mmkeras.losses.cross_replica import replica_info
from mmkeras.losses.logit_scale import LogitScale
from mmkeras.losses.masked_sequence_loss import MaskedSequenceLoss
from mmkeras.losses.siglip_loss import SigLipLoss

__all__ = [
    "ClipLoss",
    "ContrastiveLoss",
    "LogitScale",
    "MaskedSequenceLoss",
    "SigLipLoss",
    "all_gather_with_grad",
    "gather_global_batch",
    "replica_info",
]
