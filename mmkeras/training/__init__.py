"""Training runtime: strategies, global batch, the default optimizer."""

from mmkeras.training.default_optimizer import default_optimizer
from mmkeras.training.fused_adamw import FusedAdamW
from mmkeras.training.full_batches import pad_to_full_batches, predict_full_batches
from mmkeras.training.strategy import STRATEGIES, get_strategy, is_chief, per_replica_batch_size

__all__ = [
    "STRATEGIES", "FusedAdamW", "default_optimizer", "get_strategy", "is_chief", "pad_to_full_batches", "per_replica_batch_size",
    "predict_full_batches",
]
