"""Images with several reference captions -> teacher-forcing training pairs for a `Captioner`."""

import tensorflow as tf

from mmkeras.preprocessing.special_tokens import BOS_ID
from mmkeras.preprocessing.special_tokens import EOS_ID
from mmkeras.preprocessing.special_tokens import PAD_ID
from mmkeras.validation import check_int

MODES = ("sample", "all")


def _tokenize(tokenizer, strings, pad_id):
    if hasattr(tokenizer, "tokenize"):
        ids = tokenizer.tokenize(strings)
    elif callable(tokenizer):
        ids = tokenizer(strings)
    else:
        raise ValueError(
            f"`tokenizer` must be callable or have a `tokenize` method, got {type(tokenizer).__name__}."
        )
    if not isinstance(ids, tf.RaggedTensor):
        ids = tf.RaggedTensor.from_tensor(tf.convert_to_tensor(ids), padding=pad_id)
    return tf.cast(ids, tf.int32)


def _to_full_captions(ids, sequence_length, add_special_tokens, bos_id, eos_id, pad_id):
    """Ragged `[K, None]` ids -> dense `[K, sequence_length + 1]` `[BOS] ... [EOS] [PAD]...`."""
    if add_special_tokens:
        ids = ids[:, : sequence_length - 1]
        count = ids.nrows()
        bos = tf.fill([count, 1], bos_id)
        eos = tf.fill([count, 1], eos_id)
        ids = tf.concat([bos, ids, eos], axis=1)
    else:
        ids = ids[:, : sequence_length + 1]
    return ids.to_tensor(default_value=pad_id, shape=[None, sequence_length + 1])


def caption_pairs(dataset, tokenizer, sequence_length, mode="sample", seed=None, image_key="image",
                  captions_key="captions", add_special_tokens=True, bos_id=BOS_ID, eos_id=EOS_ID,
                  pad_id=PAD_ID):
    """Turns `{"image", "captions": string[K]}` elements into captioner training pairs.

    With several reference captions per image, an epoch should not take one
    optimizer step per caption of the same image. Two ways are offered:

    - `mode="sample"`: one caption per image per epoch, drawn at random
      (seeded: the same `seed` gives the same draws, and a different one in
      each epoch / iteration of the dataset);
    - `mode="all"`: every caption becomes its own `(image, caption)` pair;
      shuffle and batch them as usual (each step still sees a batch).

    Each caption becomes `c = [BOS] tokens [EOS] [PAD]...` of length
    `sequence_length + 1` (content truncated to `sequence_length - 1` tokens),
    split for teacher forcing: the model input is `c[:-1]` and the target
    `c[1:]` (see `mmkeras.models.captioner.split_for_teacher_forcing`).
    Images with no caption are dropped.

    Args:
        dataset: a `tf.data.Dataset` of dicts with an image `[H, W, 3]` and a
            string vector of captions `[K]`.
        tokenizer: a tokenizer (with `tokenize`, or a callable) mapping a
            string vector `[K]` to ids, ragged `[K, None]` or dense `[K, T]`
            padded with `pad_id`.
        sequence_length: int, the model's decoder length.
        mode: "sample" or "all".
        seed: optional int, for `mode="sample"`.
        image_key: key of the image in the elements.
        captions_key: key of the captions in the elements.
        add_special_tokens: bool, wrap the tokenizer output in `[BOS]`/`[EOS]`
            (set False if the tokenizer adds them).
        bos_id, eos_id, pad_id: special ids.

    Returns:
        An unbatched dataset of `({"images": image, "token_ids": int32
        [sequence_length]}, targets int32 [sequence_length])`.

    Example:

    >>> import tensorflow as tf
    >>> vocab = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
    ...     ["a", "red", "square"], [4, 5, 6]), default_value=1)
    >>> tokenize = lambda s: vocab.lookup(tf.strings.split(s))
    >>> data = tf.data.Dataset.from_tensors(
    ...     {"image": tf.zeros((8, 8, 3)), "captions": ["a red square", "a square"]})
    >>> pairs = caption_pairs(data, tokenize, sequence_length=5, mode="all")
    >>> [y.numpy().tolist() for _, y in pairs]
    [[4, 5, 6, 3, 0], [4, 6, 3, 0, 0]]
    """
    if mode not in MODES:
        raise ValueError(f"`mode` must be one of {MODES}, got {mode!r}.")
    sequence_length = check_int("sequence_length", sequence_length, minimum=2)
    spec = dataset.element_spec
    if not isinstance(spec, dict) or image_key not in spec or captions_key not in spec:
        raise ValueError(
            f"`dataset` elements must be dicts with the keys {image_key!r} and {captions_key!r}, "
            f"got {spec}."
        )
    if spec[captions_key].dtype != tf.string or spec[captions_key].shape.rank != 1:
        raise ValueError(
            f"`{captions_key}` must be a string vector [K] per element, got {spec[captions_key]}."
        )
    special = dict(bos_id=bos_id, eos_id=eos_id, pad_id=pad_id)

    def to_pairs(image, captions):
        full = _to_full_captions(
            _tokenize(tokenizer, captions, pad_id), sequence_length, add_special_tokens, **special
        )
        images = tf.repeat(image[None], tf.shape(full)[0], axis=0)
        return {"images": images, "token_ids": full[:, :-1]}, full[:, 1:]

    dataset = dataset.filter(lambda element: tf.size(element[captions_key]) > 0)
    if mode == "all":
        return dataset.flat_map(
            lambda element: tf.data.Dataset.from_tensor_slices(
                to_pairs(element[image_key], element[captions_key])
            )
        )

    draws = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)

    def pick_one(element, draw):
        captions = element[captions_key]
        index = tf.math.floormod(draw, tf.cast(tf.size(captions), tf.int64))
        features, targets = to_pairs(element[image_key], captions[index][None])
        return {k: v[0] for k, v in features.items()}, targets[0]

    return tf.data.Dataset.zip((dataset, draws)).map(pick_one, num_parallel_calls=tf.data.AUTOTUNE)
