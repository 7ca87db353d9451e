"""Pretrained checkpoints as mmkeras models: safetensors reading and the Hugging Face CLIP and open_clip importers."""

from mmkeras.pretrained.hf_clip import load_hf_clip
from mmkeras.pretrained.open_clip import load_open_clip
from mmkeras.pretrained.safetensors_checkpoint import SafetensorsCheckpoint

__all__ = ["SafetensorsCheckpoint", "load_hf_clip", "load_open_clip"]
