"""`ShapesData`: the Shapes image-caption stream shared by matching and captioning (one or K captions per
image), and the tokenizer corpus of each family."""

import numpy as np
import pytest
import tensorflow as tf

from mmkeras import zoo
from mmkeras.data.shapes import RELATIONS
from mmkeras.data.shapes_data import ShapesData
from mmkeras.preprocessing import SubwordTokenizer

OVERRIDES = {"data.num_train": 16, "data.num_val": 4, "data.num_test": 4, "train.global_batch_size": 8}
BATCH = 8


def _data(family="captioning", preset="shapes-captioner-tiny", **overrides):
    config = zoo.config(preset, **OVERRIDES, **overrides)
    data = ShapesData(config, family)
    tokenizer = SubwordTokenizer.train(data.tokenizer_corpus(), vocabulary_size=config["data"]["vocabulary_size"],
                                       sequence_length=config["data"]["sequence_length"] + 1)
    return data, tokenizer


def test_k_distinct_reference_captions_per_image_redrawn_each_epoch():
    data, tokenizer = _data()
    # Every scene's captions as token-id rows, tokenized here independently of the stream.
    references = [
        {tuple(row) for row in tokenizer(tf.constant(s["captions"])).numpy().tolist()}
        for s in data.shapes.scenes("train")
    ]

    def first_batch(epoch):
        return next(iter(data.caption_pairs(tf.constant(epoch, tf.int64), "train", tokenizer, BATCH,
                                            captions_per_image=3)))

    epochs = []
    for epoch in (0, 1):
        images, token_ids = first_batch(epoch)
        assert images.shape[0] == 8 and token_ids.shape[:2] == (8, 3)
        assert images.dtype == tf.uint8 and token_ids.dtype == tf.int32
        rows = [[tuple(c) for c in row] for row in token_ids.numpy().tolist()]
        for row in rows:
            assert len(set(row)) == 3  # distinct captions ...
            assert any(set(row) <= ref for ref in references)  # ... of one scene
        epochs.append(rows)
    assert epochs[0] != epochs[1]
    again = first_batch(0)[1]
    assert [[tuple(c) for c in row] for row in again.numpy().tolist()] == epochs[0]  # pure function of (seed, epoch)


def test_one_caption_per_image_pairs_each_image_with_one_of_its_own_captions():
    data, tokenizer = _data()
    scenes, all_images = data.shapes.scenes("train"), data.shapes.images("train")
    images, token_ids = next(iter(data.caption_pairs(tf.constant(0, tf.int64), "train", tokenizer, BATCH)))
    assert token_ids.shape[0] == 8 and token_ids.shape.rank == 2
    for image, ids in zip(images.numpy(), token_ids.numpy().tolist()):
        index = int(np.flatnonzero((all_images == image).all(axis=(1, 2, 3)))[0])
        own = tokenizer(tf.constant(scenes[index]["captions"])).numpy().tolist()
        assert ids in own


def test_captions_per_image_out_of_range_is_a_clear_error():
    data, tokenizer = _data()
    with pytest.raises(ValueError, match="captions_per_image"):
        data.caption_pairs(tf.constant(0, tf.int64), "train", tokenizer, BATCH, captions_per_image=99)


def test_tokenizer_corpus_of_fusion_holds_questions_and_matching_texts_and_of_matching_captions_only():
    config = zoo.config("shapes-clip-tiny", **OVERRIDES)
    matching = ShapesData(config, "matching").tokenizer_corpus()
    fusion = ShapesData(config, "fusion").tokenizer_corpus()
    scenes = ShapesData(config, "matching").shapes.scenes("train")
    captions = [c for s in scenes for c in s["captions"]]
    questions = [q["question"] for s in scenes for q in s["questions"]]
    texts = [m["text"] for s in scenes for m in s["match"]]
    assert matching == captions
    assert sorted(fusion) == sorted(captions + questions + texts)
    assert set(questions) - set(captions) and set(questions) <= set(fusion)
    assert set(texts) <= set(fusion)
    assert not set(questions) & set(matching)  # a question is never a caption


def test_cell_attribute_batches_hold_every_training_image_once_a_pass_with_its_own_cells():
    data, _ = _data()
    shapes = data.shapes
    images, cells = shapes.images("train"), shapes.cell_attributes("train")
    stream = data.cell_attribute_batches(lambda x: x, BATCH, seed=5)
    batches = list(stream.take(4).as_numpy_iterator())  # 16 images: two passes of two batches
    for first, second in ((0, 1), (2, 3)):
        seen = np.concatenate([batches[first][0], batches[second][0]])
        index = [int(np.flatnonzero((images == image).all(axis=(1, 2, 3)))[0]) for image in seen]
        assert sorted(index) == list(range(16))
        labels = {k: np.concatenate([batches[first][1][k], batches[second][1][k]]) for k in cells}
        for name in cells:
            np.testing.assert_array_equal(labels[name], cells[name][index])
    assert not np.array_equal(batches[0][0], batches[2][0])  # each pass in its own order
    again = list(data.cell_attribute_batches(lambda x: x, BATCH, seed=5).take(4).as_numpy_iterator())
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(batches, again))  # a function of the seed
    images_val, cells_val = data.cell_attribute_examples(lambda x: x, "val")
    np.testing.assert_array_equal(images_val, shapes.images("val"))
    assert cells_val["shape"].shape == (4, 9)
    with pytest.raises(ValueError, match=r"16 training scenes, fewer than `train.tower_pretraining_batch_size`=32"):
        data.cell_attribute_batches(lambda x: x, 32, seed=0)


def test_a_shapes_preset_on_records_without_cell_attributes_trains_without_tower_pretraining(tmp_path, capsys):
    from mmkeras.tasks import task_for_config

    path = tmp_path / "pairs.csv"
    path.write_text("image,text\na.png,a cat\n")
    config = zoo.config("shapes-captioner-tiny", **{"data.dataset": "csv", "data.path": str(path)})
    task = task_for_config(config, str(tmp_path / "run"))
    assert task.config["train"]["tower_pretraining_steps"] == 0
    assert ("`train.tower_pretraining_steps`=1000 does not apply here: it needs records that say what "
            "each grid cell holds") in capsys.readouterr().out
    with pytest.raises(ValueError, match=r"needs records that say what each grid cell holds"):
        task.data.cell_attribute_batches(lambda x: x, 8, seed=0)


def test_the_cells_head_labels_each_question_and_hard_pair_with_the_cells_it_talks_about():
    data, tokenizer = _data("fusion", "shapes-fusion-concat-tiny")
    data.fusion_heads(zoo.config("shapes-fusion-concat-tiny")["model"]["heads"])
    assert data.annotation_heads == ["cells"] and data.tasks == ["answer", "match"]
    examples = data.examples("train")
    cells, easy = examples["labels"]["cells"], examples["pair_set"] == "easy"
    assert cells.shape == (len(easy), 9)
    # An easy pair's text is another scene's caption: which of this scene's cells it names is not known.
    assert np.all(cells[easy] == -1) and np.all(np.isin(cells[~easy], (0, 1)))
    annotated = [t["cells"] for s in data.shapes.scenes("train") for t in s["questions"] + s["match"]]
    assert [np.flatnonzero(row).tolist() for row in cells[~easy]] == annotated
    x, y, w = next(iter(data.example_batches(0, "train", tokenizer, tf.identity, 11, texts_per_image=11)))
    assert y["cells"].shape == (11, 9) and y["cells"].dtype == tf.float32
    # One scene with all 11 of its texts: the cells head trains on its 5 questions and 4 hard pairs.
    assert sorted(w["cells"].numpy().tolist()) == [0.0] * 2 + [1.0] * 9
    assert data.training_labels("cells").shape[1] == 9


def test_the_relations_head_labels_each_relation_text_with_the_relations_that_hold():
    data, tokenizer = _data("fusion", "shapes-fusion-concat-tiny")
    heads = zoo.config("shapes-fusion-concat-tiny")["model"]["heads"]
    data.fusion_heads({**heads, "relations": {"type": "multilabel", "labels": list(RELATIONS)}})
    assert data.annotation_heads == ["cells", "relations"]
    examples = data.examples("train")
    relations = examples["labels"]["relations"]
    assert relations.shape == (len(examples["text"]), 4)
    annotated = [t.get("relations") for s in data.shapes.scenes("train") for t in s["questions"] + s["match"]]
    hard = examples["pair_set"] != "easy"
    # questions and easy pairs are never relation texts: their rows are all -1
    assert np.all(relations[~hard][:, 0] == -1)
    for row, names in zip(relations[hard], annotated):
        assert row.tolist() == ([-1] * 4 if names is None else [int(r in names) for r in RELATIONS])
    assert 0 < np.sum(relations[:, 0] >= 0) < np.sum(hard)
    x, y, w = next(iter(data.example_batches(0, "train", tokenizer, tf.identity, 11, texts_per_image=11)))
    known = np.asarray(w["relations"]) == 1
    assert y["relations"].shape == (11, 4) and np.all(np.asarray(y["relations"])[~known] == 0)
    assert data.training_labels("relations").shape[1] == 4


def test_heads_shapes_cannot_label_are_refused_by_name():
    data, _ = _data("fusion", "shapes-fusion-concat-tiny")
    heads = zoo.config("shapes-fusion-concat-tiny")["model"]["heads"]
    with pytest.raises(ValueError, match=r"model.heads.cells.*multilabel.*'top left'"):
        data.fusion_heads({**heads, "cells": {"type": "multilabel", "num_classes": 3, "labels": ["a", "b", "c"]}})
    with pytest.raises(ValueError, match=r"model.heads.relations.*multilabel.*'left of'"):
        data.fusion_heads({**heads, "relations": {"type": "multiclass", "labels": list(RELATIONS)}})
    with pytest.raises(ValueError, match=r"\['colour'\] that Shapes has no labels for"):
        data.fusion_heads({**heads, "colour": {"type": "multiclass", "num_classes": 8}})
