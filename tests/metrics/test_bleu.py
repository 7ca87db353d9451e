import math

import pytest

from mmkeras.metrics import corpus_bleu

TOL = 1e-6


def _assert_close(ours, reference):
    assert len(ours) == len(reference)
    for a, b in zip(ours, reference):
        assert abs(a - b) <= TOL, (ours, reference)


def test_matches_pycocoevalcap_on_fixed_corpus(corpus, reference_scores):
    hyps, refs = corpus
    expected, _, _ = reference_scores(hyps, refs)
    ours = corpus_bleu(hyps, refs)
    _assert_close(ours, expected)
    # The corpus is not trivial: scores are strictly decreasing and well inside (0, 1).
    assert 0.1 < ours[3] < ours[2] < ours[1] < ours[0] < 1.0


def test_list_and_pycoco_style_inputs_give_the_same_scores(corpus):
    hyps, refs = corpus
    keys = list(refs)
    as_lists = corpus_bleu([hyps[k] for k in keys], [refs[k] for k in keys])
    as_pycoco = corpus_bleu({k: [hyps[k]] for k in keys}, refs)
    assert as_lists == corpus_bleu(hyps, refs) == as_pycoco


@pytest.mark.parametrize(
    "case",
    [
        "shorter_than_refs",
        "no_match_single",
        "single_image",
        "empty_hypothesis",
        "one_word",
        "closest_length_tie",
    ],
)
def test_edge_cases_match_pycocoevalcap(case, corpus, reference_scores):
    hyps, refs = corpus
    if case == "shorter_than_refs":  # every hypothesis short: brevity penalty active
        hyps = {k: " ".join(h.split()[:2]) for k, h in hyps.items()}
    elif case == "no_match_single":  # one image whose caption shares nothing with its refs
        hyps, refs = {"p": hyps["img_pizza"]}, {"p": refs["img_pizza"]}
    elif case == "single_image":
        hyps, refs = {"d": hyps["img_dog"]}, {"d": refs["img_dog"]}
    elif case == "empty_hypothesis":
        hyps = dict(hyps, img_cat="")
    elif case == "one_word":
        hyps, refs = {"b": "birds"}, {"b": refs["img_birds"]}
    elif case == "closest_length_tie":  # hypothesis of 4 words, references of 3 and 5 words
        hyps = {"t": "a cat on mat"}
        refs = {"t": ["a cat sat", "a dog on a mat"]}
    expected, _, _ = reference_scores(hyps, refs)
    _assert_close(corpus_bleu(hyps, refs), expected)


def test_hand_computed_values():
    # Clipping: "the" and "cat" occur twice in the hypothesis, once in the reference.
    # 1-grams: 2 of 4 matched; 2-grams: "the cat" matched once of 3. Hypothesis longer: no penalty.
    scores = corpus_bleu(["the cat the cat"], [["the cat sat"]], max_n=2)
    assert scores[0] == pytest.approx(0.5, abs=1e-9)
    assert scores[1] == pytest.approx(math.sqrt(0.5 * 1 / 3), abs=1e-9)
    # Closest reference length, the shorter on a tie (4 words vs references of 3 and 5): r = 3,
    # so no brevity penalty (r = 5 would give exp(1 - 5/4) = 0.78).
    assert corpus_bleu(["a b c d"], [["a b c", "a b c d e"]], max_n=1)[0] == pytest.approx(
        1.0, abs=1e-9
    )
    # Brevity penalty: 2 words against a 4-word reference, all matched -> exp(1 - 4/2).
    assert corpus_bleu(["a b"], [["a b c d"]], max_n=1)[0] == pytest.approx(math.exp(-1), abs=1e-9)
    # Best-matching reference clips: "a a" against refs "a" and "a a" -> 2 of 2 matched.
    assert corpus_bleu(["a a"], [["a", "a a"]], max_n=1)[0] == pytest.approx(1.0, abs=1e-9)


def test_corpus_level_not_sentence_average():
    # Image 1 matches 2/2 unigrams, image 2 matches 0/2: corpus precision is 2/4, not mean(1, 0).
    scores = corpus_bleu(["a b", "c d"], [["a b"], ["x y"]], max_n=1)
    assert scores[0] == pytest.approx(0.5, abs=1e-9)


def test_max_n_orders():
    hyps, refs = ["a b c d e"], [["a b c d e"]]
    assert len(corpus_bleu(hyps, refs, max_n=1)) == 1
    assert len(corpus_bleu(hyps, refs, max_n=6)) == 6


@pytest.mark.parametrize(
    "hyps, refs, match",
    [
        ({"a": "x"}, {"b": ["x"]}, "same image ids"),
        (["x"], [["x"], ["y"]], "must match one to one"),
        ({"a": "x"}, [["x"]], "both be dicts"),
        ([], [], "empty"),
        (["x"], [[]], r"references`\[0\] is empty"),
        (["x"], ["x y"], "list of reference strings"),
        ([3], [["x"]], "must be a string"),
        ([["x", "y"]], [["x"]], "exactly one"),
        (["x"], [["x", None]], "must hold strings"),
    ],
)
def test_bad_input_raises(hyps, refs, match):
    with pytest.raises(ValueError, match=match):
        corpus_bleu(hyps, refs)


@pytest.mark.parametrize("max_n", [0, -1, 2.0, True])
def test_bad_max_n_raises(max_n):
    with pytest.raises(ValueError, match="max_n"):
        corpus_bleu(["a"], [["a"]], max_n=max_n)
