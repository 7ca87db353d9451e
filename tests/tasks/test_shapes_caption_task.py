"""The Shapes image-caption stream shared by matching and captioning: one or K captions per image."""

import numpy as np
import pytest
import tensorflow as tf

from mmkeras import zoo
from mmkeras.tasks.captioning_task import CaptioningTask

OVERRIDES = {"data.num_train": 16, "data.num_val": 4, "data.num_test": 4, "train.global_batch_size": 8}


def _task(tmp_path, **overrides):
    return CaptioningTask(zoo.config("shapes-captioner-tiny", **OVERRIDES, **overrides), str(tmp_path))


def test_k_distinct_reference_captions_per_image_redrawn_each_epoch(tmp_path):
    task = _task(tmp_path)
    # Every scene's captions as token-id rows, tokenized here independently of the stream.
    references = [
        {tuple(row) for row in task.tokenizer(tf.constant(s["captions"])).numpy().tolist()}
        for s in task.shapes.scenes("train")
    ]
    epochs = []
    for epoch in (0, 1):
        images, token_ids = next(iter(task.caption_batches(tf.constant(epoch, tf.int64), captions_per_image=3)))
        assert images.shape[0] == 8 and token_ids.shape[:2] == (8, 3)
        assert token_ids.dtype == tf.int32
        rows = [[tuple(c) for c in row] for row in token_ids.numpy().tolist()]
        for row in rows:
            assert len(set(row)) == 3  # distinct captions ...
            assert any(set(row) <= ref for ref in references)  # ... of one scene
        epochs.append(rows)
    assert epochs[0] != epochs[1]
    again = next(iter(task.caption_batches(tf.constant(0, tf.int64), captions_per_image=3)))[1]
    assert [[tuple(c) for c in row] for row in again.numpy().tolist()] == epochs[0]  # pure function of (seed, epoch)


def test_one_caption_per_image_pairs_each_image_with_one_of_its_own_captions(tmp_path):
    task = _task(tmp_path)
    scenes, all_images = task.shapes.scenes("train"), task.shapes.images("train")
    images, token_ids = next(iter(task.caption_batches(tf.constant(0, tf.int64))))
    assert token_ids.shape[0] == 8 and token_ids.shape.rank == 2
    for image, ids in zip(images.numpy(), token_ids.numpy().tolist()):
        index = int(np.flatnonzero((all_images == image).all(axis=(1, 2, 3)))[0])
        own = task.tokenizer(tf.constant(scenes[index]["captions"])).numpy().tolist()
        assert ids in own


def test_captions_per_image_feeds_the_captioner_k_rows_per_image(tmp_path):
    task = _task(tmp_path, **{"data.captions_per_image": 2})
    inputs, targets = next(iter(task.epoch_dataset(tf.constant(0, tf.int64))))
    assert inputs["images"].shape[0] == 8
    assert inputs["token_ids"].shape[0] == 16 and targets.shape[0] == 16  # static: XLA-ready
    assert np.all(inputs["token_ids"].numpy()[:, 0] == 2)  # every row starts with [BOS]


def test_captions_per_image_out_of_range_is_a_clear_error(tmp_path):
    task = _task(tmp_path)
    with pytest.raises(ValueError, match="captions_per_image"):
        task.caption_batches(tf.constant(0, tf.int64), captions_per_image=99)


def test_tasks_that_pair_one_caption_per_image_refuse_captions_per_image(tmp_path):
    from mmkeras.tasks.matching_task import MatchingTask

    config = zoo.config("shapes-clip-tiny", **OVERRIDES, **{"data.captions_per_image": 2})
    with pytest.raises(ValueError, match="`data.captions_per_image` must be 1 for MatchingTask"):
        MatchingTask(config, str(tmp_path))
    config = zoo.config("shapes-clip-tiny", **OVERRIDES, **{"data.texts_per_image": 2})
    with pytest.raises(ValueError, match="`data.texts_per_image` must be 1 for MatchingTask"):
        MatchingTask(config, str(tmp_path))
