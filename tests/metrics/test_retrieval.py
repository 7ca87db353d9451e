import json

import numpy as np
import pytest
import tensorflow as tf

from mmkeras.metrics import retrieval as retrieval_module
from mmkeras.metrics import retrieval_metrics
from mmkeras.metrics import retrieval_ranks


def _brute_force_ranks(images, texts, text_to_image):
    """Full-matrix NumPy ranks: 1 + incorrect items scoring >= the best correct one."""
    scores = images.astype(np.float64) @ texts.astype(np.float64).T  # [N_img, N_txt]
    correct = text_to_image[None, :] == np.arange(len(images))[:, None]
    i2t = np.zeros(len(images), dtype=np.int64)
    for i in range(len(images)):
        if correct[i].any():
            best = scores[i, correct[i]].max()
            i2t[i] = 1 + np.sum((scores[i] >= best) & ~correct[i])
    t2i = np.array(
        [
            1 + np.sum(np.delete(scores[:, t], g) >= scores[g, t])
            for t, g in enumerate(text_to_image)
        ]
    )
    return i2t, t2i


def _random_problem(seed, num_images=37, dim=16):
    rng = np.random.default_rng(seed)
    images = rng.standard_normal((num_images, dim)).astype(np.float32)
    images /= np.linalg.norm(images, axis=1, keepdims=True)
    # 0 to 4 captions per image (images 3 and 11 have none: distractors only).
    counts = rng.integers(1, 5, size=num_images)
    counts[[3, 11]] = 0
    text_to_image = np.repeat(np.arange(num_images), counts)
    rng.shuffle(text_to_image)
    texts = images[text_to_image] + 0.9 * rng.standard_normal((len(text_to_image), dim))
    texts = (texts / np.linalg.norm(texts, axis=1, keepdims=True)).astype(np.float32)
    return images, texts, text_to_image


def test_ranks_match_brute_force_for_every_chunk_size():
    images, texts, text_to_image = _random_problem(seed=0)
    expected_i2t, expected_t2i = _brute_force_ranks(images, texts, text_to_image)
    # The problem is neither trivial nor hopeless.
    assert 1 < np.median(expected_t2i) < 10 and expected_t2i.max() > 10
    assert (expected_i2t == 0).sum() == 2  # the two captionless images
    assert len(texts) == 83
    for chunk_size in (
        1,
        6,
        16,
        37,
        1000,
    ):  # 6 and 16 divide neither 35 queried images nor 83 texts
        i2t, t2i = retrieval_ranks(images, texts, text_to_image, chunk_size=chunk_size)
        np.testing.assert_array_equal(i2t, expected_i2t, err_msg=f"chunk_size={chunk_size}")
        np.testing.assert_array_equal(t2i, expected_t2i, err_msg=f"chunk_size={chunk_size}")


def test_metrics_match_brute_force():
    images, texts, text_to_image = _random_problem(seed=1)
    expected_i2t, expected_t2i = _brute_force_ranks(images, texts, text_to_image)
    expected_i2t = expected_i2t[expected_i2t > 0]
    metrics = retrieval_metrics(images, texts, text_to_image, ks=(1, 5, 10), chunk_size=5)
    for k in (1, 5, 10):
        assert metrics[f"i2t_r{k}"] == pytest.approx(np.mean(expected_i2t <= k))
        assert metrics[f"t2i_r{k}"] == pytest.approx(np.mean(expected_t2i <= k))
    assert metrics["i2t_median_rank"] == np.median(expected_i2t)
    assert metrics["t2i_median_rank"] == np.median(expected_t2i)
    assert metrics["t2i_mean_rank"] == pytest.approx(np.mean(expected_t2i))
    assert metrics["i2t_num_queries"] == len(images) - 2
    assert metrics["t2i_num_queries"] == len(texts)
    assert 0 < metrics["t2i_r1"] < metrics["t2i_r5"] < metrics["t2i_r10"] < 1
    json.dumps(metrics)  # storable as-is in a metrics.json
    assert sorted(metrics) == sorted(
        [f"{d}_r{k}" for d in ("i2t", "t2i") for k in (1, 5, 10)]
        + [f"{d}_{s}" for d in ("i2t", "t2i") for s in ("median_rank", "mean_rank", "num_queries")]
    )


def test_median_rank_hand_constructed():
    # 1-D embeddings: image scores are the products below. Text t belongs to image t.
    images = np.array([[1.0], [2.0], [3.0], [4.0]], np.float32)
    texts = np.array([[1.0], [1.0], [1.0], [1.0]], np.float32)
    # Text-to-image: text t scores images [1, 2, 3, 4]; its image t is beaten by the 3 - t larger ones.
    i2t, t2i = retrieval_ranks(images, texts, [0, 1, 2, 3])
    assert t2i.tolist() == [4, 3, 2, 1]
    # Image-to-text: all texts tie with the correct one, ties count against: rank 4 everywhere.
    assert i2t.tolist() == [4, 4, 4, 4]
    metrics = retrieval_metrics(images, texts, [0, 1, 2, 3], ks=(1, 2))
    assert metrics["t2i_median_rank"] == 2.5
    assert metrics["t2i_r1"] == 0.25 and metrics["t2i_r2"] == 0.5
    assert metrics["i2t_median_rank"] == 4.0 and metrics["i2t_r1"] == 0.0


def test_any_caption_counts_for_image_to_text():
    images = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    # Image 0 owns a poor caption (text 0, beaten by image 1's text 1) and a perfect one (text 2).
    texts = np.array([[0.2, 0.98], [0.5, 0.87], [1.0, 0.0]], np.float32)
    i2t, t2i = retrieval_ranks(images, texts, [0, 1, 0])
    # Image 0: its best caption (text 2) is first; counting only text 0 would give rank 2.
    # Image 1: text 0 (another image's) scores 0.98 > 0.87.
    assert i2t.tolist() == [1, 2]
    assert t2i.tolist() == [2, 1, 1]


def test_ties_count_against_the_query():
    # A collapsed model: every embedding equal. Every query gets the worst possible rank.
    images = np.ones((5, 3), np.float32)
    texts = np.ones((8, 3), np.float32)
    text_to_image = np.array([0, 0, 1, 2, 2, 2, 3, 4])
    i2t, t2i = retrieval_ranks(images, texts, text_to_image, chunk_size=2)
    assert t2i.tolist() == [5] * 8
    captions_per_image = np.bincount(text_to_image)
    assert i2t.tolist() == (8 - captions_per_image + 1).tolist()
    metrics = retrieval_metrics(images, texts, text_to_image, ks=(1, 100))
    assert metrics["i2t_r1"] == metrics["t2i_r1"] == 0.0
    assert metrics["i2t_r100"] == metrics["t2i_r100"] == 1.0  # K beyond the gallery size


def test_query_chunks_bound_the_score_matrix(monkeypatch):
    """Each scoring call sees at most `chunk_size` queries: never the full matrix."""
    seen = []
    original = retrieval_module._chunk_ranks

    def spy(queries, gallery, query_ids, gallery_owner):
        seen.append((tuple(queries.shape), tuple(gallery.shape)))
        return original(queries, gallery, query_ids, gallery_owner)

    monkeypatch.setattr(retrieval_module, "_chunk_ranks", spy)
    images, texts, text_to_image = _random_problem(seed=2)
    retrieval_ranks(images, texts, text_to_image, chunk_size=8)
    assert seen and all(q[0] == 8 for q, _ in seen)
    assert {g[0] for _, g in seen} == {len(images), len(texts)}
    # ceil(35 captioned images / 8) + ceil(N_txt / 8) calls.
    assert len(seen) == -(-35 // 8) + -(-len(texts) // 8)


def test_accepts_tensors_float64_and_bfloat16():
    images, texts, text_to_image = _random_problem(seed=3)
    expected = retrieval_metrics(images, texts, text_to_image)
    from_tensors = retrieval_metrics(
        tf.constant(images), tf.constant(texts.astype(np.float64)), tf.constant(text_to_image)
    )
    assert from_tensors == expected
    images_bf16 = tf.cast(images, tf.bfloat16)
    from_bf16 = retrieval_metrics(images_bf16, texts, text_to_image)
    assert from_bf16 == retrieval_metrics(tf.cast(images_bf16, tf.float32), texts, text_to_image)


@pytest.mark.parametrize(
    "images, texts, ids, kwargs, match",
    [
        (np.ones((3,)), np.ones((2, 4)), [0, 1], {}, "image_embeddings` must be a 2-D"),
        (np.ones((0, 4)), np.ones((2, 4)), [0, 1], {}, "image_embeddings` must be non-empty"),
        (np.ones((3, 4)), np.ones((2, 5)), [0, 1], {}, "same width D"),
        (
            np.ones((3, 4)),
            np.ones((2, 4)),
            [0, 1, 2],
            {},
            r"text_to_image` must have shape \[N_txt\]",
        ),
        (np.ones((3, 4)), np.ones((2, 4)), [0, 3], {}, r"in \[0, N_img\)"),
        (np.ones((3, 4)), np.ones((2, 4)), [-1, 0], {}, r"in \[0, N_img\)"),
        (np.ones((3, 4)), np.ones((2, 4)), [0.0, 1.0], {}, "integer image indices"),
        (np.full((3, 4), np.nan), np.ones((2, 4)), [0, 1], {}, "NaN"),
        (np.ones((3, 4), bool), np.ones((2, 4)), [0, 1], {}, "must hold numbers"),
        (np.ones((3, 4)), np.full((2, 4), "a"), [0, 1], {}, "text_embeddings` must hold numbers"),
        (np.ones((3, 4)), np.ones((2, 4)), [0, 1], {"chunk_size": 0}, "chunk_size"),
        (np.ones((3, 4)), np.ones((2, 4)), [0, 1], {"ks": (1, 0)}, "ks"),
        (np.ones((3, 4)), np.ones((2, 4)), [0, 1], {"ks": ()}, "ks"),
    ],
)
def test_bad_input_raises(images, texts, ids, kwargs, match):
    with pytest.raises(ValueError, match=match):
        retrieval_metrics(images, texts, ids, **kwargs)
