"""Training on real data: a source converted once into TFRecord shards inside the run directory."""

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
from mmkeras.preprocessing.image_preprocessor import ImagePreprocessor
from mmkeras.preprocessing.random_resized_crop import RandomResizedCrop
from mmkeras.tasks.task import Task

# `data.dataset` values read through `mmkeras.data.open_source`, and "tfrecord": a shard folder
# written by `mmkeras data convert` with a "train" and a "val" split, used as it is.
DATA_FOLDER = "data"
SOURCE_FILE = "source.json"
SKIP_REPORT_FILE = "skip_report.json"
SPLITS_FOLDER = "splits"  # `train.txt` and `val.txt`: the record ids of each split
NUM_TRAIN_SHARDS, NUM_VAL_SHARDS = 4, 1
SHUFFLE_BUFFER = 2048
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


class RecordTask(Task):
    """Base of the tasks that train on real data (COCO, Flickr, CSV / JSONL, image folders, TFDS).

    Combined with a family task (`RecordMatchingTask`, `RecordCaptioningTask`,
    `RecordFusionTask`), whose model building, loss and export it reuses; it
    replaces the Shapes data with a source spec from the config: `data.dataset`
    is the kind (coco, flickr, csv, jsonl, folder, tfds or tfrecord) and
    `data.path` the annotation file, folder or TFDS name, with `data.images`
    (images folder), `data.split_json` (Flickr Karpathy split),
    `data.data_dir` (TFDS data folder) and `data.val_fraction`.

    Data. On first use the source is converted once into TFRecord shards in
    `RUN/data/` (a restarted or re-evaluated run reuses them): a "train" and a
    held-out "val" split. The held-out split is the source's own validation
    split when it has one (Flickr with a Karpathy split JSON, a TFDS dataset
    with a "val" or "validation" split), else a deterministic holdout of
    `data.val_fraction` of the records chosen by a hash of the record id
    (`is_held_out`). Bad records are skipped or repaired by the loaders and
    counted; fusion also skips records without a label ("missing label").
    Nothing is dropped silently: the counts go to `RUN/skip_report.json`, to
    `metrics.json` and are printed at the end of `run()`. "tfrecord" reads an
    existing shard folder with "train" and "val" splits instead.

    Training reads the train shards with `ShardReader.dataset(family, ...)`:
    every epoch is a fixed number of full batches (`drop_remainder`, static
    shapes) whose order depends only on `train.seed` and the epoch. The
    tokenizer is trained on the training texts and saved as `tokenizer.json`,
    as for Shapes. `evaluate` reads the held-out split batch by batch.

    Args:
        config: a resolved run config whose `data.dataset` is not "shapes".
        output_dir: the run directory.

    Example:

    ```python
    from mmkeras import zoo
    from mmkeras.tasks import task_for_config

    config = zoo.config("shapes-captioner-tiny", **{
        "data.dataset": "coco", "data.path": "annotations/captions_train2017.json",
        "data.images": "train2017"})
    task = task_for_config(config, "runs/coco-captioner")  # a RecordCaptioningTask
    metrics = task.run()   # converts, trains, scores BLEU / CIDEr-D on the held-out images, exports
    print(task.skip_report().summary())
    ```
    """

    family = None  # "matching", "captioning" or "fusion", set by each family's class

    def __init__(self, config, output_dir):
        # The Shapes base classes are skipped on purpose: there is no built-in data to make.
        Task.__init__(self, config, output_dir)
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
        if self.family == "fusion" and kind in UNLABELLED_KINDS:
            raise ValueError(
                f"`data.dataset`={kind!r} has no labels, and the fusion task trains a classifier: "
                "use a csv: or jsonl: manifest with a `label` column (or folder:, tfds: with a label)."
            )
        self.source_config = {k: data[k] for k in _SOURCE_FIELDS}
        self.source_config["family"] = self.family
        self.preprocessor = ImagePreprocessor(image_size=data["image_size"], resize="pad", max_pixels=data["max_pixels"])
        self.data_path = path if kind == "tfrecord" else self.run_dir.file(DATA_FOLDER)
        self._tokenizer = None
        self._prepared = False
        self.show_progress = True  # a progress bar while converting (`train(verbose=0)` turns it off)
        self.use_init_preprocessing()
        if not self._converted():
            self._check_paths()

    # --- conversion ----------------------------------------------------------
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

    def _stored_source(self):
        """The source the run's converted data came from (None: nothing converted, or a tfrecord input)."""
        marker = _gfile.join(self.data_path, SOURCE_FILE)
        if self.config["data"]["dataset"] == "tfrecord" or not tf.io.gfile.exists(marker):
            return None
        return json.loads(_gfile.read_bytes(marker).decode("utf-8")).get("source")

    def _converted(self):
        """Whether `data_path` holds both splits, converted from this very source."""
        info = _read_info(self.data_path).get("splits", {})
        if self.config["data"]["dataset"] == "tfrecord":
            return "train" in info and "val" in info
        return self._stored_source() == self.source_config and "train" in info and "val" in info

    def remove_previous_run(self):
        """Also removes converted data that came from another source (`--overwrite` with a new `--data`)."""
        super().remove_previous_run()
        stored = self._stored_source()
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
        progress = keras.utils.Progbar(None, verbose=1 if getattr(self, "show_progress", True) else 0,
                                       unit_name="record")
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

    def prepare_data(self):
        """Converts the source into `RUN/data/` unless already done; opens the shard readers.

        Returns:
            The `dataset_info.json` entries of the "train" and "val" splits.
        """
        if self._prepared:
            return self.split_info
        if not self._converted():
            stored = self._stored_source()
            if stored is not None and stored != self.source_config:
                raise ValueError(
                    f"The run directory {self.output_dir!r} holds data converted from {stored}, not from "
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
        self.class_names = self._class_names()
        # Held-out labels must index the training classes (the val split has its own names).
        self.val_reader.class_names = list(self.train_reader.class_names)
        self._prepared = True
        self.prepared()
        return self.split_info

    def prepared(self):
        """Hook called once the data is ready (the fusion task sets its head from the labels)."""

    def _class_names(self):
        """Class names of the training labels: the names, or "0".."K-1" for integer labels."""
        if self.train_reader.class_names:
            return list(self.train_reader.class_names)
        labels = [int(label) for _, label in self.training_texts_and_labels() if label >= 0]
        return [str(i) for i in range(max(labels) + 1)] if labels else []

    def training_texts_and_labels(self):
        """`[(texts, label)]` of the training split (texts: list of str; label: int, -1 if none)."""
        if getattr(self, "_texts_and_labels", None) is None:
            records = self.train_reader.records(deterministic=True).map(lambda r: (r["texts"], r["label"]))
            self._texts_and_labels = [
                ([t.decode("utf-8") for t in texts], int(label)) for texts, label in records.as_numpy_iterator()
            ]
        return self._texts_and_labels

    @property
    def num_train_records(self):
        return int(self.prepare_data()["train"]["num_records"])

    @property
    def num_val_records(self):
        return int(self.prepare_data()["val"]["num_records"])

    def skip_report(self):
        """The `SkipReport` of the conversion (what was skipped or repaired, by reason)."""
        entry = self.prepare_data()["train"].get("skip_report")
        return SkipReport.from_dict(entry) if entry else SkipReport(kept=self.num_train_records + self.num_val_records)

    def data_report(self):
        """A JSON-ready summary of the data: counts per split, conversion and read-time skips."""
        report = self.skip_report()
        return {
            "source": self.prepare_data()["train"].get("source"),
            "num_train_records": self.num_train_records,
            "num_held_out_records": self.num_val_records,
            "conversion": report.as_dict(),
            "summary": report.summary(),
            "read_time": {
                "train_undecodable_images": self.train_reader.num_bad_images,
                "held_out_undecodable_images": getattr(self, "_bad_held_out", 0),
            },
        }

    # --- training --------------------------------------------------------------
    def tokenizer_corpus(self):
        """Every caption (or text) of the training split."""
        return [t for texts, _ in self.training_texts_and_labels() for t in texts]

    @property
    def steps_per_epoch(self):
        batch = self.config["train"]["global_batch_size"]
        count = self.num_train_records
        if count < batch:
            raise ValueError(
                f"`data.path` {self.config['data']['path']!r} gives {count} training records "
                f"({self.skip_report().num_skipped} skipped), fewer than `train.global_batch_size`={batch}."
            )
        return count // batch

    def reader_arguments(self):
        """Extra `ShardReader.dataset` arguments: `RandomResizedCrop` with `data.augment`."""
        data = self.config["data"]
        if not data["augment"]:
            return {}
        if getattr(self, "_augment", None) is None:
            with tf.init_scope():  # its seed state is a variable: made eagerly, once
                self._augment = RandomResizedCrop(data["image_size"], seed=self.config["train"]["seed"])
        return {"augment": self._augment}

    def map_batches(self, dataset):
        """Last per-batch step of the training data (identity by default)."""
        return dataset

    def epoch_dataset(self, epoch, split="train"):
        """One epoch of batches of `split` ("train", or "val": the held-out records, in their stored
        order, unaugmented); `epoch` is a Python int (or an eager scalar)."""
        self.prepare_data()
        train = self.config["train"]
        training = split == "train"
        seed = int(train["seed"]) * 1_000_003 + int(epoch)  # tf.data shuffles take Python seeds
        reader = self.train_reader if training else self.val_reader
        batch = train["global_batch_size"] if training else self.validation_batch_size()
        arguments = self.reader_arguments()
        if not training:
            arguments.pop("augment", None)
        dataset = reader.dataset(
            self.family, self.tokenizer, preprocessor=self.preprocessor, batch_size=batch, drop_remainder=True,
            shuffle=training, shuffle_buffer=SHUFFLE_BUFFER, seed=seed, deterministic=True, prefetch=False,
            repeat=True,  # an image failing at read time never shortens the epoch
            # Converted shards hold fully decoded-and-checked images: the cheap check is enough.
            errors="catch" if self.config["data"]["dataset"] == "tfrecord" else "check",
            **arguments,
        )
        steps = self.steps_per_epoch if training else self.num_val_records // batch
        return self.with_static_batch(self.map_batches(dataset.take(steps)), batch)

    def validation_batch_size(self):
        """`train.global_batch_size`, or, for a smaller held-out split, as many of its records as the
        replicas can share evenly (0: fewer than 2 a replica, too few for in-batch negatives)."""
        batch, replicas = self.config["train"]["global_batch_size"], self.strategy.num_replicas_in_sync
        if self.num_val_records >= batch:
            return batch
        batch = self.num_val_records // replicas * replicas
        return batch if batch >= 2 * replicas else 0

    def has_validation_split(self):
        return self.validation_batch_size() > 0

    def train(self, verbose="auto"):
        """Converts the data if needed (a progress bar unless `verbose=0`), prints its summary, trains."""
        self.show_progress = verbose != 0
        self.prepare_data()
        report = self.skip_report()
        print(f"mmkeras: data {self.split_info['train'].get('source')}: {report.summary()}; "
              f"{self.num_train_records} train / {self.num_val_records} held-out records "
              f"(lists: {self.split_list('train')}, {self.split_list('val')}).", flush=True)
        return super().train(verbose=verbose)

    def run(self, verbose="auto", **kwargs):
        """Converts the data if needed, trains, evaluates, exports, writes and prints the data report."""
        metrics = super().run(verbose=verbose, **kwargs)
        report = self.data_report()
        self.run_dir.write_json(SKIP_REPORT_FILE, report)
        print(f"mmkeras: undecodable at read time: {report['read_time']['train_undecodable_images']} train, "
              f"{report['read_time']['held_out_undecodable_images']} held-out images "
              f"(details: {self.run_dir.file(SKIP_REPORT_FILE)})")
        return metrics

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

    # --- evaluation ------------------------------------------------------------
    def held_out_batches(self):
        """Yields the held-out split in batches of `eval.batch_size`, images decoded.

        Yields:
            `(images float32 [B, H, W, 3], texts: list of lists of str, labels int64 [B])`;
            undecodable images are left out and counted.
        """
        self.prepare_data()
        preprocessor = self.preprocessor

        def decode(record):
            images, ok = preprocessor.try_decode(record["image"])
            return images, record["texts"], record["label"], ok

        dataset = (
            self.val_reader.records(deterministic=True)
            .map(lambda r: {"image": r["image"], "texts": r["texts"], "label": r["label"]})
            .padded_batch(self.config["eval"]["batch_size"])
            .map(decode)
        )
        self._bad_held_out = 0
        for images, texts, labels, ok in dataset.as_numpy_iterator():
            self._bad_held_out += int((~ok).sum())
            keep = np.flatnonzero(ok)
            if keep.size:
                yield (
                    images[keep],
                    [[t.decode("utf-8") for t in texts[i] if t] for i in keep],
                    labels[keep],
                )

    def data_metrics(self):
        """Data counts that go into `metrics.json` next to the scores."""
        return {
            "num_train_records": self.num_train_records,
            "num_held_out_records": self.num_val_records,
            "num_skipped_records": self.skip_report().num_skipped,
            "num_held_out_undecodable": getattr(self, "_bad_held_out", 0),
        }
