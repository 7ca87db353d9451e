"""`read_shards`: TFRecord shards -> a `tf.data` pipeline of model inputs."""

from mmkeras.data.shard_reader import ShardReader


def read_shards(path, family="matching", tokenizer=None, split="train", **kwargs):
    """Shorthand for `ShardReader(path, split).dataset(family, tokenizer, **kwargs)`.

    Use `ShardReader` directly to read the counts of bad images skipped.

    Args:
        path: a shard folder or a glob pattern of TFRecord files.
        family: "matching", "captioning" or "fusion".
        tokenizer: strings `[N]` -> int32 ids `[N, L]`.
        split: which split of a folder.
        **kwargs: `ShardReader.dataset` / `ShardReader.records` arguments
            (`image_size`, `batch_size`, `drop_remainder`, `shuffle`, `seed`,
            `deterministic`, ...).

    Returns:
        A `tf.data.Dataset`.

    Example:

    >>> import tempfile
    >>> from mmkeras.data import ShapesSource, write_shards
    >>> from mmkeras.preprocessing import SubwordTokenizer
    >>> out = tempfile.mkdtemp()
    >>> _ = write_shards(ShapesSource("val", image_size=32, num_examples=4), out, 2, "val")
    >>> tokenizer = SubwordTokenizer.train(["a red star"], 40, sequence_length=6)
    >>> data = read_shards(out, "captioning", tokenizer, split="val", image_size=32, batch_size=2)
    >>> inputs, targets = next(iter(data))
    >>> inputs["token_ids"].shape, targets.shape
    (TensorShape([2, 5]), TensorShape([2, 5]))
    """
    return ShardReader(path, split).dataset(family, tokenizer, **kwargs)
