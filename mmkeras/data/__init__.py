"""Datasets: the built-in Shapes scenes and training-pair helpers."""

from mmkeras.data.caption_pairs import caption_pairs
from mmkeras.data.shapes import Shapes

__all__ = ["Shapes", "caption_pairs"]
