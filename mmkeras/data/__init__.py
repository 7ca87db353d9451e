"""Datasets: the built-in Shapes scenes, real-data loaders, TFRecord shards and training-pair helpers."""

from mmkeras.data.caption_pairs import caption_pairs
from mmkeras.data.coco_captions import CocoCaptions
from mmkeras.data.flickr_captions import FlickrCaptions
from mmkeras.data.image_folder import ImageFolder
from mmkeras.data.manifest import Manifest
from mmkeras.data.open_source import open_source
from mmkeras.data.read_shards import read_shards
from mmkeras.data.record_cleaner import RecordCleaner
from mmkeras.data.record_source import RecordSource
from mmkeras.data.shapes import Shapes
from mmkeras.data.shapes_source import ShapesSource
from mmkeras.data.shard_reader import ShardReader
from mmkeras.data.shard_writer import ShardWriter
from mmkeras.data.skip_report import SkipReport
from mmkeras.data.tfds_source import TfdsSource
from mmkeras.data.write_shards import write_shards

__all__ = [
    "CocoCaptions",
    "FlickrCaptions",
    "ImageFolder",
    "Manifest",
    "RecordCleaner",
    "RecordSource",
    "Shapes",
    "ShapesSource",
    "ShardReader",
    "ShardWriter",
    "SkipReport",
    "TfdsSource",
    "caption_pairs",
    "open_source",
    "read_shards",
    "write_shards",
]
