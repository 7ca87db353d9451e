"""`write_shards`: a stream of records -> TFRecord shards and `dataset_info.json`."""

from mmkeras.data.shard_writer import ShardWriter


def write_shards(records, output_dir, num_shards=8, split="train", source=None, report=None):
    """Writes records into `num_shards` TFRecord shards of one split.

    Args:
        records: an iterable of records `{"id", "image", "texts", "label"}`,
            typically a loader (`CocoCaptions`, `Manifest`, ...), whose
            `report` and `describe()` are then recorded too.
        output_dir: the shard folder (any `tf.io.gfile` path).
        num_shards: number of files.
        split: split name (`train-00000-of-00008.tfrecord`).
        source: description of the source (default: `records.describe()`).
        report: a `SkipReport` (default: `records.report` after the pass).

    Returns:
        The split's info dict (as in `dataset_info.json`).

    Example:

    >>> import tempfile
    >>> from mmkeras.data import ShapesSource
    >>> info = write_shards(ShapesSource("val", image_size=32, num_examples=5), tempfile.mkdtemp(), 2, "val")
    >>> info["num_records"], info["files"]
    (5, ['val-00000-of-00002.tfrecord', 'val-00001-of-00002.tfrecord'])
    """
    if source is None and hasattr(records, "describe"):
        source = records.describe()
    writer = ShardWriter(output_dir, num_shards, split, source)
    with writer:
        for record in records:
            writer.write(record)
        if report is None:
            report = getattr(records, "report", None)
        return writer.close(report)
