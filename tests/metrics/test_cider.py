import math

import numpy as np
import pytest

from mmkeras.metrics import cider_d

TOL = 1e-6


def test_matches_pycocoevalcap_on_fixed_corpus(corpus, reference_scores):
    hyps, refs = corpus
    _, expected, expected_per_image = reference_scores(hyps, refs)
    score, per_image = cider_d(hyps, refs)
    assert abs(score - expected) <= TOL
    assert list(per_image) == list(refs)  # dict in, dict out, in the references' order
    for key in refs:
        assert abs(per_image[key] - expected_per_image[key]) <= TOL, key
    assert 0.3 < score < 3.0  # a real spread, not a degenerate corpus
    assert per_image["img_pizza"] == 0.0  # no n-gram in common with its references


def test_list_inputs_return_an_array_in_order(corpus):
    hyps, refs = corpus
    keys = list(refs)
    score, per_image = cider_d([hyps[k] for k in keys], [refs[k] for k in keys])
    dict_score, dict_per_image = cider_d({k: [hyps[k]] for k in keys}, refs)
    assert isinstance(per_image, np.ndarray) and per_image.shape == (len(keys),)
    assert score == dict_score
    np.testing.assert_array_equal(per_image, [dict_per_image[k] for k in keys])


@pytest.mark.parametrize(
    "case", ["shorter_than_refs", "one_word", "empty_hypothesis", "two_images", "perfect_copies"]
)
def test_edge_cases_match_pycocoevalcap(case, corpus, reference_scores):
    hyps, refs = corpus
    if case == "shorter_than_refs":  # the length penalty bites
        hyps = {k: " ".join(h.split()[:2]) for k, h in hyps.items()}
    elif case == "one_word":  # a one-word caption has length 0 (no bigram) in the reference code
        hyps = {k: h.split()[0] for k, h in hyps.items()}
    elif case == "empty_hypothesis":
        hyps = dict(hyps, img_cat="")
    elif case == "two_images":
        hyps = {k: hyps[k] for k in ("img_dog", "img_cat")}
        refs = {k: refs[k] for k in ("img_dog", "img_cat")}
    elif case == "perfect_copies":  # every hypothesis equals its first reference
        hyps = {k: r[0] for k, r in refs.items()}
    _, expected, expected_per_image = reference_scores(hyps, refs)
    score, per_image = cider_d(hyps, refs)
    assert abs(score - expected) <= TOL
    for key in refs:
        assert abs(per_image[key] - expected_per_image[key]) <= TOL, key


def test_single_image_scores_zero(corpus, reference_scores):
    # With one image every reference n-gram has df = N = 1, hence IDF 0.
    hyps, refs = corpus
    hyps, refs = {"d": refs["img_dog"][0]}, {"d": refs["img_dog"]}
    _, expected, _ = reference_scores(hyps, refs)
    score, per_image = cider_d(hyps, refs)
    assert score == expected == 0.0 and per_image == {"d": 0.0}


def test_hand_computed_two_images():
    # N = 2, one reference each, max_n = 1. Image 0: hyp "a b", ref "a c"; image 1: hyp "d", ref "d e".
    # df: a, c -> 1 (image 0); d, e -> 1 (image 1); IDF = log 2 for all of them.
    # Image 0 unigram vectors: hyp {a: L, b: L} (b unseen: df = 1), ref {a: L, c: L} (L = log 2);
    # clipped dot = L * L, norms sqrt(2) L each -> cosine 1/2; no length penalty (max_n = 1).
    # Image 1: hyp {d: L}, ref {d: L, e: L} -> cosine 1/sqrt(2).
    score, per_image = cider_d(["a b", "d"], [["a c"], ["d e"]], max_n=1)
    np.testing.assert_allclose(per_image, [5.0, 10.0 / math.sqrt(2.0)], atol=1e-12)
    assert score == pytest.approx((5.0 + 10.0 / math.sqrt(2.0)) / 2.0, abs=1e-12)


def test_clipping_hand_computed():
    # Image 0: hyp "a a" -> {a: 2L}, ref "a b" -> {a: L, b: L} (L = log 2). The clipped dot is
    # min(2L, L) * L = L^2 (unclipped it would be 2 L^2); norms 2L and sqrt(2) L.
    _, per_image = cider_d(["a a", "z"], [["a b"], ["z"]], max_n=1)
    assert per_image[0] == pytest.approx(10.0 / (2.0 * math.sqrt(2.0)), abs=1e-12)


def test_gaussian_length_penalty():
    # A 3-word prefix of a 6-word reference: bigram lengths 2 and 5, delta = -3, so the image
    # score is exp(-9 / (2 * 6^2)) times its value without the penalty (sigma -> infinity).
    hyps, refs = ["a b c", "x y z"], [["a b c d e f"], ["p q r"]]
    _, with_penalty = cider_d(hyps, refs)
    _, without_penalty = cider_d(hyps, refs, sigma=1e9)
    assert with_penalty[0] > 0
    assert with_penalty[0] == pytest.approx(without_penalty[0] * math.exp(-9.0 / 72.0), rel=1e-12)


@pytest.mark.parametrize(
    "kwargs, match",
    [({"max_n": 0}, "max_n"), ({"sigma": 0.0}, "sigma"), ({"sigma": "6"}, "sigma")],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        cider_d(["a"], [["a"]], **kwargs)


def test_bad_corpus_raises():
    with pytest.raises(ValueError, match="same image ids"):
        cider_d({"a": "x"}, {"a": ["x"], "b": ["y"]})
    with pytest.raises(ValueError, match="empty"):
        cider_d({}, {})
