"""Datasets: the built-in Shapes scenes, real-data loaders, TFRecord shards and training-pair helpers.

The names load on first use, so that `mmkeras.data.open_source`'s lists of data kinds (which the
config checks) come without TensorFlow.
"""

import importlib

from mmkeras.data.open_source import open_source

# Exported name -> the module of this package that defines it.
_MODULES = {
    "CocoCaptions": "coco_captions",
    "ConvertedData": "converted_data",
    "FlickrCaptions": "flickr_captions",
    "ImageFolder": "image_folder",
    "Manifest": "manifest",
    "RecordCleaner": "record_cleaner",
    "RecordSource": "record_source",
    "Shapes": "shapes",
    "ShapesData": "shapes_data",
    "ShapesSource": "shapes_source",
    "ShardReader": "shard_reader",
    "ShardWriter": "shard_writer",
    "SkipReport": "skip_report",
    "TaskData": "task_data",
    "TfdsSource": "tfds_source",
    "bag_of_attributes_scores": "shapes_references",
    "bayes_oracle_scores": "shapes_references",
    "caption_likelihoods": "shapes_references",
    "caption_pairs": "caption_pairs",
    "model_inputs": "model_inputs",
    "open_task_data": "open_task_data",
    "read_shards": "read_shards",
    "write_shards": "write_shards",
}

__all__ = sorted([*_MODULES, "open_source"])


def __getattr__(name):
    """Imports an exported name's module on first use."""
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_MODULES[name]}"), name)
    globals()[name] = value  # replaces the module of the same name the import bound here
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
