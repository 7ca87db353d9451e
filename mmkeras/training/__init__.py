"""Training runtime: strategies, global batch, the default optimizer, precision, LoRA, rematerialisation."""

from mmkeras.training.default_optimizer import default_optimizer
from mmkeras.training.fused_adamw import FusedAdamW
from mmkeras.training.full_batches import pad_to_full_batches, predict_full_batches
from mmkeras.training.lora import enable_lora, has_lora, merge_lora, trainable_parameter_count
from mmkeras.training.precision import resolve_precision
from mmkeras.training.remat import apply_remat, is_rematerialized
from mmkeras.training.strategy import STRATEGIES, get_strategy, is_chief, per_replica_batch_size

__all__ = [
    "STRATEGIES", "FusedAdamW", "apply_remat", "default_optimizer", "enable_lora", "get_strategy", "has_lora",
    "is_chief", "is_rematerialized", "merge_lora", "pad_to_full_batches", "per_replica_batch_size",
    "predict_full_batches", "resolve_precision", "trainable_parameter_count",
]
