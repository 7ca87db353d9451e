"""Pretrained checkpoints as mmkeras models: safetensors reading and the Hugging Face CLIP importer."""

from mmkeras.pretrained.hf_clip import load_hf_clip
from mmkeras.pretrained.safetensors_checkpoint import SafetensorsCheckpoint

__all__ = ["SafetensorsCheckpoint", "load_hf_clip"]
