"""`ConvertedData`: a real-data source converted once into TFRecord shards inside the run directory."""

import hashlib
import json

import keras
import numpy as np
import tensorflow as tf

from mmkeras.data import _gfile
from mmkeras.data.open_source import FILE_KINDS, RECORD_KINDS, UNLABELLED_KINDS, open_source
from mmkeras.data.shard_reader import ShardReader
from mmkeras.data.shard_writer import ShardWriter, _read_info
from mmkeras.data.skip_report import SkipReport
from mmkeras.data.task_data import TaskData

DATA_FOLDER = "data"
SOURCE_FILE = "source.json"
SKIP_REPORT_FILE = "skip_report.json"
SPLITS_FOLDER = "splits"  # `train.txt` and `val.txt`: the record ids of each split
NUM_TRAIN_SHARDS, NUM_VAL_SHARDS = 4, 1
SHUFFLE_BUFFER = 2048
LABEL_HEAD = "label"  # the fusion head of labelled records
_TFDS_VAL_SPLITS = ("val", "validation")
_SOURCE_FIELDS = ("dataset", "path", "images", "val_fraction", "data_dir", "split_json")


def is_held_out(record_id, fraction):
    """Whether a record goes to the held-out split: a hash of its id, so the same on every run.

    Args:
        record_id: the record id (any value; its `str` is hashed).
        fraction: the held-out fraction in [0, 1].

    Returns:
        A bool; about `fraction` of all ids give True.

    Example:

    >>> ids = [f"img{i}.jpg" for i in range(1000)]
    >>> sum(is_held_out(i, 0.1) for i in ids)
    106
    >>> is_held_out("img7.jpg", 0.1) == is_held_out("img7.jpg", 0.1)
    True
    """
    digest = hashlib.sha1(str(record_id).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64 < float(fraction)


class ConvertedData(TaskData):
    """Real data (COCO, Flickr, CSV / JSONL, image folders, TFDS, shards) as a run's records.

    `data.dataset` is the kind (coco, flickr, csv, jsonl, folder, tfds or tfrecord) and `data.path`
    the annotation file, folder or TFDS name, with `data.images` (images folder), `data.split_json`
    (Flickr Karpathy split), `data.data_dir` (TFDS data folder) and `data.val_fraction`.

    On first use (`prepare`) the source is converted once into TFRecord shards in `RUN/data/` (a
    restarted or re-evaluated run reuses them): a "train" and a held-out "val" split. The held-out
    split is the source's own validation split when it has one (Flickr with a Karpathy split JSON,
    a TFDS dataset with a "val" or "validation" split), else a deterministic holdout of
    `data.val_fraction` of the records chosen by a hash of the record id (`is_held_out`). Bad
    records are skipped or repaired by the loaders and counted; fusion also skips records without
    a label ("missing label"). Nothing is dropped silently: the counts go to
    `RUN/skip_report.json`, to `metrics.json` and are printed (`finish`). "tfrecord" reads an
    existing shard folder with "train" and "val" splits instead. The record ids of each split are
    listed in `RUN/splits/train.txt` and `val.txt`.

    Batches are read with `ShardReader.dataset`: every epoch a fixed number of full batches
    (`drop_remainder`, static shapes) whose order depends only on `train.seed` and the epoch;
    one text of each record, drawn with the seed. Fusion trains one head, `"label"`, over the
    classes of the training labels (names sorted, or "0".."K-1" for integer labels); a record
    without text is kept with the text marked missing. Evaluation reads the held-out split.

    Args:
        config: a resolved run config whose `data.dataset` is not "shapes".
        family: "matching", "captioning" or "fusion".
        run_dir: the run's `RunDirectory` (the converted data and split lists go there).

    Example:

    ```python
    from mmkeras import zoo
    from mmkeras.data import ConvertedData
    from mmkeras.tasks.run_directory import RunDirectory

    config = zoo.config("shapes-clip-tiny", **{"data.dataset": "csv", "data.path": "pairs.csv"})
    data = ConvertedData(config, "matching", RunDirectory("runs/clip-csv"))
    data.prepare()     # converts pairs.csv into runs/clip-csv/data/
    print(data.summary())
    ```
    """

    def __init__(self, config, family, run_dir):
        super().__init__(config, family)
        data = config["data"]
        kind, path = data["dataset"], data["path"]
        if kind not in RECORD_KINDS:
            raise ValueError(
                f"`data.dataset`={kind!r} is not a real-data source; valid kinds: {RECORD_KINDS} "
                "(or 'shapes' for the built-in data)."
            )
        if not path or not isinstance(path, str):
            hint = "tfds:NAME" if kind == "tfds" else f"{kind}:PATH"
            raise ValueError(
                f"`data.path` is not set for `data.dataset`={kind!r}: pass `--data {hint}` "
                "(or `--set data.path=...`)."
            )
        fraction = data["val_fraction"]
        if not 0.0 < float(fraction) < 1.0:
            raise ValueError(f"`data.val_fraction` must be in (0, 1), got {fraction!r}.")
        if family == "fusion" and kind in UNLABELLED_KINDS:
            raise ValueError(
                f"`data.dataset`={kind!r} has no labels, and the fusion task trains a classifier: "
                "use a csv: or jsonl: manifest with a `label` column (or folder:, tfds: with a label)."
            )
        self.run_dir = run_dir
        self.source_config = {k: data[k] for k in _SOURCE_FIELDS}
        self.source_config["family"] = family
        self.data_path = path if kind == "tfrecord" else run_dir.file(DATA_FOLDER)
        self.show_progress = True
        self._prepared = False
        self._texts_and_labels = None
        self._bad_held_out = 0
        self._augment = None
        if not self.converted():
            self._check_paths()

    def describe(self):
        return f"`data.path` {self.config['data']['path']!r}"

    # --- conversion ----------------------------------------------------------------------------
    def _check_paths(self):
        data = self.config["data"]
        kind = data["dataset"]
        checks = [("data.images", data["images"]), ("data.split_json", data["split_json"])]
        if kind in FILE_KINDS:
            checks.insert(0, ("data.path", data["path"]))
        if kind == "tfds":
            checks.append(("data.data_dir", data["data_dir"]))
        for field, value in checks:
            if value and not tf.io.gfile.exists(value):
                raise ValueError(f"`{field}` {value!r} does not exist.")

    def stored_source(self):
        """The source the run's converted data came from (None: nothing converted, or a tfrecord input)."""
        marker = _gfile.join(self.data_path, SOURCE_FILE)
        if self.config["data"]["dataset"] == "tfrecord" or not tf.io.gfile.exists(marker):
            return None
        return json.loads(_gfile.read_bytes(marker).decode("utf-8")).get("source")

    def converted(self):
        """Whether `data_path` holds both splits, converted from this very source."""
        info = _read_info(self.data_path).get("splits", {})
        if self.config["data"]["dataset"] == "tfrecord":
            return "train" in info and "val" in info
        return self.stored_source() == self.source_config and "train" in info and "val" in info

    def remove_stale(self):
        """Removes converted data that came from another source (`--overwrite` with a new `--data`)."""
        stored = self.stored_source()
        if stored is not None and stored != self.source_config:
            tf.io.gfile.rmtree(self.data_path)

    def _open_sources(self):
        """`[(source, split or None)]`: None means "split by `is_held_out`"."""
        data = self.config["data"]
        kind = data["dataset"]
        spec = f"{kind}:{data['path']}"
        kwargs = {"images": data["images"], "data_dir": data["data_dir"], "max_pixels": data["max_pixels"]}
        if self.family == "fusion":
            kwargs["require_texts"] = False  # a missing text is a missing modality, not a bad record
        if kind == "flickr" and data["split_json"]:
            kwargs["split_json"] = data["split_json"]
            return [(open_source(spec, split=s, **kwargs), s) for s in ("train", "val")]
        if kind == "tfds":
            import tensorflow_datasets as tfds

            splits = tfds.builder(data["path"], data_dir=data["data_dir"]).info.splits
            val = next((s for s in _TFDS_VAL_SPLITS if s in splits), None)
            if val is not None:
                return [(open_source(spec, split="train", **kwargs), "train"),
                        (open_source(spec, split=val, **kwargs), "val")]
        return [(open_source(spec, **kwargs), None)]

    def _convert(self):
        fraction = self.config["data"]["val_fraction"]
        sources = self._open_sources()
        if tf.io.gfile.exists(self.data_path):
            tf.io.gfile.rmtree(self.data_path)  # a partial conversion: start again
        description = "; ".join(s.describe() for s, _ in sources)
        writers = {
            "train": ShardWriter(self.data_path, NUM_TRAIN_SHARDS, "train", description),
            "val": ShardWriter(self.data_path, NUM_VAL_SHARDS, "val", description),
        }
        extra, reports, label_kinds = SkipReport(), [], set()
        ids = {"train": [], "val": []}
        print(f"mmkeras: converting {description} into {self.data_path}", flush=True)
        progress = keras.utils.Progbar(None, verbose=1 if self.show_progress else 0, unit_name="record")
        seen = 0
        for source, split in sources:
            for record in source:
                seen += 1
                progress.update(seen)
                label = record.get("label")
                if self.family == "fusion":
                    if label is None:
                        extra.skip("missing label", record["id"])
                        continue
                    label_kinds.add(type(label))
                target = split or ("val" if is_held_out(record["id"], fraction) else "train")
                writers[target].write(record)
                ids[target].append(str(record["id"]))
            reports.append(source.report)
        if len(label_kinds) > 1:
            raise ValueError(
                f"`data.path` {self.config['data']['path']!r}: the `label` field mixes integers and "
                "names; use one or the other."
            )
        report = SkipReport()
        for part in reports + [extra]:
            report.merge(part)
        report.kept = sum(writers["train"].counts) + sum(writers["val"].counts)
        progress.update(seen, finalize=True)
        for split, writer in writers.items():
            writer.close(report)
            self._write_split_list(split, ids[split])
        _gfile.write_bytes(
            _gfile.join(self.data_path, SOURCE_FILE),
            json.dumps({"source": self.source_config}, indent=2).encode("utf-8"),
        )

    def prepare(self, show_progress=None):
        """Converts the source into `RUN/data/` unless already done; opens the shard readers.

        Returns:
            The `dataset_info.json` entries of the "train" and "val" splits.
        """
        if self._prepared:
            return self.split_info
        if show_progress is not None:
            self.show_progress = show_progress
        if not self.converted():
            stored = self.stored_source()
            if stored is not None and stored != self.source_config:
                raise ValueError(
                    f"The run directory {self.run_dir.path!r} holds data converted from {stored}, not from "
                    f"{self.source_config}: use another `--output`, or `--overwrite` to start afresh."
                )
            self._check_paths()
            if self.config["data"]["dataset"] == "tfrecord":
                raise ValueError(
                    f"`data.path` {self.data_path!r} must hold a 'train' and a 'val' split: write them with "
                    "`mmkeras data convert ... --output-split train` and `... --output-split val`."
                )
            self._convert()
        self.split_info = _read_info(self.data_path)["splits"]
        self.train_reader = ShardReader(self.data_path, "train")
        self.val_reader = ShardReader(self.data_path, "val")
        self._class_names = self._training_class_names()
        # Held-out labels must index the training classes (the val split has its own names).
        self.val_reader.class_names = list(self.train_reader.class_names)
        self._prepared = True
        return self.split_info

    @property
    def class_names(self):
        """Class names of the training labels: the names, or "0".."K-1" for integer labels."""
        self.prepare()
        return self._class_names

    @property
    def named_classes(self):
        """Whether the labels have names (which a text prompt can use: zero-shot)."""
        self.prepare()
        return bool(self.train_reader.class_names)

    def _training_class_names(self):
        if self.train_reader.class_names:
            return list(self.train_reader.class_names)
        labels = [int(label) for _, label in self.training_texts_and_labels() if label >= 0]
        return [str(i) for i in range(max(labels) + 1)] if labels else []

    def training_texts_and_labels(self):
        """`[(texts, label)]` of the training split (texts: list of str; label: int, -1 if none)."""
        if self._texts_and_labels is None:
            records = self.train_reader.records(deterministic=True).map(lambda r: (r["texts"], r["label"]))
            self._texts_and_labels = [
                ([t.decode("utf-8") for t in texts], int(label)) for texts, label in records.as_numpy_iterator()
            ]
        return self._texts_and_labels

    def num_records(self, split):
        return int(self.prepare()[split]["num_records"])

    def skip_report(self):
        """The `SkipReport` of the conversion (what was skipped or repaired, by reason)."""
        entry = self.prepare()["train"].get("skip_report")
        return SkipReport.from_dict(entry) if entry else SkipReport(
            kept=self.num_records("train") + self.num_records("val"))

    def summary(self):
        report = self.skip_report()
        return (f"data {self.split_info['train'].get('source')}: {report.summary()}; "
                f"{self.num_records('train')} train / {self.num_records('val')} held-out records "
                f"(lists: {self.split_list('train')}, {self.split_list('val')})")

    def data_report(self):
        """A JSON-ready summary of the data: counts per split, conversion and read-time skips."""
        report = self.skip_report()
        return {
            "source": self.prepare()["train"].get("source"),
            "num_train_records": self.num_records("train"),
            "num_held_out_records": self.num_records("val"),
            "conversion": report.as_dict(),
            "summary": report.summary(),
            "read_time": {
                "train_undecodable_images": self.train_reader.num_bad_images,
                "held_out_undecodable_images": self._bad_held_out,
            },
        }

    def metrics(self):
        return {
            "num_train_records": self.num_records("train"),
            "num_held_out_records": self.num_records("val"),
            "num_skipped_records": self.skip_report().num_skipped,
            "num_held_out_undecodable": self._bad_held_out,
        }

    def finish(self, run_dir):
        report = self.data_report()
        run_dir.write_json(SKIP_REPORT_FILE, report)
        print(f"mmkeras: undecodable at read time: {report['read_time']['train_undecodable_images']} train, "
              f"{report['read_time']['held_out_undecodable_images']} held-out images "
              f"(details: {run_dir.file(SKIP_REPORT_FILE)})")

    def split_list(self, split):
        """The file listing the record ids of `split` ("train" or "val"), one per line (`RUN/splits/`).

        Written when the data is converted (or, for a `tfrecord` input, read from its shards), so that
        a gallery indexed later can leave the training records out.
        """
        path = self.run_dir.file(_gfile.join(SPLITS_FOLDER, f"{split}.txt"))
        if not tf.io.gfile.exists(path):
            reader = self.train_reader if split == "train" else self.val_reader
            ids = reader.records(deterministic=True).map(lambda r: r["id"]).as_numpy_iterator()
            self._write_split_list(split, [i.decode("utf-8") for i in ids])
        return path

    def _write_split_list(self, split, ids):
        tf.io.gfile.makedirs(self.run_dir.file(SPLITS_FOLDER))
        self.run_dir.write_text(_gfile.join(SPLITS_FOLDER, f"{split}.txt"), "".join(f"{i}\n" for i in ids))

    def tokenizer_corpus(self):
        """Every text of the training split."""
        self.prepare()
        return [t for texts, _ in self.training_texts_and_labels() for t in texts]

    def validation_batch_size(self, batch_size, replicas):
        """`batch_size`, or, for a smaller held-out split, as many of its records as the replicas can
        share evenly (0: fewer than 2 a replica, too few for in-batch negatives)."""
        count = self.num_records("val")
        if count >= batch_size:
            return batch_size
        batch = count // replicas * replicas
        return batch if batch >= 2 * replicas else 0

    # --- batches -------------------------------------------------------------------------------
    def _augmenter(self):
        """`RandomResizedCrop` with `data.augment` (made eagerly, once: its seed state is a variable)."""
        from mmkeras.preprocessing.random_resized_crop import RandomResizedCrop

        data = self.config["data"]
        if data["augment"] and self._augment is None:
            with tf.init_scope():
                self._augment = RandomResizedCrop(data["image_size"], seed=self.config["train"]["seed"])
        return self._augment

    def steps(self, batch_size):
        self.check_batch(batch_size, f"training records ({self.skip_report().num_skipped} skipped)")
        return self.num_records("train") // batch_size

    caption_steps = steps

    def example_steps(self, batch_size, texts_per_image=1):
        return self.steps(batch_size)

    def record_batches(self, epoch, split, tokenizer, preprocessor, batch_size, require_text=True):
        """One epoch of `ShardReader.dataset` record batches of `split` ("train", or "val": the held-out
        records in their stored order, unaugmented); `epoch` a Python int (or an eager scalar)."""
        self.prepare()
        training = split == "train"
        seed = int(self.config["train"]["seed"]) * 1_000_003 + int(epoch)  # tf.data shuffles take Python seeds
        dataset = (self.train_reader if training else self.val_reader).dataset(
            tokenizer, preprocessor=preprocessor, batch_size=batch_size, drop_remainder=True,
            shuffle=training, shuffle_buffer=SHUFFLE_BUFFER, seed=seed, deterministic=True, prefetch=False,
            repeat=True,  # an image failing at read time never shortens the epoch
            # Converted shards hold fully decoded-and-checked images: the cheap check is enough.
            errors="catch" if self.config["data"]["dataset"] == "tfrecord" else "check",
            augment=self._augmenter() if training else None, require_text=require_text,
        )
        steps = self.steps(batch_size) if training else self.num_records("val") // batch_size
        return dataset.take(steps)

    def caption_batches(self, epoch, split, tokenizer, preprocessor, batch_size, captions_per_image=1):
        """One epoch of `{"images", "token_ids"}` batches: one text of each record, drawn with the seed."""
        if captions_per_image != 1:
            raise ValueError(f"`data.captions_per_image` must be 1 for {self.describe()}: a record's "
                             "texts are read one per image.")
        return self.record_batches(epoch, split, tokenizer, preprocessor, batch_size).map(
            lambda batch: {"images": batch["images"], "token_ids": batch["token_ids"]})

    def fusion_heads(self, heads):
        """One head, `"label"`, over the training classes: binary for two, multiclass otherwise."""
        names = list(self.class_names)
        if len(names) < 2:
            raise ValueError(
                f"`data.path` {self.config['data']['path']!r}: the fusion task needs a `label` field "
                f"with at least 2 classes in the training records, got {names}."
            )
        if len(names) == 2:
            return {LABEL_HEAD: {"type": "binary", "labels": names}}
        return {LABEL_HEAD: {"type": "multiclass", "num_classes": len(names), "labels": names}}

    def training_labels(self, head):
        return np.array([label for _, label in self.training_texts_and_labels() if label >= 0], np.int64)

    def example_batches(self, epoch, split, tokenizer, preprocessor, batch_size, texts_per_image=1):
        """One epoch of fusion example batches: each record's image, first text drawn with the seed and
        label; a held-out label the training split lacks (-1) weighs nothing."""
        binary = len(self.class_names) == 2

        def to_example(batch):
            label = batch["label"]
            weight = tf.cast(label >= 0, tf.float32)
            label = tf.maximum(label, 0)
            features = {"images": batch["images"], "token_ids": batch["token_ids"],
                        "image_present": tf.ones_like(batch["text_present"]), "text_present": batch["text_present"]}
            return features, {LABEL_HEAD: tf.cast(label, tf.float32) if binary else label}, {LABEL_HEAD: weight}

        return self.record_batches(epoch, split, tokenizer, preprocessor, batch_size, require_text=False).map(
            to_example)

    # --- evaluation ----------------------------------------------------------------------------
    def evaluation_batches(self, preprocessor, batch_size):
        """The held-out split in batches of `batch_size`, undecodable images left out and counted.

        Yields:
            `{"images": float32 [B, H, W, 3], "texts": lists of str, "labels": int64 [B],
            "metadata": [{"id": str}]}`.
        """
        self.prepare()

        def decode(record):
            images, ok = preprocessor.try_decode(record["image"])
            return images, record["texts"], record["label"], record["id"], ok

        dataset = (
            self.val_reader.records(deterministic=True)
            .map(lambda r: {"image": r["image"], "texts": r["texts"], "label": r["label"], "id": r["id"]})
            .padded_batch(batch_size)
            .map(decode)
        )
        self._bad_held_out = 0
        for images, texts, labels, ids, ok in dataset.as_numpy_iterator():
            self._bad_held_out += int((~ok).sum())
            keep = np.flatnonzero(ok)
            if keep.size:
                yield {
                    "images": images[keep],
                    "texts": [[t.decode("utf-8") for t in texts[i] if t] for i in keep],
                    "labels": labels[keep],
                    "metadata": [{"id": ids[i].decode("utf-8")} for i in keep],
                }

    def evaluation_examples(self, tokenizer, preprocessor, batch_size):
        """The held-out records as fusion examples (image, first text, label); labels the training split
        lacks are -1 (left out of the scores and counted)."""
        num_classes = len(self.class_names)
        for batch in self.evaluation_batches(preprocessor, batch_size):
            first = [texts[0] if texts else "" for texts in batch["texts"]]
            labels = batch["labels"]
            yield {
                "images": batch["images"],
                "token_ids": np.asarray(tokenizer(tf.constant(first))),
                "text_present": np.array([1.0 if t else 0.0 for t in first], "float32"),
                "labels": {LABEL_HEAD: np.where((labels >= 0) & (labels < num_classes), labels, -1)},
                "metadata": {},
            }

    def nearest_neighbour_captions(self):
        """No pixel baseline: the training images are not held in memory."""
        return None
