"""The three model families' builders, plus config-driven construction."""

from mmkeras.models.build_from_config import build_from_config, builder_for_task
from mmkeras.models.captioner import Captioner, captioner
from mmkeras.models.dual_encoder import DualEncoder, dual_encoder
from mmkeras.models.fusion_classifier import FusionClassifier, fusion_classifier

__all__ = [
    "Captioner",
    "DualEncoder",
    "FusionClassifier",
    "build_from_config",
    "builder_for_task",
    "captioner",
    "dual_encoder",
    "fusion_classifier",
]
