"""Pretrained checkpoints as mmkeras models: safetensors reading, the Hugging Face CLIP and SigLIP importers, open_clip."""

from mmkeras.pretrained.hf_clip import load_hf_clip
from mmkeras.pretrained.hf_siglip import load_hf_siglip
from mmkeras.pretrained.open_clip import load_open_clip
from mmkeras.pretrained.safetensors_checkpoint import SafetensorsCheckpoint

__all__ = ["SafetensorsCheckpoint", "load_hf_clip", "load_hf_siglip", "load_open_clip"]
