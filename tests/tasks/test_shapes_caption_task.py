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
    references = {tuple(s["captions"]) for s in task.shapes.scenes("train")}
    epochs = []
    for epoch in (0, 1):
        images, captions = next(iter(task.caption_batches(tf.constant(epoch, tf.int64), captions_per_image=3)))
        assert images.shape[0] == 8 and captions.shape == (8, 3)
        rows = [[c.decode() for c in row] for row in captions.numpy()]
        for row in rows:
            assert len(set(row)) == 3  # distinct captions ...
            assert any(set(row) <= set(ref) for ref in references)  # ... of one scene
        epochs.append(rows)
    assert epochs[0] != epochs[1]
    again = next(iter(task.caption_batches(tf.constant(0, tf.int64), captions_per_image=3)))[1]
    assert [[c.decode() for c in row] for row in again.numpy()] == epochs[0]  # pure function of (seed, epoch)


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
