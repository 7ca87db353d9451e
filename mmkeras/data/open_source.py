"""`open_source`: a loader from a `KIND:ARGUMENT` spec (the `mmkeras data convert --source` syntax)."""

# The one list of data kinds. Sources are read record by record; "tfrecord" is a shard folder
# written by `mmkeras data convert`, read as it is.
SOURCE_KINDS = ("shapes", "coco", "flickr", "csv", "jsonl", "folder", "tfds")
DATASET_KINDS = SOURCE_KINDS + ("tfrecord",)
RECORD_KINDS = DATASET_KINDS[1:]  # everything but the built-in Shapes data
FILE_KINDS = ("coco", "flickr", "csv", "jsonl", "folder", "tfrecord")  # `data.path` is a file or folder
UNLABELLED_KINDS = ("coco", "flickr")  # captions only: no class label for a fusion head


def open_source(spec, images=None, split_json=None, split=None, data_dir=None, **kwargs):
    """Opens the loader a source spec names.

    Specs: `shapes[:SPLIT]`, `coco:JSON`, `flickr:TOKEN_FILE` (with
    `split_json` for a Karpathy split), `csv:FILE`, `jsonl:FILE`, `folder:DIR`,
    `tfds:NAME`.

    Args:
        spec: the spec string.
        images: images folder (coco, flickr, csv, jsonl; default: the
            annotation file's folder).
        split_json: Karpathy split JSON (flickr).
        split: split to read (flickr: with `split_json`; tfds; shapes when
            the spec has none).
        data_dir: TFDS data folder (tfds).
        **kwargs: loader arguments (`max_records`, `validate_images`, and for
            shapes `image_size`, `num_examples`, ...).

    Returns:
        A `RecordSource`.

    Example:

    >>> open_source("shapes:val", image_size=32, num_examples=2).describe()[:11]
    'shapes:val '
    >>> open_source("webdataset:x")
    Traceback (most recent call last):
    ...
    ValueError: `source` must start with one of ('shapes', 'coco', 'flickr', 'csv', 'jsonl', 'folder', 'tfds') followed by ':' and a path or name, got 'webdataset:x'.
    """
    from mmkeras.data.coco_captions import CocoCaptions
    from mmkeras.data.flickr_captions import FlickrCaptions
    from mmkeras.data.image_folder import ImageFolder
    from mmkeras.data.manifest import Manifest
    from mmkeras.data.shapes_source import ShapesSource
    from mmkeras.data.tfds_source import TfdsSource

    kind, _, argument = str(spec).partition(":")
    if kind not in SOURCE_KINDS or (kind != "shapes" and not argument):
        raise ValueError(
            f"`source` must start with one of {SOURCE_KINDS} followed by ':' and a path or name, "
            f"got {spec!r}."
        )
    if kind == "shapes":
        return ShapesSource(argument or split or "train", **kwargs)
    if kind == "coco":
        return CocoCaptions(argument, images, **kwargs)
    if kind == "flickr":
        return FlickrCaptions(argument, images, split_json=split_json, split=split or "train", **kwargs)
    if kind in ("csv", "jsonl"):
        return Manifest(argument, format=kind, images_dir=images, **kwargs)
    if kind == "folder":
        return ImageFolder(argument, **kwargs)
    return TfdsSource(argument, split=split or "train", data_dir=data_dir, **kwargs)
