"""`MatchingTask`: `mmkeras train` / `mmkeras eval` end to end on a few Shapes scenes (tiny budget); settings
it refuses."""

import json

import numpy as np
import pytest
import tensorflow as tf

from mmkeras import zoo
from mmkeras.cli import main
from mmkeras.data.shapes_data import ShapesData
from mmkeras.tasks.matching_task import MatchingTask


def test_train_evaluate_export_and_eval_again(tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "shapes-siglip-tiny", "--output", str(run), "--quiet",
            "--set", "data.num_train=128", "--set", "data.num_test=32", "--set", "data.num_val=8",
            "--set", "data.image_size=32", "--set", "image_encoder.num_layers=1", "--set", "text_encoder.num_layers=1",
            "--set", "train.tower_pretraining_steps=0", "--epochs", "1", "--global-batch", "32"]
    assert main(args) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    for key in ("i2t_r1", "i2t_r5", "i2t_r10", "t2i_r1", "t2i_r5", "t2i_r10", "t2i_median_rank", "zero_shot_top1"):
        assert 0.0 <= metrics[key] <= (1.0 if "rank" not in key else 32)
    assert metrics["num_test_images"] == 32 and metrics["num_test_captions"] == 32 * 5
    config = json.loads((run / "config.json").read_text())
    assert config["train"]["epochs"] == 1 and config["model"]["loss"] == "siglip"
    assert (run / "model.keras").exists() and (run / "logs").is_dir()

    serving = tf.saved_model.load(str(run / "export"))
    assert set(serving.signatures) >= {"embed_image", "embed_text", "similarity"}
    emb = serving.signatures["embed_text"](text=tf.constant(["a red circle", ""]))["embeddings"].numpy()
    np.testing.assert_allclose(np.linalg.norm(emb, axis=-1), 1.0, atol=1e-5)

    capsys.readouterr()
    assert main(["eval", str(run)]) == 0
    again = json.loads((run / "metrics.json").read_text())
    for key in ("t2i_r1", "i2t_r5", "zero_shot_top1"):
        assert again[key] == metrics[key]


def test_tasks_that_pair_one_caption_per_image_refuse_captions_per_image(tmp_path):
    overrides = {"data.num_train": 16, "data.num_val": 4, "data.num_test": 4, "train.global_batch_size": 8}
    assert isinstance(MatchingTask(zoo.config("shapes-clip-tiny", **overrides), str(tmp_path)).data, ShapesData)
    config = zoo.config("shapes-clip-tiny", **overrides, **{"data.captions_per_image": 2})
    with pytest.raises(ValueError, match="`data.captions_per_image` must be 1 for MatchingTask on 'shapes' data"):
        MatchingTask(config, str(tmp_path))
    config = zoo.config("shapes-clip-tiny", **overrides, **{"data.texts_per_image": 2})
    with pytest.raises(ValueError, match="`data.texts_per_image` must be 1 for MatchingTask on 'shapes' data"):
        MatchingTask(config, str(tmp_path))


def _small_task(tmp_path, num_test=24):
    """A matching task on a few Shapes scenes with one-block towers (evaluated untrained)."""
    config = zoo.config("shapes-clip-tiny", **{"data.num_train": 16, "data.num_val": 8, "data.num_test": num_test,
                                               "data.image_size": 32, "image_encoder.num_layers": 1,
                                               "text_encoder.num_layers": 1, "train.global_batch_size": 8})
    return MatchingTask(config, str(tmp_path))


def test_text_to_image_recall_by_caption_kind_adds_up_to_the_overall_recall(tmp_path):
    task = _small_task(tmp_path)
    metrics = task.evaluate(task.build_model())  # untrained: the ranks still spread over the gallery
    by_kind = metrics["t2i_by_text_kind"]
    assert set(by_kind) <= {"inventory", "total", "shape_count", "color_count", "position", "relation"}
    assert len(by_kind) >= 4 and sum(v["num_queries"] for v in by_kind.values()) == metrics["num_test_captions"]
    for k in (1, 5, 10):
        overall = sum(v[f"r{k}"] * v["num_queries"] for v in by_kind.values()) / metrics["num_test_captions"]
        assert overall == pytest.approx(metrics[f"t2i_r{k}"], abs=1e-9)



def test_evaluation_embeds_each_chunk_of_images_in_one_predict_call(tmp_path, monkeypatch):
    import mmkeras.tasks.matching_task as matching_module
    import mmkeras.tasks.task as task_module

    task = _small_task(tmp_path)  # 24 test scenes
    task.config["eval"]["batch_size"] = 4
    model = task.build_model()
    calls, predict = [], matching_module.predict_full_batches

    def counted(submodel, inputs, batch):
        if submodel.name == "image_model":
            calls.append(len(inputs))
        return predict(submodel, inputs, batch)

    monkeypatch.setattr(matching_module, "predict_full_batches", counted)
    whole = task.embed(model)
    assert calls == [24]  # 24 images of 32 px fit in one 64 MiB chunk
    # Chunks of 2 batches (8 images): three calls, the same embeddings and pairs.
    monkeypatch.setattr(task_module, "EVALUATION_CHUNK_BYTES", 8 * 4 * 3 * 32 * 32)
    assert task.evaluation_chunk() == 8
    calls.clear()
    chunked = task.embed(model)
    assert calls == [8, 8, 8]
    np.testing.assert_allclose(chunked[0], whole[0], atol=1e-6)
    for a, b in zip(chunked[1:], whole[1:]):
        np.testing.assert_array_equal(a, b)
    # Less than one batch's worth of bytes still reads whole batches.
    monkeypatch.setattr(task_module, "EVALUATION_CHUNK_BYTES", 1)
    assert task.evaluation_chunk() == 4


def test_the_report_ranks_with_the_embeddings_the_evaluation_made(tmp_path, monkeypatch):
    import mmkeras.tasks.matching_task as matching_module
    from mmkeras.report.run_samples import retrieval_samples

    task = _small_task(tmp_path)
    model = task.build_model()
    calls, predict = [], matching_module.predict_full_batches

    def counted(submodel, inputs, batch):
        calls.append(submodel.name)
        return predict(submodel, inputs, batch)

    monkeypatch.setattr(matching_module, "predict_full_batches", counted)
    task.evaluate(model)
    embedded = task.evaluated[1]
    assert calls.count("image_model") == 1
    np.testing.assert_array_equal(task.evaluated_image_embeddings(model), embedded)
    samples = retrieval_samples(task, model, num_queries=2, k=3)
    assert calls.count("image_model") == 1  # the report did not embed the images again
    assert [len(s["scores"]) for s in samples] == [3, 3]
    # Another model's embeddings are computed, not taken from the evaluation of the first.
    other = task.build_model()
    np.testing.assert_allclose(task.evaluated_image_embeddings(other), task.embed(other)[0], atol=1e-6)
    assert calls.count("image_model") == 3
    assert not np.allclose(task.evaluated_image_embeddings(other), embedded)


def test_semantic_recall_counts_any_image_the_caption_is_true_of(tmp_path):
    from mmkeras.data.shapes import Shapes

    task = _small_task(tmp_path)
    metrics = task.evaluate(task.build_model())
    # Each caption is true of its own image, so a semantic hit includes every exact hit, and often more.
    for k in (1, 5, 10):
        assert metrics[f"t2i_sr{k}"] >= metrics[f"t2i_r{k}"] and metrics[f"i2t_sr{k}"] >= metrics[f"i2t_r{k}"]
        assert 0 < metrics[f"chance_t2i_sr{k}"] < 1
    # The chance level follows from how many test images each caption is true of.
    scenes = task.data.shapes.scenes("test")
    truth = np.array([[c in Shapes.true_captions(s) for s in scenes] for t in scenes for c in t["captions"]])
    assert metrics["chance_t2i_sr1"] == pytest.approx(np.mean(truth.sum(axis=1) / len(scenes)))
    assert metrics["t2i_queries_without_truth"] == 0
    for figures in metrics["t2i_by_text_kind"].values():
        assert {"t2i_sr1", "t2i_sr5", "chance_t2i_sr5"} <= set(figures)


def test_shapes_evaluation_sets_the_model_beside_the_bayes_ceiling_and_the_bag_of_attributes(tmp_path):
    from mmkeras.data.shapes_references import reference_scores
    from mmkeras.metrics.semantic_retrieval import score_retrieval_metrics

    task = _small_task(tmp_path, num_test=40)
    metrics = task.evaluate(task.build_model())
    references = metrics["references"]
    assert set(references) == {"bayes_oracle", "bag_of_attributes"}
    scenes = task.data.shapes.scenes("test")
    texts = [c for s in scenes for c in s["captions"]]
    own = np.zeros((len(texts), len(scenes)), bool)
    own[np.arange(len(texts)), np.repeat(np.arange(len(scenes)), 5)] = True
    oracle = score_retrieval_metrics(reference_scores(texts, scenes)["bayes_oracle"], own)
    for d in ("t2i", "i2t"):
        for k in (1, 5, 10):  # R@K of the ranker, ties at random, and the model's share of the ceiling
            assert references["bayes_oracle"][f"{d}_r{k}"] == oracle[f"{d}_sr{k}"]
            assert metrics["share_of_ceiling"][f"{d}_r{k}"] == pytest.approx(metrics[f"{d}_r{k}"] / oracle[f"{d}_sr{k}"])
            assert references["bayes_oracle"][f"{d}_sr{k}"] == 1.0  # it ranks true captions / images first
        assert references["bayes_oracle"][f"{d}_r5"] > references["bag_of_attributes"][f"{d}_r5"]
    by_kind = references["bag_of_attributes"]["t2i_by_text_kind"]
    assert set(by_kind) == set(metrics["t2i_by_text_kind"])
    assert all({"r1", "r5", "r10", "t2i_sr1", "t2i_sr5"} == set(v) for v in by_kind.values())
