"""The three model families' builders, plus config-driven construction."""

from mmkeras.models.build_from_config import build_from_config, builder_for_task
from mmkeras.models.dual_encoder import DualEncoder, dual_encoder

__all__ = ["DualEncoder", "build_from_config", "builder_for_task", "dual_encoder"]
