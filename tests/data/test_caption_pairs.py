import numpy as np
import pytest
import tensorflow as tf

from mmkeras.data.caption_pairs import caption_pairs

WORDS = ["a", "red", "blue", "square", "circle", "big"]


def _tokenize(strings):
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(WORDS, list(range(4, 4 + len(WORDS)))), default_value=1
    )
    return table.lookup(tf.strings.split(strings))


def _dataset(num_images=5):
    captions = [["a red square", "a blue circle", "big red circle"]] * num_images
    images = np.arange(num_images, dtype="float32")[:, None, None, None] * np.ones((1, 4, 4, 3), "float32")
    return tf.data.Dataset.from_tensor_slices({"image": images, "captions": captions})


def test_all_mode_expands_every_caption():
    pairs = list(caption_pairs(_dataset(2), _tokenize, sequence_length=4, mode="all"))
    assert len(pairs) == 6
    x, y = pairs[0]
    assert x["token_ids"].numpy().tolist() == [2, 4, 5, 7]  # [BOS] a red square
    assert y.numpy().tolist() == [4, 5, 7, 3]  # ... [EOS]
    assert [float(x["images"][0, 0, 0]) for x, _ in pairs] == [0, 0, 0, 1, 1, 1]
    long = list(caption_pairs(_dataset(1), _tokenize, sequence_length=3, mode="all"))[2]
    assert long[1].numpy().tolist() == [9, 5, 3]  # content truncated, [EOS] kept


def test_sample_mode_one_caption_per_image_per_epoch_seeded():
    dataset = caption_pairs(_dataset(12), _tokenize, sequence_length=6, mode="sample", seed=4)
    epochs = [[tuple(x["token_ids"].numpy()[1:3]) for x, _ in dataset] for _ in range(3)]
    assert all(len(epoch) == 12 for epoch in epochs)
    assert len({caption for epoch in epochs for caption in epoch}) == 3  # every caption gets drawn
    assert epochs[0] != epochs[1]  # a new draw each epoch
    again = caption_pairs(_dataset(12), _tokenize, sequence_length=6, mode="sample", seed=4)
    assert [tuple(x["token_ids"].numpy()[1:3]) for x, _ in again] == epochs[0]
    x, y = next(iter(dataset))
    assert x["token_ids"].shape == (6,) and y.shape == (6,) and x["images"].shape == (4, 4, 3)


def test_dense_tokenizer_batches_and_empty_captions():
    dense = lambda s: _tokenize(s).to_tensor()  # noqa: E731 - padded with 0
    data = tf.data.Dataset.from_generator(
        lambda: iter([{"image": np.zeros((4, 4, 3), "float32"), "captions": np.array(c, object)}
                      for c in (["a red square", "big circle"], [])]),
        output_signature={"image": tf.TensorSpec((4, 4, 3)), "captions": tf.TensorSpec((None,), tf.string)},
    )
    batches = list(caption_pairs(data, dense, sequence_length=5, mode="all").batch(8))
    assert len(batches) == 1
    assert batches[0][1].numpy().tolist() == [[4, 5, 7, 3, 0], [9, 8, 3, 0, 0]]


def test_bad_arguments():
    with pytest.raises(ValueError, match="mode"):
        caption_pairs(_dataset(), _tokenize, 4, mode="first")
    with pytest.raises(ValueError, match="sequence_length"):
        caption_pairs(_dataset(), _tokenize, 1)
    with pytest.raises(ValueError, match="captions"):
        caption_pairs(_dataset(), _tokenize, 4, captions_key="text")
    with pytest.raises(ValueError, match="tokenizer"):
        list(caption_pairs(_dataset(), 42, 4))
