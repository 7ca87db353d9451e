"""`mmkeras train` / `mmkeras eval` of a fusion preset end to end on a few Shapes scenes (tiny budget)."""

import json

import numpy as np
import pytest
import tensorflow as tf

from mmkeras import zoo
from mmkeras.cli import main
from mmkeras.data.shapes import ANSWER_VOCABULARY, QUESTION_TYPES
from mmkeras.tasks.fusion_task import FusionTask

TINY = ["--set", "data.num_train=24", "--set", "data.num_test=12", "--set", "data.num_val=4",
        "--set", "data.image_size=32",
        "--set", "image_encoder.num_layers=1", "--set", "text_encoder.num_layers=1",
        "--epochs", "1", "--global-batch", "33", "--no-jit"]


def test_train_evaluate_export_and_eval_again(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "shapes-fusion-late-tiny", "--output", str(run), "--quiet", *TINY]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    # 12 test scenes: 5 questions, 4 hard caption pairs and 2 easy ones each.
    assert metrics["num_test_examples"] == {"answer": 60, "match": 72}
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
    assert all(label.decode() in ANSWER_VOCABULARY for label in out["answer_label"].numpy())
    assert set(label.decode() for label in out["match_label"].numpy()) <= {"no", "yes"}

    capsys.readouterr()
    assert main(["eval", str(run)]) == 0
    again = json.loads((run / "metrics.json").read_text())
    for key in ("answer_accuracy", "match_auroc", "answer_accuracy_text_missing"):
        assert again[key] == metrics[key]

    # The evaluation's single pass over all missing-modality conditions equals one pass per condition.
    task = FusionTask(json.loads((run / "config.json").read_text()), str(run))
    model = task.load_model()
    together = task.predict_conditions(model, "test")
    for name, absent in (("image_missing", ("image",)), ("text_missing", ("text",))):
        alone = task.predict(model, "test", absent)
        for head in ("answer", "match"):
            np.testing.assert_allclose(together[name][head], alone[head], atol=1e-6)
    assert not np.allclose(together["both"]["answer"], together["text_missing"]["answer"])


def test_training_stream_masks_each_example_to_its_own_head(tmp_path):
    config = zoo.config("shapes-fusion-concat-tiny", **{"data.num_train": 8, "data.num_test": 2,
                                                          "data.num_val": 2, "train.global_batch_size": 8,
                                                          "data.texts_per_image": 1})  # (image, text) pairs
    task = FusionTask(config, str(tmp_path))
    examples = task.examples("train")
    # 5 questions and 4 hard matching pairs per scene, plus one easy negative and one more true caption.
    assert len(examples["scene"]) == 8 * 11 and task.steps_per_epoch == 11
    assert np.sum(examples["negative_kind"] == "easy") == 8
    x, y, w = next(iter(task.epoch_dataset(tf.constant(0, tf.int64))))
    assert x["images"].shape == (8, 64, 64, 3) and x["token_ids"].shape == (8, 24)
    np.testing.assert_array_equal(w["answer"].numpy() + w["match"].numpy(), np.ones(8))
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
    examples = task.examples("train")
    scenes = task.preprocessor(task.shapes.images("train")).numpy()

    def epoch(number):
        rows = []
        for x, y, w in task.epoch_dataset(tf.constant(number, tf.int64)):
            assert x["images"].shape == (batch, 64, 64, 3) and x["token_ids"].shape == (batch * k, 24)
            assert x["image_present"].shape == (batch * k,) and w["match"].shape == (batch * k,)
            np.testing.assert_array_equal(w["answer"].numpy() + w["match"].numpy(), np.ones(batch * k))
            for i, image in enumerate(x["images"].numpy()):
                scene = int(np.flatnonzero(np.all(np.abs(scenes - image) < 1e-6, axis=(1, 2, 3)))[0])
                own = examples["token_ids"][examples["scene"] == scene]
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
