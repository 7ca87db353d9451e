"""Pretrained checkpoints as mmkeras models and towers: safetensors reading, the Hugging Face CLIP, SigLIP, ViT and BERT
importers, open_clip and keras-hub presets."""

from mmkeras.pretrained.hf_bert import load_hf_bert
from mmkeras.pretrained.hf_clip import load_hf_clip
from mmkeras.pretrained.hf_siglip import load_hf_siglip
from mmkeras.pretrained.hf_vit import load_hf_vit
from mmkeras.pretrained.keras_hub_loader import KerasHubLoader
from mmkeras.pretrained.keras_hub_preset import load_keras_hub_preset
from mmkeras.pretrained.open_clip import load_open_clip
from mmkeras.pretrained.safetensors_checkpoint import SafetensorsCheckpoint

__all__ = [
    "KerasHubLoader",
    "SafetensorsCheckpoint",
    "load_hf_bert",
    "load_hf_clip",
    "load_hf_siglip",
    "load_hf_vit",
    "load_keras_hub_preset",
    "load_open_clip",
]
