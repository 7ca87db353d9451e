"""Reads TFRecord shards into `tf.data` pipelines of records: decoded images, a text, the label."""

import json

import keras
import tensorflow as tf

from mmkeras.data import _gfile
from mmkeras.data.shard_writer import INFO_FILE, _read_info
from mmkeras.validation import check_int

CAPTION_CHOICES = ("sample", "first")
ERROR_MODES = ("catch", "check")
_AUTOTUNE = tf.data.AUTOTUNE


def _num_workers_from_env():
    """Workers in `TF_CONFIG` (chief + workers), 1 without a cluster."""
    import os

    try:
        cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    except ValueError:
        return 1
    return max(1, len(cluster.get("chief", [])) + len(cluster.get("worker", [])))


def _parse(serialized):
    parsed = tf.io.parse_single_example(
        serialized,
        {
            "id": tf.io.FixedLenFeature([], tf.string),
            "image": tf.io.FixedLenFeature([], tf.string),
            "texts": tf.io.VarLenFeature(tf.string),
            "label": tf.io.FixedLenFeature([], tf.int64, default_value=-1),
            "label_name": tf.io.FixedLenFeature([], tf.string, default_value=""),
        },
    )
    parsed["texts"] = tf.sparse.to_dense(parsed["texts"], default_value="")
    return parsed


class ShardReader:
    """Builds `tf.data` input pipelines from the shards written by `ShardWriter`.

    `dataset()` reads the files with a parallel `interleave`, parses, decodes
    images with `ImagePreprocessor` (in parallel), skips and counts bad ones,
    picks one text per record, batches, tokenizes per batch and prefetches,
    all with `AUTOTUNE`. Its elements are records ready for any family:
    `{"images": [B, H, W, 3], "token_ids": [B, L], "text_present": [B],
    "label": [B]}` (`text_present` 0 for a record without text, kept with
    `require_text=False`); `mmkeras.data.model_inputs` maps them to a
    family's model inputs.

    Distribution. Under `tf.distribute`, with `experimental_distribute_dataset`
    the dataset's auto-shard policy is FILE when there are at least as many
    files as workers (each worker reads its own files) and DATA otherwise
    (every worker reads everything and keeps its share). Workers are counted
    from `num_workers` or `TF_CONFIG`. With `distribute_datasets_from_function`
    pass its `input_context`: files are split between input pipelines the same
    way, explicitly. On one worker, replicas share the worker's batches.

    Without `deterministic=True` the order is whatever is ready first, for
    records and for batches: a last partial batch can come before full ones.

    Bad data at read time never ends the epoch: images that cannot be decoded
    are dropped and counted in `num_bad_images` (with `errors="catch"` every
    decoding error is caught, costing about 1 ms per image; with
    `errors="check"` only what `check_image_bytes` detects is, which is all
    truncations and malformed headers). For matching and captioning, records
    without text are dropped and counted in `num_without_text` unless
    `require_text=False`. The counts
    are variables updated as the pipeline runs (they are exact once an epoch
    has been consumed).

    Args:
        path: a shard folder (with `dataset_info.json`, or files named
            `<split>-*-of-*.tfrecord`) or a glob pattern of TFRecord files.
        split: which split of a folder to read.

    Example:

    >>> import tempfile
    >>> from mmkeras.data import ShapesSource, write_shards
    >>> from mmkeras.preprocessing import SubwordTokenizer
    >>> out = tempfile.mkdtemp()
    >>> _ = write_shards(ShapesSource("train", image_size=32, num_examples=6), out, 3)
    >>> tokenizer = SubwordTokenizer.train(["two red circles"], 50, sequence_length=8)
    >>> reader = ShardReader(out)
    >>> dataset = reader.dataset(tokenizer, image_size=32, batch_size=4, deterministic=True)
    >>> batch = next(iter(dataset))  # deterministic: the full batch comes first
    >>> batch["images"].shape, batch["token_ids"].shape, batch["label"].shape
    (TensorShape([4, 32, 32, 3]), TensorShape([4, 8]), TensorShape([4]))
    >>> bad = reader.num_bad_images  # images skipped so far (none here)
    """

    def __init__(self, path, split="train"):
        if not path:
            raise ValueError("`path` must be a shard folder or a file pattern.")
        path = str(path)
        self.path, self.split = path, split
        if tf.io.gfile.isdir(path):
            info = _read_info(path)
            split_info = info.get("splits", {}).get(split)
            if split_info:
                files = [_gfile.join(path, f) for f in split_info["files"]]
            else:
                files = tf.io.gfile.glob(_gfile.join(path, f"{split}-*-of-*.tfrecord"))
        else:
            files = tf.io.gfile.glob(path)
            info = _read_info(_gfile.dirname(path)) if _gfile.dirname(path) else {}
            split_info = info.get("splits", {}).get(split)
        if not files:
            raise ValueError(
                f"`path` {path!r} has no shards of split {split!r} (expected {INFO_FILE} or "
                f"files named {split}-*-of-*.tfrecord)."
            )
        missing = [f for f in files if not tf.io.gfile.exists(f)]
        if missing:
            raise ValueError(f"`path` {path!r}: shard files are missing: {missing[:3]}.")
        self.files = sorted(files)
        self.info = split_info or {}
        self.class_names = list(self.info.get("class_names") or [])
        with tf.device("CPU:0"):
            self._bad_images = tf.Variable(0, dtype=tf.int64, trainable=False, name="bad_images")
            self._without_text = tf.Variable(0, dtype=tf.int64, trainable=False, name="without_text")

    # --- counters -------------------------------------------------------------

    @property
    def num_bad_images(self):
        """Images dropped at read time because they could not be decoded."""
        return int(self._bad_images.numpy())

    @property
    def num_without_text(self):
        """Records dropped at read time because they had no caption (matching, captioning)."""
        return int(self._without_text.numpy())

    def reset_counts(self):
        """Sets the counters back to 0."""
        self._bad_images.assign(0)
        self._without_text.assign(0)

    # --- records --------------------------------------------------------------

    def auto_shard_policy(self, num_workers=None):
        """FILE when there are at least as many files as workers, DATA otherwise.

        Args:
            num_workers: number of workers (default: from `TF_CONFIG`, else 1).
        """
        num_workers = _num_workers_from_env() if num_workers is None else int(num_workers)
        if len(self.files) >= num_workers:
            return tf.data.experimental.AutoShardPolicy.FILE
        return tf.data.experimental.AutoShardPolicy.DATA

    def records(self, shuffle=False, shuffle_buffer=0, seed=None, repeat=False, deterministic=False,
                input_context=None, num_workers=None, cycle_length=8):
        """The parsed records: `{"id", "image" (bytes), "texts" [K], "label", "label_name"}`.

        Args:
            shuffle: shuffle the file order (each epoch).
            shuffle_buffer: size of the record shuffle buffer (0: none).
            seed: shuffling seed (with `deterministic=True`, `None` means 0).
            repeat: repeat forever.
            deterministic: the same order on every run (with the same seed).
            input_context: a `tf.distribute.InputContext` (from
                `distribute_datasets_from_function`): read only this input
                pipeline's files (or records, with fewer files than pipelines).
            num_workers: workers for the auto-shard policy (default: `TF_CONFIG`).
            cycle_length: files read concurrently.

        Returns:
            A `tf.data.Dataset`.
        """
        if deterministic and seed is None:
            seed = 0
        files = tf.data.Dataset.from_tensor_slices(self.files)
        record_shard = None
        if input_context is not None and input_context.num_input_pipelines > 1:
            count, index = input_context.num_input_pipelines, input_context.input_pipeline_id
            if len(self.files) >= count:
                files = files.shard(count, index)
            else:  # every file's records are split the same way, whatever the read order
                record_shard = (count, index)
        if shuffle:
            files = files.shuffle(len(self.files), seed=seed, reshuffle_each_iteration=True)
        if repeat:
            files = files.repeat()

        def read(path):
            records = tf.data.TFRecordDataset(path, buffer_size=1 << 20)
            return records.shard(*record_shard) if record_shard else records

        dataset = files.interleave(
            read,
            cycle_length=max(1, min(len(self.files), int(cycle_length))),
            block_length=1,
            num_parallel_calls=_AUTOTUNE,
            deterministic=deterministic,
        )
        if shuffle_buffer:
            dataset = dataset.shuffle(int(shuffle_buffer), seed=seed, reshuffle_each_iteration=True)
        dataset = dataset.map(_parse, num_parallel_calls=_AUTOTUNE, deterministic=deterministic)
        if self.class_names:
            names = tf.constant(self.class_names)

            def name_to_index(record):
                found = tf.equal(names, record["label_name"])
                index = tf.argmax(tf.cast(found, tf.int64))
                record["label"] = tf.where(tf.reduce_any(found), index, record["label"])
                return record

            dataset = dataset.map(name_to_index, num_parallel_calls=_AUTOTUNE, deterministic=deterministic)
        options = tf.data.Options()
        options.deterministic = bool(deterministic)
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.OFF
            if input_context is not None
            else self.auto_shard_policy(num_workers)
        )
        return dataset.with_options(options)

    # --- model inputs -----------------------------------------------------------

    def dataset(self, tokenizer=None, image_size=224, batch_size=None, drop_remainder=False, caption="sample",
                augment=None, preprocessor=None, errors="catch", prefetch=True, require_text=True,
                **record_kwargs):
        """A dataset of decoded, tokenized records (see the class docstring).

        Args:
            tokenizer: maps a string vector `[N]` to int32 ids `[N, L]`
                (e.g. `SubwordTokenizer`).
            image_size: output image size (ignored with `preprocessor`).
            batch_size: batch size (`None`: unbatched elements).
            drop_remainder: drop the last partial batch (static shapes, TPU).
            caption: "sample" (one text per record, drawn with the seed) or
                "first".
            augment: optional callable on a float image batch `[B, H, W, 3]`
                (e.g. `RandomResizedCrop`; Keras layers get `training=True`).
            preprocessor: an `ImagePreprocessor` (default: one of `image_size`).
            errors: "catch" or "check" (see the class docstring).
            prefetch: end with `prefetch(AUTOTUNE)`.
            require_text: drop (and count) records without text; with False
                they are kept with `text_present` 0 (a missing modality).
            **record_kwargs: arguments of `records()` (`shuffle`,
                `shuffle_buffer`, `seed`, `repeat`, `deterministic`,
                `input_context`, `num_workers`, `cycle_length`).

        Returns:
            A `tf.data.Dataset`.
        """
        from mmkeras.preprocessing import ImagePreprocessor, map_with_error_flags

        if caption not in CAPTION_CHOICES:
            raise ValueError(f"`caption` must be one of {CAPTION_CHOICES}, got {caption!r}.")
        if errors not in ERROR_MODES:
            raise ValueError(f"`errors` must be one of {ERROR_MODES}, got {errors!r}.")
        if tokenizer is None or not callable(tokenizer):
            raise ValueError("`tokenizer` must be a callable mapping strings [N] to ids [N, L].")
        batch_size = check_int("batch_size", batch_size, minimum=1, allow_none=True)
        preprocessor = preprocessor or ImagePreprocessor(image_size)
        deterministic = bool(record_kwargs.get("deterministic", False))
        seed = record_kwargs.get("seed")
        if deterministic and seed is None:
            seed = 0
        parallel = {"num_parallel_calls": _AUTOTUNE, "deterministic": deterministic}
        dataset = self.records(**record_kwargs)

        def decode(record):
            image, ok = preprocessor.try_decode(record["image"])
            fields = {k: v for k, v in record.items() if k != "image"}
            return fields, image, ok

        if errors == "catch":
            dataset = map_with_error_flags(dataset, decode).map(
                lambda out, ok: (out[0], out[1], out[2] & ok), **parallel
            )
        else:
            dataset = dataset.map(decode, **parallel)
        bad, without_text = self._bad_images, self._without_text

        def count(fields, image, ok):
            has_text = tf.size(fields["texts"]) > 0
            keep = ok & (has_text | (not require_text))
            updates = [bad.assign_add(tf.cast(~ok, tf.int64))]
            if require_text:
                updates.append(without_text.assign_add(tf.cast(ok & ~has_text, tf.int64)))
            with tf.control_dependencies(updates):
                keep = tf.identity(keep)
            return fields, image, keep

        dataset = dataset.map(count, **parallel).filter(lambda fields, image, keep: keep)
        draws = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)

        def pick(element, draw):
            fields, image, _ = element
            texts = fields["texts"]
            size = tf.cast(tf.size(texts), tf.int64)
            index = tf.math.floormod(draw, tf.maximum(size, 1)) if caption == "sample" else 0
            text = tf.cond(size > 0, lambda: tf.gather(texts, index), lambda: tf.constant(""))
            return {"images": image, "text": text, "text_present": tf.cast(size > 0, tf.float32),
                    "label": fields["label"]}

        dataset = tf.data.Dataset.zip((dataset, draws)).map(pick, **parallel)
        if batch_size is not None:
            dataset = dataset.batch(batch_size, drop_remainder=drop_remainder, **parallel)

        def tokenize(element):
            texts = element.pop("text")
            ids = tf.cast(tokenizer(texts if batch_size is not None else texts[None]), tf.int32)
            ids = tf.ensure_shape(ids, [texts.shape[0] if batch_size is not None else 1, None])
            element["token_ids"] = ids if batch_size is not None else ids[0]
            if augment is not None:
                images = element["images"]
                element["images"] = augment(images, training=True) if isinstance(augment, keras.layers.Layer) \
                    else augment(images)
            return element

        dataset = dataset.map(tokenize, **parallel)
        if prefetch:
            dataset = dataset.prefetch(_AUTOTUNE)
        return dataset
