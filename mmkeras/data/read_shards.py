"""`read_shards`: TFRecord shards -> a `tf.data` pipeline of model inputs."""

import tensorflow as tf

from mmkeras.data.model_inputs import model_inputs
from mmkeras.data.shard_reader import ShardReader


def read_shards(path, family="matching", tokenizer=None, split="train", label_head=None, **kwargs):
    """Shorthand for `ShardReader(path, split).dataset(tokenizer, **kwargs)` mapped to `model_inputs(family)`.

    Use `ShardReader` directly to read the counts of bad images skipped.

    Args:
        path: a shard folder or a glob pattern of TFRecord files.
        family: "matching", "captioning" or "fusion".
        tokenizer: strings `[N]` -> int32 ids `[N, L]`.
        split: which split of a folder.
        label_head: fusion: the target becomes `{label_head: label}`.
        **kwargs: `ShardReader.dataset` / `ShardReader.records` arguments
            (`image_size`, `batch_size`, `drop_remainder`, `shuffle`, `seed`,
            `deterministic`, ...).

    Returns:
        A `tf.data.Dataset`.

    Example:

    ```python
    from mmkeras.data import read_shards
    from mmkeras.preprocessing import SubwordTokenizer

    tokenizer = SubwordTokenizer.train(["a red star"], 40, sequence_length=6)
    data = read_shards("shards/coco", "captioning", tokenizer, split="val", image_size=224,
                       batch_size=64, drop_remainder=True)
    inputs, targets = next(iter(data))   # token_ids / targets: [64, 5]
    ```
    """
    prefetch = kwargs.pop("prefetch", True)
    inputs = model_inputs(family, label_head)  # checks `family` before anything is read
    dataset = ShardReader(path, split).dataset(tokenizer, require_text=family != "fusion", prefetch=False, **kwargs)
    dataset = dataset.map(inputs, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE) if prefetch else dataset
