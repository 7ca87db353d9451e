"""Datasets: the built-in Shapes scenes (and, later, file loaders)."""

from mmkeras.data.shapes import Shapes

__all__ = ["Shapes"]
