"""`FusionTask` end to end: `mmkeras train` / `mmkeras eval` of a fusion preset on a few Shapes scenes, and a
Hateful-Memes-style JSONL of real records (tiny budget); the example streams and config errors."""

import json

import numpy as np
import pytest
import tensorflow as tf

from mmkeras import zoo
from mmkeras.cli import main
from mmkeras.data import Shapes
from mmkeras.data.converted_data import ConvertedData
from mmkeras.data.shapes import ANSWER_VOCABULARY, POSITIONS, QUESTION_TYPES, RELATIONS
from mmkeras.data.shapes_data import ShapesData
from mmkeras.tasks import task_for_config
from mmkeras.tasks.fusion_task import FusionTask

TINY = ["--set", "data.num_train=24", "--set", "data.num_test=12", "--set", "data.num_val=4",
        "--set", "data.image_size=32", "--set", "train.tower_pretraining_steps=0",
        "--set", "image_encoder.num_layers=1", "--set", "text_encoder.num_layers=1",
        "--epochs", "1", "--global-batch", "33", "--no-jit"]


def test_train_evaluate_export_and_eval_again(tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    relations = {"type": "multilabel", "labels": list(RELATIONS)}
    assert main(["train", "shapes-fusion-late-tiny", "--output", str(run), "--quiet", *TINY,
                 "--set", f"model.heads.relations={json.dumps(relations)}"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    # 12 test scenes: 5 questions, 4 hard caption pairs and 2 easy ones each; the cells head scores
    # the questions and the hard pairs (an easy pair's text is another scene's caption), the relations
    # head the hard pairs whose text is a relation.
    test = FusionTask(json.loads((run / "config.json").read_text()), str(run)).data.shapes.scenes("test")
    num_relation_texts = sum(m["relations"] is not None for scene in test for m in scene["match"])
    assert num_relation_texts > 0
    assert metrics["num_test_examples"] == {"answer": 60, "match": 72, "cells": 108, "relations": num_relation_texts}
    assert set(metrics["relations"]["per_class"]) == set(RELATIONS)
    assert set(metrics["relations"]["per_negative_kind"]) <= {"none", "relation", "color", "shape"}
    cells = metrics["cells"]
    assert set(cells["per_class"]) == set(POSITIONS) and cells["num_examples"] == 108
    assert 0.0 <= cells["accuracy"] <= cells["label_accuracy"] <= 1.0
    assert metrics["cells_accuracy"] == cells["accuracy"]
    assert cells["per_question_type"]["position"]["num_examples"] == 12
    assert set(cells["image_missing"]) == {"accuracy", "macro_f1"}
    assert metrics["match"]["per_pair_set"]["hard"]["num_examples"] == 48
    assert metrics["match"]["per_pair_set"]["easy"]["num_examples"] == 24
    assert metrics["match"]["per_negative_kind"]["easy"]["num_examples"] == 12
    for key in ("answer_accuracy", "answer_macro_f1", "match_accuracy", "match_macro_f1", "match_auroc",
                "answer_accuracy_image_missing", "answer_accuracy_text_missing",
                "match_accuracy_image_missing", "match_accuracy_text_missing",
                "match_accuracy_hard", "match_accuracy_easy"):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert set(metrics["answer"]["per_question_type"]) <= set(QUESTION_TYPES)
    assert set(metrics["answer"]["per_class"]) == set(ANSWER_VOCABULARY)
    assert set(metrics["match"]["per_class"]) == {"no", "yes"}
    assert "auroc" in metrics["match"]["image_missing"]
    for kind, value in metrics["answer"]["per_question_type"].items():
        assert metrics[f"answer_accuracy_{kind}"] == value["accuracy"]
    assert (run / "model.keras").exists() and (run / "tokenizer.json").exists()

    serving = tf.saved_model.load(str(run / "export"))
    image = tf.io.encode_png(np.zeros((32, 32, 3), np.uint8))
    out = serving.signatures["classify"](image_bytes=tf.stack([image, tf.constant(b"")]),
                                         text=tf.constant(["is there a red circle?", ""]))
    assert out["answer_probs"].shape == (2, len(ANSWER_VOCABULARY))
    assert out["match_probs"].shape == (2, 2)
    assert out["cells_probs"].shape == (2, len(POSITIONS))
    assert out["relations_probs"].shape == (2, len(RELATIONS))
    assert all(label.decode() in ANSWER_VOCABULARY for label in out["answer_label"].numpy())
    assert set(label.decode() for label in out["match_label"].numpy()) <= {"no", "yes"}

    capsys.readouterr()
    assert main(["eval", str(run)]) == 0
    again = json.loads((run / "metrics.json").read_text())
    for key in ("answer_accuracy", "match_auroc", "answer_accuracy_text_missing"):
        assert again[key] == metrics[key]

    # The evaluation's single pass over all missing-modality conditions equals one pass per condition,
    # over the test examples in `task.data.examples("test")` order.
    task = FusionTask(json.loads((run / "config.json").read_text()), str(run))
    assert isinstance(task.data, ShapesData) and sorted(task.heads) == ["answer", "cells", "match", "relations"]
    model = task.load_model()
    predicted = task.predictions(model)
    together = predicted["probabilities"]
    examples = task.data.examples("test")
    for head in ("answer", "match", "cells"):
        np.testing.assert_array_equal(predicted["labels"][head], examples["labels"][head])
    for column in ("question_type", "negative_kind", "pair_set"):
        np.testing.assert_array_equal(predicted["metadata"][column], examples[column])
    images = task.preprocessor(task.data.shapes.images("test")[examples["scene"]])
    token_ids = task.tokenizer(tf.constant(list(examples["text"])))
    count = len(examples["scene"])
    for name, absent in (("both", ()), ("image_missing", ("image",)), ("text_missing", ("text",))):
        inputs = {"images": images, "token_ids": token_ids,
                  "image_present": np.full(count, 0.0 if "image" in absent else 1.0, "float32"),
                  "text_present": np.full(count, 0.0 if "text" in absent else 1.0, "float32")}
        alone = model.probabilities(model.predict(inputs, batch_size=count, verbose=0))
        for head in ("answer", "match", "cells"):
            np.testing.assert_allclose(together[name][head], np.asarray(alone[head]), atol=1e-5)
    assert not np.allclose(together["both"]["answer"], together["text_missing"]["answer"])

    # The test split fits in one chunk: one `predict` per condition. The report's confusion matrices
    # show what `evaluate` scored, without predicting again.
    calls = []
    predict = model.predict
    monkeypatch.setattr(model, "predict", lambda *args, **kwargs: calls.append(1) or predict(*args, **kwargs))
    task.evaluate(model)
    assert len(calls) == 3 and task.evaluated[0] is model
    assert task.evaluated_predictions(model) is task.evaluated[1] and len(calls) == 3
    assert task.evaluated_predictions(task.load_model()) is not task.evaluated[1]  # another model: predicted anew


def test_training_stream_masks_each_example_to_its_own_head(tmp_path):
    config = zoo.config("shapes-fusion-concat-tiny", **{"data.num_train": 8, "data.num_test": 2,
                                                          "data.num_val": 2, "train.global_batch_size": 8,
                                                          "data.texts_per_image": 1})  # (image, text) pairs
    task = FusionTask(config, str(tmp_path))
    examples = task.data.examples("train")
    assert task.data.tasks == ["answer", "match"] and list(task.heads) == ["answer", "match", "cells"]
    # 5 questions and 4 hard matching pairs per scene, plus one easy negative and one more true caption.
    assert len(examples["scene"]) == 8 * 11 and task.steps_per_epoch == 11
    assert np.sum(examples["negative_kind"] == "easy") == 8
    # Each example trains one of the answer and match heads: its label for the other is -1. The cells
    # head trains on every example but the easy pairs.
    is_answer = examples["head"] == "answer"
    assert is_answer.sum() == 8 * 5 and np.all((examples["head"] == "match") == ~is_answer)
    assert np.all((examples["labels"]["answer"] >= 0) == is_answer)
    assert np.all((examples["labels"]["match"] >= 0) == ~is_answer)
    x, y, w = next(iter(task.epoch_dataset(tf.constant(0, tf.int64))))
    assert x["images"].shape == (8, 48, 48, 3) and x["token_ids"].shape == (8, 24)
    np.testing.assert_array_equal(w["answer"].numpy() + w["match"].numpy(), np.ones(8))
    np.testing.assert_array_equal(np.all(examples["labels"]["cells"] >= 0, axis=1), examples["pair_set"] != "easy")
    # Each epoch's order is a pure function of (seed, epoch).
    again = next(iter(task.epoch_dataset(tf.constant(0, tf.int64))))[0]["token_ids"]
    other = next(iter(task.epoch_dataset(tf.constant(1, tf.int64))))[0]["token_ids"]
    np.testing.assert_array_equal(again, x["token_ids"])
    assert not np.array_equal(other, x["token_ids"])


def test_several_texts_per_image_stream(tmp_path):
    """`data.texts_per_image=K`: B images a step, each with K of its own examples beside it."""
    k, batch = 3, 4  # 4 scenes = 12 texts a step
    config = zoo.config("shapes-fusion-concat-tiny", **{"data.num_train": 8, "data.num_test": 2,
                                                          "data.num_val": 2, "train.global_batch_size": batch * k,
                                                          "data.texts_per_image": k})
    task = FusionTask(config, str(tmp_path))
    assert task.steps_per_epoch == 2  # every scene once an epoch
    examples = task.data.examples("train")
    token_ids = task.tokenizer(tf.constant(list(examples["text"]))).numpy()
    scenes = task.preprocessor(task.data.shapes.images("train")).numpy()

    def epoch(number):
        rows = []
        for x, y, w in task.epoch_dataset(tf.constant(number, tf.int64)):
            assert x["images"].shape == (batch, 48, 48, 3) and x["token_ids"].shape == (batch * k, 24)
            assert x["image_present"].shape == (batch * k,) and w["match"].shape == (batch * k,)
            np.testing.assert_array_equal(w["answer"].numpy() + w["match"].numpy(), np.ones(batch * k))
            for i, image in enumerate(x["images"].numpy()):
                scene = int(np.flatnonzero(np.all(np.abs(scenes - image) < 1e-6, axis=(1, 2, 3)))[0])
                own = token_ids[examples["scene"] == scene]
                for ids in x["token_ids"].numpy()[i * k:(i + 1) * k]:  # image i's texts side by side
                    assert np.any(np.all(own == ids, axis=1)), "a text beside an image that is not its own"
                rows.append((scene, x["token_ids"].numpy()[i * k:(i + 1) * k].tobytes()))
        return rows

    first = epoch(0)
    assert sorted(scene for scene, _ in first) == list(range(8))  # each scene exactly once
    assert epoch(0) == first  # a pure function of (seed, epoch)
    assert epoch(1) != first  # other scene order and other texts drawn
    with pytest.raises(ValueError, match="`data.texts_per_image`=12 is more than the 11 training examples"):
        _ = FusionTask(zoo.config("shapes-fusion-concat-tiny", **{"data.num_train": 8, "data.texts_per_image": 12,
                                                                  "train.global_batch_size": 24}),
                       str(tmp_path / "k")).epoch_dataset(tf.constant(0, tf.int64))
    with pytest.raises(ValueError, match="`train.global_batch_size`=64 must be a multiple of `data.texts_per_image`=11"):
        _ = FusionTask(zoo.config("shapes-fusion-concat-tiny", **{"data.num_train": 8,
                                                                  "train.global_batch_size": 64}),
                       str(tmp_path / "b")).steps_per_epoch


def test_bad_configs_name_the_field(tmp_path):
    with pytest.raises(ValueError, match="data.augment"):
        FusionTask(zoo.config("shapes-fusion-late-tiny", **{"data.augment": True}), str(tmp_path / "a"))
    with pytest.raises(ValueError, match="`model.heads.match` must be a binary head"):
        FusionTask(zoo.config("shapes-fusion-late-tiny", **{"model.heads.match.type": "multiclass"}),
                   str(tmp_path / "b"))
    with pytest.raises(ValueError, match="data.dataset"):
        FusionTask(zoo.config("shapes-fusion-late-tiny", **{"data.dataset": "coco"}), str(tmp_path / "c"))




@pytest.fixture(scope="module")
def memes_file(tmp_path_factory):
    """A Hateful-Memes-style JSONL (`id, img, label, text`) of Shapes matching pairs, with bad rows."""
    root = tmp_path_factory.mktemp("memes")
    (root / "img").mkdir()
    shapes = Shapes(image_size=32, num_train=24, num_val=1, num_test=1)
    rows = []
    for i, scene in enumerate(shapes.scenes("train")):
        (root / "img" / f"{i:05d}.png").write_bytes(tf.io.encode_png(scene["image"]).numpy())
        for j, pair in enumerate(scene["match"]):
            rows.append({"id": f"{i:05d}{j}", "img": f"img/{i:05d}.png", "label": pair["label"], "text": pair["text"]})
    rows[0]["img"] = "img/missing.png"                                          # missing image file
    (root / "img" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 30)
    rows[1]["img"] = "img/corrupt.png"                                          # corrupt PNG
    del rows[2]["label"]                                                        # no label: skipped for fusion
    rows[3]["text"] = ""                                                        # no text: kept, text missing
    path = root / "train.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path), len(rows)


def test_fusion_trains_and_evaluates_on_memes_jsonl(memes_file, tmp_path, capsys, tiny_record_run, text_tower):
    path, num_rows = memes_file
    config = zoo.config("shapes-fusion-late-tiny", **tiny_record_run, **text_tower, **{
        "data.dataset": "jsonl", "data.path": path, "model.fusion_kwargs": {"combine": "mean", "hidden_dim": 16}})
    capsys.readouterr()
    task = task_for_config(config, tmp_path / "run")
    assert ("`data.texts_per_image`=11 does not apply here: jsonl records hold one image and one text each; "
            "using 1.") in capsys.readouterr().out
    assert isinstance(task, FusionTask) and isinstance(task.data, ConvertedData)
    assert task.heads is None  # set from the training labels once the data is ready
    model = task.train(verbose=0)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["model"]["heads"] == {"label": {"type": "binary", "labels": ["0", "1"]}}
    assert task.heads == saved["model"]["heads"]
    assert saved["data"]["texts_per_image"] == 1  # the preset's 11 texts per Shapes scene do not apply
    report = task.data.skip_report()
    assert dict(report.skipped) == {"missing image": 1, "corrupt image": 1, "missing label": 1}
    assert report.kept == num_rows - 3
    metrics = task.evaluate(model)
    for key in ("accuracy", "macro_f1", "accuracy_image_missing", "accuracy_text_missing",
                "baseline_majority_accuracy"):
        assert 0.0 <= metrics[key] <= 1.0
    assert metrics["num_test_examples"] == task.data.num_records("val") > 0
    assert isinstance(metrics["num_test_examples"], int)
    assert metrics["num_skipped_records"] == 3
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert len(history["loss"]) == 1 and np.isfinite(history["loss"][0])
