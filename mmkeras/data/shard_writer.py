"""Writes records as `tf.train.Example` TFRecord shards plus a `dataset_info.json`."""

import json
import time

import tensorflow as tf

from mmkeras.data import _gfile
from mmkeras.data.skip_report import SkipReport
from mmkeras.validation import check_int

INFO_FILE = "dataset_info.json"
FEATURES = {
    "id": "bytes: the record id",
    "image": "bytes: the encoded image file",
    "texts": "bytes list: the captions (UTF-8)",
    "label": "int64: the integer label, -1 when none (or when the label is a name)",
    "label_name": "bytes: the label when it is a name, empty otherwise",
}


def _shard_name(split, index, num_shards):
    """`<split>-<index:05d>-of-<num_shards:05d>.tfrecord`."""
    return f"{split}-{index:05d}-of-{num_shards:05d}.tfrecord"


def _read_info(directory):
    """The `dataset_info.json` of a shard folder, or `{}` when there is none."""
    path = _gfile.join(directory, INFO_FILE)
    if not tf.io.gfile.exists(path):
        return {}
    return json.loads(_gfile.read_bytes(path).decode("utf-8"))


def _bytes(values):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))


def _serialize_record(record):
    """A record dict -> serialized `tf.train.Example` bytes."""
    for key in ("id", "image", "texts"):
        if key not in record:
            raise ValueError(f"record is missing the field {key!r}; fields: {sorted(record)}.")
    if not isinstance(record["image"], bytes):
        raise ValueError(f"record {record['id']!r}: `image` must be bytes.")
    texts = record["texts"]
    if isinstance(texts, (str, bytes)) or not all(isinstance(t, str) for t in texts):
        raise ValueError(f"record {record['id']!r}: `texts` must be a list of str, got {texts!r}.")
    label = record.get("label")
    if label is not None and (isinstance(label, bool) or not isinstance(label, (int, str))):
        raise ValueError(f"record {record['id']!r}: `label` must be an int, a str or None.")
    features = {
        "id": _bytes([str(record["id"]).encode("utf-8")]),
        "image": _bytes([record["image"]]),
        "texts": _bytes([t.encode("utf-8") for t in texts]),
        "label": tf.train.Feature(
            int64_list=tf.train.Int64List(value=[label if isinstance(label, int) else -1])
        ),
        "label_name": _bytes([label.encode("utf-8") if isinstance(label, str) else b""]),
    }
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


class ShardWriter:
    """Writes records round-robin into `num_shards` TFRecord files of one split.

    Files are `<split>-00000-of-00008.tfrecord` ... in `output_dir` (any
    `tf.io.gfile` path; written under temporary names and renamed on `close`,
    so readers never see half-written shards). Each record is a
    `tf.train.Example` with `id`, `image` (the encoded file), `texts` (bytes
    list), `label` (int64, -1 when none) and `label_name` (for string labels).
    `close` writes or updates `dataset_info.json`: per split the record,
    caption and per-shard counts, the file names, the source, the skip report
    and the sorted `class_names` of string labels.

    Args:
        output_dir: folder for the shards (created if missing).
        num_shards: number of shard files, >= 1.
        split: split name used in the file names.
        source: description of where the records came from.

    Example:

    >>> import tempfile, tensorflow as tf
    >>> png = tf.io.encode_png(tf.zeros([2, 2, 3], tf.uint8)).numpy()
    >>> out = tempfile.mkdtemp()
    >>> with ShardWriter(out, num_shards=2, split="val") as writer:
    ...     for i in range(3):
    ...         writer.write({"id": str(i), "image": png, "texts": ["a caption"], "label": i})
    >>> writer.info["shard_counts"], sorted(tf.io.gfile.listdir(out))[0]
    ([2, 1], 'dataset_info.json')
    """

    def __init__(self, output_dir, num_shards=8, split="train", source=None):
        num_shards = check_int("num_shards", num_shards, minimum=1)
        if not split or not isinstance(split, str) or "/" in split or "-" in split:
            raise ValueError(f"`split` must be a non-empty name without '/' or '-', got {split!r}.")
        if not output_dir:
            raise ValueError("`output_dir` must be a folder path.")
        self.output_dir = str(output_dir).rstrip("/")
        self.num_shards = num_shards
        self.split = split
        self.source = source
        self.files = [_shard_name(split, i, num_shards) for i in range(num_shards)]
        self.counts = [0] * num_shards
        self.num_texts = 0
        self.label_names = set()
        self.info = None
        tf.io.gfile.makedirs(self.output_dir)
        self._tmp = [_gfile.join(self.output_dir, f".tmp-{name}") for name in self.files]
        self._writers = [tf.io.TFRecordWriter(path) for path in self._tmp]
        self._next = 0

    def write(self, record):
        """Writes one record to the next shard."""
        if self._writers is None:
            raise ValueError("the writer is closed.")
        data = _serialize_record(record)
        self._writers[self._next].write(data)
        self.counts[self._next] += 1
        self.num_texts += len(record["texts"])
        if isinstance(record.get("label"), str):
            self.label_names.add(record["label"])
        self._next = (self._next + 1) % self.num_shards

    def close(self, report=None):
        """Finishes the shards and writes `dataset_info.json`; returns this split's info dict.

        Args:
            report: the loader's `SkipReport` (or its `as_dict()`), recorded in the info.
        """
        if self._writers is None:
            return self.info
        for writer in self._writers:
            writer.close()
        self._writers = None
        for tmp, name in zip(self._tmp, self.files):
            tf.io.gfile.rename(tmp, _gfile.join(self.output_dir, name), overwrite=True)
        if isinstance(report, SkipReport):
            report = report.as_dict()
        self.info = {
            "num_records": sum(self.counts),
            "num_texts": self.num_texts,
            "num_shards": self.num_shards,
            "shard_counts": list(self.counts),
            "files": list(self.files),
            "source": self.source,
            "skip_report": report,
            "class_names": sorted(self.label_names),
            "written": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        info = _read_info(self.output_dir)
        info.setdefault("format", "mmkeras tf.train.Example shards, version 1")
        info["features"] = FEATURES
        info.setdefault("splits", {})[self.split] = self.info
        _gfile.write_bytes(
            _gfile.join(self.output_dir, INFO_FILE), json.dumps(info, indent=2).encode("utf-8")
        )
        return self.info

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        elif self._writers is not None:
            for writer in self._writers:
                writer.close()
            self._writers = None
            for tmp in self._tmp:
                if tf.io.gfile.exists(tmp):
                    tf.io.gfile.remove(tmp)
        return False
