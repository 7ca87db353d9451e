"""Semantic retrieval metrics against a brute-force reference, their tie-breaking and chance levels."""

import math

import numpy as np
import pytest

from mmkeras.metrics.retrieval import retrieval_metrics
from mmkeras.metrics.semantic_retrieval import score_retrieval_metrics, semantic_retrieval_metrics


def _reference(queries, gallery, relevant, k):
    """sR@K and P@K by sorting every row (no ties in continuous random scores)."""
    hits, precisions = [], []
    for query, row in zip(queries, relevant):
        if not row.any():
            continue
        top = np.argsort(-(gallery @ query), kind="stable")[:k]
        hits.append(row[top].any())
        precisions.append(row[top].sum() / k)
    return np.mean(hits), np.mean(precisions)


def test_matches_a_brute_force_reference_both_ways():
    rng = np.random.default_rng(0)
    images, texts = rng.normal(size=(40, 8)), rng.normal(size=(90, 8))
    truth = rng.random((90, 40)) < 0.08
    truth[3] = False  # a text true of no image: left out and counted
    metrics = semantic_retrieval_metrics(images, texts, truth, ks=(1, 5, 10), chunk_size=7)
    for k in (1, 5, 10):
        sr, p = _reference(texts.astype("float32"), images.astype("float32"), truth, k)
        assert metrics[f"t2i_sr{k}"] == pytest.approx(sr) and metrics[f"t2i_p{k}"] == pytest.approx(p)
        sr, p = _reference(images.astype("float32"), texts.astype("float32"), truth.T, k)
        assert metrics[f"i2t_sr{k}"] == pytest.approx(sr) and metrics[f"i2t_p{k}"] == pytest.approx(p)
    assert metrics["t2i_queries_without_truth"] == int((~truth.any(axis=1)).sum()) >= 1


def test_chance_levels_are_the_exact_expectations():
    truth = np.zeros((3, 10), bool)
    truth[0, :1], truth[1, :3], truth[2, :5] = True, True, True
    metrics = semantic_retrieval_metrics(np.eye(10), np.ones((3, 10)), truth, ks=(1, 5))
    expected = np.mean([1 - math.comb(10 - m, 5) / math.comb(10, 5) for m in (1, 3, 5)])
    assert metrics["chance_t2i_sr5"] == pytest.approx(expected)
    assert metrics["chance_t2i_sr1"] == pytest.approx(np.mean([0.1, 0.3, 0.5]))
    assert metrics["chance_t2i_p5"] == pytest.approx(np.mean([0.1, 0.3, 0.5]))


def test_ties_are_broken_at_random_by_the_seed():
    # Every score equal: a query's hit is a draw, so the mean is the chance level, not 0 or 1.
    truth = np.zeros((3000, 10), bool)
    truth[:, 0] = True
    images, texts = np.ones((10, 4)), np.ones((3000, 4))
    first = semantic_retrieval_metrics(images, texts, truth, ks=(1,), seed=0)
    assert first["t2i_sr1"] == pytest.approx(0.1, abs=0.02)
    assert semantic_retrieval_metrics(images, texts, truth, ks=(1,), seed=0)["t2i_sr1"] == first["t2i_sr1"]
    assert semantic_retrieval_metrics(images, texts, truth, ks=(1,), seed=1)["t2i_sr1"] != first["t2i_sr1"]


def test_a_right_answer_that_is_not_the_querys_own_counts():
    # Two images with the same content and each one caption: the usual R@1 counts the twin as a miss.
    images = np.array([[1.0, 0.0], [1.0, 0.0]])
    texts = np.array([[1.0, 0.0], [1.0, 0.0]])
    truth = np.ones((2, 2), bool)
    semantic = semantic_retrieval_metrics(images, texts, truth, ks=(1,))
    assert semantic["t2i_sr1"] == 1.0 and semantic["i2t_sr1"] == 1.0
    assert retrieval_metrics(images, texts, np.array([0, 1]))["t2i_r1"] < 1.0


def test_bad_shapes_are_clear_errors():
    with pytest.raises(ValueError, match="truth"):
        semantic_retrieval_metrics(np.eye(3), np.eye(3), np.ones((2, 3), bool))
    with pytest.raises(ValueError, match="same D"):
        semantic_retrieval_metrics(np.eye(3), np.ones((2, 4)), np.ones((2, 3), bool))


def test_a_score_matrix_gives_the_figures_of_the_embeddings_it_comes_from():
    rng = np.random.default_rng(3)
    images, texts = rng.normal(size=(30, 8)), rng.normal(size=(70, 8))
    truth = rng.random((70, 30)) < 0.2
    expected = semantic_retrieval_metrics(images, texts, truth, seed=4)
    assert score_retrieval_metrics(texts @ images.T, truth, seed=4) == pytest.approx(expected)


def test_with_each_caption_own_image_as_truth_score_metrics_are_recall_at_k():
    rng = np.random.default_rng(5)
    images, texts = rng.normal(size=(40, 6)), rng.normal(size=(120, 6))
    owner = np.repeat(np.arange(40), 3)
    own = np.zeros((120, 40), bool)
    own[np.arange(120), owner] = True
    exact = retrieval_metrics(images, texts, owner)  # no ties in continuous scores: both rank alike
    scored = score_retrieval_metrics(texts @ images.T, own)
    for d in ("t2i", "i2t"):
        for k in (1, 5, 10):
            assert scored[f"{d}_sr{k}"] == pytest.approx(exact[f"{d}_r{k}"])


def test_score_metrics_break_ties_at_random_and_refuse_bad_scores():
    scores = np.zeros((200, 10))  # every image ties: each query's own image comes first one time in ten
    own = np.zeros((200, 10), bool)
    own[np.arange(200), np.arange(200) % 10] = True
    assert score_retrieval_metrics(scores, own, ks=(1,))["t2i_sr1"] == pytest.approx(0.1, abs=0.05)
    with pytest.raises(ValueError, match="must both be"):
        score_retrieval_metrics(scores[:, :5], own)
    with pytest.raises(ValueError, match="NaN"):
        score_retrieval_metrics(np.full((200, 10), np.nan), own)
