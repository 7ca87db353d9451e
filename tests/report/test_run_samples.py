"""The report's inputs, computed from duck-typed fake tasks and models (no training)."""

import types

import numpy as np
import pytest

from mmkeras.data.converted_data import ConvertedData
from mmkeras.data.shapes_data import ShapesData
from mmkeras.report.run_samples import (caption_samples, confusion_matrix, fusion_confusion, fusion_heads,
                                        retrieval_samples)
from mmkeras.tasks.fusion_task import FusionTask
from mmkeras.tasks.task import Task


def test_confusion_matrix_counts_and_checks():
    matrix = confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 2, 0], 3)
    np.testing.assert_array_equal(matrix, [[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    assert confusion_matrix([], [], 2).sum() == 0
    with pytest.raises(ValueError, match="y_pred"):
        confusion_matrix([0, 1], [0, 3], 3)
    with pytest.raises(ValueError, match="num_classes"):
        confusion_matrix([0], [0], 0)


class _Predictor:
    def __init__(self, fn):
        self.fn = fn

    def predict(self, x, **kwargs):
        return self.fn(np.asarray(x))


class _Preprocessor:
    """Pixels as float32 (what the model sees); `denormalize` gives them back as uint8 (what the report shows)."""

    def __call__(self, images):
        return np.asarray(images).astype(np.float32)

    def denormalize(self, images):
        return np.asarray(images).astype(np.uint8)


def _matching_fakes(num_scenes=6, dim=4):
    # Image i embeds to e_(i mod dim); the caption "scene i" embeds to e_(i mod dim) too, so
    # scenes i and i + dim tie and the stable ranking puts the lower index first. The test split is
    # read as `ShapesData.evaluation_batches` reads it, from fake Shapes scenes.
    images = np.stack([np.full((2, 2, 3), i, np.uint8) for i in range(num_scenes)])
    scenes = [{"captions": [f"scene {i}", f"other {i}"], "label": i % 2} for i in range(num_scenes)]
    shapes = types.SimpleNamespace(scenes=lambda split: scenes if split == "test" else None,
                                   images=lambda split: images if split == "test" else None)
    data = types.SimpleNamespace(shapes=shapes, family="matching")
    data._true_captions = {}
    data._scene_metadata = lambda scene: ShapesData._scene_metadata(data, scene)
    data.evaluation_batches = lambda preprocessor, batch: ShapesData.evaluation_batches(data, preprocessor, batch)
    eye = np.eye(dim, dtype=np.float32)
    task = types.SimpleNamespace(
        data=data,
        preprocessor=_Preprocessor(),
        tokenizer=lambda texts: np.array([int(t.decode().split()[1]) for t in texts.numpy()]),
        config={"eval": {"batch_size": 8}},
    )
    model = types.SimpleNamespace(
        image_model=_Predictor(lambda x: eye[x[:, 0, 0, 0].astype(int) % dim]),
        text_model=_Predictor(lambda ids: eye[ids.astype(int) % dim]),
    )
    # What the task's evaluation embedded, in the order of the evaluation split.
    task.evaluated_image_embeddings = lambda m: m.image_model.predict(task.preprocessor(images))
    return task, model


def test_retrieval_samples_rank_the_test_images_for_test_captions():
    task, model = _matching_fakes()
    samples = retrieval_samples(task, model, num_queries=3, k=2)
    assert [s["query"] for s in samples] == ["scene 0", "scene 2", "scene 5"]
    first, _, last = samples
    assert first["images"].shape == (2, 2, 2, 3) and first["correct"] == [True, False] and first["rank"] == 1
    assert first["images"].dtype == np.uint8 and first["images"][:, 0, 0, 0].tolist() == [0, 4]
    assert first["scores"] == [1.0, 1.0]
    # "scene 5" ties with scene 1, which comes first: its own image ranks 2.
    assert last["rank"] == 2 and last["correct"] == [False, True]
    assert int(last["images"][1, 0, 0, 0]) == 5
    with pytest.raises(ValueError, match="k"):
        retrieval_samples(task, model, k=7)


def test_fusion_confusion_of_each_head():
    # Each example trains one head: its label for the other head is -1 (left out of that head's matrix).
    labels = {"answer": np.array([0, 2, -1, 1, -1]), "match": np.array([-1, -1, 1, -1, 0])}
    answer_probs = np.array([[0.8, 0.1, 0.1], [0.1, 0.2, 0.7], [0.3, 0.3, 0.4], [0.6, 0.3, 0.1], [1, 0, 0]])
    both = {"answer": answer_probs, "match": np.array([0, 0, 0.9, 0, 0.7])}
    text_missing = {"answer": answer_probs[:, ::-1], "match": 1 - both["match"]}  # never what the matrix reads
    task = types.SimpleNamespace(
        heads={"answer": {"labels": ["no", "yes", "two"]}, "match": {"labels": ["no", "yes"]}},
        evaluated_predictions=lambda model: {"labels": labels, "metadata": {},
                                             "probabilities": {"both": both, "text_missing": text_missing}},
    )
    assert fusion_heads(task) == ["answer", "match"]
    answer = fusion_confusion(task, None, "answer")
    assert answer["labels"] == ["no", "yes", "two"]
    np.testing.assert_array_equal(answer["matrix"], [[1, 0, 0], [1, 0, 0], [0, 0, 1]])
    match = fusion_confusion(task, None, "match")
    np.testing.assert_array_equal(match["matrix"], [[0, 1], [0, 1]])
    with pytest.raises(ValueError, match="head"):
        fusion_confusion(task, None, "caption")


def _record_fakes(batches, dim=4, samples=None, truths=None):
    """A real-data task whose held-out image i is all `i` (pixels shown as they are) and whose
    caption "scene i" embeds like image i: to e_(i mod dim). `batches`: `(images, texts, labels)`,
    yielded by `task.data.evaluation_batches` as its dicts; `truths`: each record's true captions
    (as Shapes records hold them), by batch."""
    consumed = []
    preprocessor = types.SimpleNamespace(denormalize=lambda x: np.asarray(x).astype(np.uint8), image_size=2)

    def evaluation_batches(given, batch_size):
        # the task's preprocessor; `eval.batch_size`, or a multiple of it (fusion reads chunks of batches)
        assert given is preprocessor and batch_size % 4 == 0
        for number, (images, texts, labels) in enumerate(batches):
            batch = {"images": images, "texts": texts, "labels": np.asarray(labels, np.int64),
                     "metadata": [{"id": f"{number}-{i}"} for i in range(len(images))]}
            for metadata, true in zip(batch["metadata"], truths[number] if truths else []):
                metadata["true_captions"] = frozenset(true)
            consumed.append(batch)
            yield batch

    eye = np.eye(dim, dtype=np.float32)
    task = types.SimpleNamespace(
        data=types.SimpleNamespace(evaluation_batches=evaluation_batches),
        preprocessor=preprocessor,
        tokenizer=lambda texts: np.array([int((t.decode().split() or ["0"])[-1]) for t in texts.numpy()]),
        config={"eval": {"batch_size": 4}},
        run_dir=types.SimpleNamespace(read_json=lambda name: {"samples-num_beams=2.json": samples}[name]),
        evaluation_suffix="-num_beams=2",
    )
    model = types.SimpleNamespace(
        image_model=_Predictor(lambda x: eye[x[:, 0, 0, 0].astype(int) % dim]),
        text_model=_Predictor(lambda ids: eye[ids.astype(int) % dim]),
    )
    # What the task's evaluation embedded: every held-out image, in order.
    task.evaluated_image_embeddings = lambda m: m.image_model.predict(np.concatenate([b[0] for b in batches]))
    return task, model, consumed


def _images(*values):
    return np.stack([np.full((2, 2, 3), v, np.float32) for v in values])


def test_retrieval_samples_on_real_data_read_the_held_out_batches():
    batches = [(_images(0, 1, 2), [["scene 0"], [], ["scene 2", "x"]], np.zeros(3, np.int64)),
               (_images(3, 4, 5), [["scene 3"], ["scene 4"], ["scene 5"]], np.zeros(3, np.int64))]
    task, model, _ = _record_fakes(batches)
    samples = retrieval_samples(task, model, num_queries=3, k=2)
    # Queries come from the images with a caption (0, 2, 3, 4, 5), evenly spaced.
    assert [s["query"] for s in samples] == ["scene 0", "scene 3", "scene 5"]
    assert samples[0]["rank"] == 1 and samples[0]["correct"] == [True, False]
    # Image 5 ties with image 1, which comes first.
    assert samples[2]["rank"] == 2 and samples[2]["images"].dtype == np.uint8
    assert samples[2]["images"][:, 0, 0, 0].tolist() == [1, 5]
    assert all(s["true"] is None for s in samples)  # the records do not say what is true of an image
    with pytest.raises(ValueError, match="k"):
        retrieval_samples(task, model, k=7)


def test_retrieval_and_caption_samples_say_whether_each_caption_is_true_where_the_records_know():
    batches = [(_images(0, 1), [["scene 0"], ["scene 1"]], np.zeros(2)), (_images(4, 5), [["scene 4"], ["scene 5"]],
                                                                          np.zeros(2))]
    # "scene 0" is also true of image 4 (which ties with image 0); "scene 5" is false of image 1.
    truths = [[{"scene 0", "gen 0"}, {"scene 1"}], [{"scene 4", "scene 0"}, {"scene 5"}]]
    samples = [{"image_id": i, "generated": f"gen {i}", "references": [f"scene {i}"]} for i in range(2)]
    task, model, _ = _record_fakes(batches, samples=samples, truths=truths)
    first, last = retrieval_samples(task, model, num_queries=2, k=2)
    assert first["query"] == "scene 0" and first["correct"] == [True, False] and first["true"] == [True, True]
    assert last["query"] == "scene 5" and last["correct"] == [False, True] and last["true"] == [False, True]
    assert [c["true"] for c in caption_samples(task, limit=2)] == [True, False]


def test_caption_samples_on_real_data_pair_samples_with_the_captioned_images():
    samples = [{"image_id": i, "generated": f"gen {i}", "references": [f"ref {i}"]} for i in range(3)]
    batches = [(_images(10, 11), [["a"], []], np.zeros(2, np.int64)), (_images(12, 13), [["b"], ["c"]], np.zeros(2)),
               (_images(14), [["d"]], np.zeros(1))]
    task, _, consumed = _record_fakes(batches, samples=samples)
    cards = caption_samples(task, limit=3)
    # Image 11 has no caption, so the evaluation never captioned it: samples 0, 1, 2 are images 10, 12, 13.
    assert [int(c["image"][0, 0, 0]) for c in cards] == [10, 12, 13]
    assert [c["generated"] for c in cards] == ["gen 0", "gen 1", "gen 2"]
    assert cards[1]["references"] == ["ref 1"] and cards[0]["image"].shape == (2, 2, 3)
    assert len(consumed) == 2  # the held-out split is read only as far as the samples go


def test_fusion_confusion_on_real_data_leaves_out_unknown_labels():
    batches = [(_images(0, 1, 2), [["t 0"], [], ["t 0"]], np.array([0, 2, -1])),
               (_images(1, 2), [["t 0"], ["t 0"]], np.array([1, 3]))]
    task, _, _ = _record_fakes(batches)
    seen = []

    def predict(inputs, **kwargs):
        seen.append(inputs["text_present"].tolist())
        return {"label": np.eye(3, dtype=np.float32)[inputs["images"][:, 0, 0, 0].astype(int)]}

    # The real-data examples and the task's predictions as `ConvertedData` and `FusionTask` make them.
    task.data.class_names = ["a", "b", "c"]
    task.data.evaluation_examples = lambda *args: ConvertedData.evaluation_examples(task.data, *args)
    task.evaluated_predictions = lambda model: FusionTask.predictions(task, model)
    task.evaluation_chunk = lambda: Task.evaluation_chunk(task)
    task.heads = None
    task.prepare = lambda: setattr(task, "heads", {"label": {"labels": ["a", "b", "c"]}})  # heads from the data
    model = types.SimpleNamespace(predict=predict, probabilities=lambda outputs: outputs)
    confusion = fusion_confusion(task, model)
    assert confusion["head"] == "label" and confusion["labels"] == ["a", "b", "c"]
    # Kept: (true 0, image 0), (true 2, image 1), (true 1, image 1); -1 and 3 are no training class.
    np.testing.assert_array_equal(confusion["matrix"], [[1, 0, 0], [0, 1, 0], [0, 1, 0]])
    assert seen[0][:2] == [1.0, 0.0]  # the record without a text is predicted with its text marked missing
    assert seen[2] == [0.0] * 4  # and the text-missing condition marks every text missing
    with pytest.raises(ValueError, match="head"):
        fusion_confusion(task, model, "answer")
