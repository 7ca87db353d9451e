"""The report's inputs, computed from duck-typed fake tasks and models (no training)."""

import types

import numpy as np
import pytest

from mmkeras.report.run_samples import confusion_matrix, fusion_confusion, retrieval_samples


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


def _matching_fakes(num_scenes=6, dim=4):
    # Image i embeds to e_(i mod dim); the caption "scene i" embeds to e_(i mod dim) too, so
    # scenes i and i + dim tie and the stable ranking puts the lower index first.
    images = np.stack([np.full((2, 2, 3), i, np.uint8) for i in range(num_scenes)])
    scenes = [{"captions": [f"scene {i}", f"other {i}"]} for i in range(num_scenes)]
    eye = np.eye(dim, dtype=np.float32)
    task = types.SimpleNamespace(
        shapes=types.SimpleNamespace(scenes=lambda split: scenes, images=lambda split: images),
        preprocessor=lambda x: np.asarray(x)[:, 0, 0, 0],
        tokenizer=lambda texts: np.array([int(t.decode().split()[1]) for t in texts.numpy()]),
        config={"eval": {"batch_size": 8}},
    )
    model = types.SimpleNamespace(
        image_model=_Predictor(lambda ids: eye[ids.astype(int) % dim]),
        text_model=_Predictor(lambda ids: eye[ids.astype(int) % dim]),
    )
    return task, model


def test_retrieval_samples_rank_the_test_images_for_test_captions():
    task, model = _matching_fakes()
    samples = retrieval_samples(task, model, num_queries=3, k=2)
    assert [s["query"] for s in samples] == ["scene 0", "scene 2", "scene 5"]
    first, _, last = samples
    assert first["images"].shape == (2, 2, 2, 3) and first["correct"] == [True, False] and first["rank"] == 1
    assert first["scores"] == [1.0, 1.0]
    # "scene 5" ties with scene 1, which comes first: its own image ranks 2.
    assert last["rank"] == 2 and last["correct"] == [False, True]
    assert int(last["images"][1, 0, 0, 0]) == 5
    with pytest.raises(ValueError, match="k"):
        retrieval_samples(task, model, k=7)


def test_fusion_confusion_of_each_head():
    examples = {
        "task": np.array(["answer", "answer", "match", "answer", "match"]),
        "answer_id": np.array([0, 2, -1, 1, -1]),
        "match_label": np.array([-1, -1, 1, -1, 0]),
    }
    answer_probs = np.array([[0.8, 0.1, 0.1], [0.1, 0.2, 0.7], [0.3, 0.3, 0.4], [0.6, 0.3, 0.1], [1, 0, 0]])
    task = types.SimpleNamespace(
        tasks=["answer", "match"],
        heads={"answer": {"labels": ["no", "yes", "two"]}, "match": {"labels": ["no", "yes"]}},
        examples=lambda split: examples,
        predict=lambda model, split: {"answer": answer_probs, "match": np.array([0, 0, 0.9, 0, 0.7])},
    )
    answer = fusion_confusion(task, None, "answer")
    assert answer["labels"] == ["no", "yes", "two"]
    np.testing.assert_array_equal(answer["matrix"], [[1, 0, 0], [1, 0, 0], [0, 0, 1]])
    match = fusion_confusion(task, None, "match")
    np.testing.assert_array_equal(match["matrix"], [[0, 1], [0, 1]])
    with pytest.raises(ValueError, match="head"):
        fusion_confusion(task, None, "caption")
