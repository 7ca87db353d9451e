import itertools
import json
import warnings

import numpy as np
import pytest

from mmkeras.metrics import accuracy
from mmkeras.metrics import auroc
from mmkeras.metrics import classification_metrics
from mmkeras.metrics import macro_f1
from mmkeras.metrics import multilabel_macro_f1
from mmkeras.metrics import multilabel_metrics
from mmkeras.metrics import per_class_report

# Hand-checked example. Class 3 is predicted once but never true; class 4 ("fox") never occurs.
Y_TRUE = [0, 0, 0, 1, 1, 2, 2, 2]
Y_PRED = [0, 1, 0, 1, 2, 2, 2, 3]
NAMES = ["cat", "dog", "owl", "emu", "fox"]
# class: (tp, predicted, support) -> precision, recall, f1
# cat: (2, 2, 3) -> 1, 2/3, 4/5 | dog: (1, 2, 2) -> 1/2, 1/2, 1/2 | owl: (2, 3, 3) -> 2/3, 2/3, 2/3
# emu: (0, 1, 0) -> 0, 0, 0 (counted in the macro average) | fox: absent -> 0, 0, 0 (left out)
EXPECTED_MACRO_F1 = (4 / 5 + 1 / 2 + 2 / 3 + 0) / 4


def test_accuracy_hand_computed():
    assert accuracy(Y_TRUE, Y_PRED) == 5 / 8
    assert accuracy(np.array([1, 1]), np.array([1, 1])) == 1.0


def test_macro_f1_hand_computed():
    assert macro_f1(Y_TRUE, Y_PRED) == pytest.approx(EXPECTED_MACRO_F1, abs=1e-12)
    # A class absent from both y_true and y_pred does not change the average.
    assert macro_f1(Y_TRUE, Y_PRED, num_classes=5) == pytest.approx(EXPECTED_MACRO_F1, abs=1e-12)
    # A class only in y_true (never predicted) counts with F1 = 0.
    assert macro_f1([0, 1], [0, 0]) == pytest.approx((2 / 3 + 0) / 2, abs=1e-12)
    assert macro_f1([2, 2, 2], [2, 2, 2]) == 1.0


def test_per_class_report_hand_computed():
    report = per_class_report(Y_TRUE, Y_PRED, class_names=NAMES)
    assert list(report) == NAMES
    expected = {
        "cat": (1.0, 2 / 3, 4 / 5, 3),
        "dog": (0.5, 0.5, 0.5, 2),
        "owl": (2 / 3, 2 / 3, 2 / 3, 3),
        "emu": (0.0, 0.0, 0.0, 0),
        "fox": (0.0, 0.0, 0.0, 0),
    }
    for name, (p, r, f, s) in expected.items():
        row = report[name]
        assert row["precision"] == pytest.approx(p, abs=1e-12)
        assert row["recall"] == pytest.approx(r, abs=1e-12)
        assert row["f1"] == pytest.approx(f, abs=1e-12)
        assert row["support"] == s and isinstance(row["support"], int)
    assert list(per_class_report([0, 1], [1, 1])) == ["0", "1"]


def _auroc_by_pairs(y_true, y_score):
    """Definition: P(score_pos > score_neg) + 1/2 P(tie), over all positive-negative pairs."""
    pos = [s for t, s in zip(y_true, y_score) if t == 1]
    neg = [s for t, s in zip(y_true, y_score) if t == 0]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


def test_auroc_hand_computed_and_ties():
    assert auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
    assert auroc([0, 1], [0.3, 0.3]) == 0.5  # a full tie
    assert auroc([1, 1, 0], [2.0, 3.0, -1.0]) == 1.0
    assert auroc([1, 1, 0], [-2.0, -3.0, 1.0]) == 0.0
    assert auroc(np.array([True, False, True]), [0.9, 0.5, 0.5]) == 0.75


def test_auroc_matches_pair_counting_with_many_ties():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 2, size=60)
    y_score = rng.integers(0, 6, size=60) / 5.0  # only 6 distinct values: many ties
    assert auroc(y_true, y_score) == pytest.approx(_auroc_by_pairs(y_true, y_score), abs=1e-12)
    # Only the order matters: a monotone transform keeps the value.
    assert auroc(y_true, np.exp(3 * y_score)) == pytest.approx(auroc(y_true, y_score), abs=1e-12)


def test_classification_metrics_from_labels():
    metrics = classification_metrics(Y_TRUE, np.array(Y_PRED), class_names=NAMES)
    assert metrics["num_examples"] == 8 and metrics["num_classes"] == 5
    assert metrics["accuracy"] == 5 / 8
    assert metrics["macro_f1"] == pytest.approx(EXPECTED_MACRO_F1, abs=1e-12)
    assert metrics["macro_f1_excluded_classes"] == ["fox"]
    assert metrics["per_class"] == per_class_report(Y_TRUE, Y_PRED, class_names=NAMES)
    assert "auroc" not in metrics and "auroc_ovr_macro" not in metrics
    assert json.loads(json.dumps(metrics)) == metrics


def test_classification_metrics_binary_scores():
    y_true = [0, 0, 1, 1, 1]
    logits = np.array([-2.0, 0.5, 0.2, 3.0, -0.1])
    metrics = classification_metrics(y_true, logits, threshold=0.0)
    # Predictions: 0, 1, 1, 1, 0 -> 3 of 5 right.
    assert metrics["accuracy"] == 0.6
    assert metrics["auroc"] == pytest.approx(_auroc_by_pairs(y_true, logits), abs=1e-12)
    assert metrics["num_classes"] == 2
    two_column = np.stack([-logits, logits], axis=1)
    two_column_metrics = classification_metrics(y_true, two_column)
    assert two_column_metrics["auroc"] == metrics["auroc"]
    assert two_column_metrics["accuracy"] == 0.6
    # Undefined AUROC (one class only in y_true) is stored as None, not a crash.
    assert classification_metrics([1, 1], np.array([0.2, 0.9]))["auroc"] is None


def test_classification_metrics_multiclass_probabilities():
    y_true = np.array([0, 1, 2, 2, 1, 0])
    probs = np.array(
        [
            [0.7, 0.2, 0.1],
            [0.1, 0.6, 0.3],
            [0.2, 0.3, 0.5],
            [0.3, 0.4, 0.3],
            [0.5, 0.4, 0.1],
            [0.6, 0.3, 0.1],
        ]
    )
    metrics = classification_metrics(y_true, probs, class_names=["a", "b", "c"])
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    expected_ovr = np.mean([_auroc_by_pairs(y_true == c, probs[:, c]) for c in range(3)])
    assert metrics["auroc_ovr_macro"] == pytest.approx(expected_ovr, abs=1e-12)
    assert 0.5 < metrics["auroc_ovr_macro"] < 1.0
    json.dumps(metrics)


def _counted_scores(y_true, y_pred, num_classes):
    """Reference precision, recall and F1 per class by counting, with the module's zero policy."""
    rows = []
    for c in range(num_classes):
        tp = sum(t == c and p == c for t, p in zip(y_true, y_pred))
        predicted, support = sum(p == c for p in y_pred), sum(t == c for t in y_true)
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append((precision, recall, f1, support, predicted + support > 0))
    return rows


@pytest.mark.parametrize("seed", range(5))
def test_f1_and_report_match_counting_on_random_labels(seed):
    # 6 classes, 20 examples: some classes are missing from y_true, y_pred or both.
    rng = np.random.default_rng(seed)
    y_true, y_pred = rng.integers(0, 5, size=20), rng.integers(1, 6, size=20)
    rows = _counted_scores(y_true, y_pred, 6)
    expected_macro = np.mean([f1 for _, _, f1, _, occurs in rows if occurs])
    assert macro_f1(y_true, y_pred, num_classes=6) == pytest.approx(expected_macro, abs=1e-12)
    report = per_class_report(y_true, y_pred, num_classes=6)
    for c, (precision, recall, f1, support, _) in enumerate(rows):
        assert report[str(c)] == pytest.approx(
            {"precision": precision, "recall": recall, "f1": f1, "support": support}, abs=1e-12
        )


def test_multiclass_auroc_skips_classes_absent_from_y_true_and_takes_logits():
    # Class 1 never occurs in y_true: the mean runs over classes 0, 2 and 3 only.
    rng = np.random.default_rng(1)
    y_true = np.array([0, 2, 3, 3, 0, 2, 0, 3, 2, 2])
    logits = rng.normal(size=(10, 4)) * 3.0  # rows do not sum to 1
    metrics = classification_metrics(y_true, logits)
    expected = np.mean([_auroc_by_pairs(y_true == c, logits[:, c]) for c in (0, 2, 3)])
    assert metrics["auroc_ovr_macro"] == pytest.approx(expected, abs=1e-12)
    # A monotone transform of each column keeps every one-vs-rest AUROC.
    assert classification_metrics(y_true, np.exp(logits))["auroc_ovr_macro"] == pytest.approx(expected)
    # One class in y_true: no class has both positives and negatives.
    assert classification_metrics([1, 1, 1], logits[:3])["auroc_ovr_macro"] is None


def test_edge_cases_give_values_not_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert macro_f1([0, 0], [1, 1], num_classes=3) == 0.0  # both classes at F1 = 0, class 2 left out
        assert per_class_report([0, 0], [0, 0], num_classes=2)["1"] == {
            "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
        single = classification_metrics([2, 2], np.array([[0.1, 0.2, 0.7], [0.5, 0.3, 0.2]]))
    assert single["accuracy"] == 0.5 and single["auroc_ovr_macro"] is None
    assert single["macro_f1"] == pytest.approx((0 + 2 / 3) / 2)  # class 0 predicted, never true
    assert single["macro_f1_excluded_classes"] == ["1"]


@pytest.mark.parametrize(
    "fn, args, match",
    [
        (accuracy, ([], []), "y_true` is empty"),
        (accuracy, ([0, 1], [0]), "y_pred` has 1"),
        (accuracy, ([0, 1.5], [0, 1]), "integer class labels"),
        (accuracy, ([[0, 1]], [0, 1]), "1-D"),
        (accuracy, ([0, -1], [0, 1]), ">= 0"),
        (macro_f1, ([0, 1], [0, 1], 1), r"\[0, 1\)"),
        (auroc, ([0, 0], [0.1, 0.2]), "both classes"),
        (auroc, ([0, 2], [0.1, 0.2]), "binary"),
        (auroc, ([0, 1], [0.1, np.nan]), "NaN"),
        (auroc, ([0, 1], [[0.1, 0.2]]), "1-D"),
        (per_class_report, ([0, 1], [0, 1], ["a"]), r"\[0, 1\)"),
        (per_class_report, ([0, 1], [0, 1], ["a", "a"]), "unique"),
        (classification_metrics, ([], np.zeros((0, 2))), "y_true` is empty"),
        (classification_metrics, ([0, 1], np.zeros((2, 2, 2))), "shape"),
        (classification_metrics, ([0, 1], np.zeros((3, 2))), "y_output` has 3"),
        (classification_metrics, ([0, 1], np.zeros((2, 2)), ["a", "b", "c"]), "columns"),
        (classification_metrics, ([0, 2], np.zeros(2)), r"\[0, 2\)"),
        (classification_metrics, ([0, 1], np.array([0.1, np.inf])), "NaN"),
        (classification_metrics, ([0, 1], np.array(["a", "b"])), "dtype"),
    ],
)
def test_bad_input_raises(fn, args, match):
    with pytest.raises(ValueError, match=match):
        fn(*args)


def test_multilabel_metrics_count_exact_matches_single_labels_and_f1_by_hand():
    rng = np.random.default_rng(3)
    y_true = (rng.uniform(size=(40, 5)) < 0.3).astype(int)
    y_true[:, 4] = 0  # a label that never occurs
    scores = np.clip(y_true * 0.6 + rng.uniform(size=(40, 5)) * 0.5, 0, 1)
    m = multilabel_metrics(y_true, scores, class_names=list("abcde"))
    y_pred = scores >= 0.5
    assert m["accuracy"] == pytest.approx(np.mean(np.all(y_pred == y_true, axis=1)))
    assert m["label_accuracy"] == pytest.approx(np.mean(y_pred == y_true))
    tp, fp, fn = (y_pred & (y_true == 1)).sum(0), (y_pred & (y_true == 0)).sum(0), (~y_pred & (y_true == 1)).sum(0)
    assert m["micro_f1"] == pytest.approx(2 * tp.sum() / (2 * tp.sum() + fp.sum() + fn.sum()))
    f1 = np.where(tp > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), 0.0)
    occurring = (y_true.sum(0) > 0) | (y_pred.sum(0) > 0)
    assert m["macro_f1"] == pytest.approx(f1[occurring].mean())
    assert m["per_class"]["b"]["precision"] == pytest.approx(tp[1] / (tp[1] + fp[1]))
    assert m["per_class"]["e"]["support"] == 0 and m["num_examples"] == 40 and m["num_classes"] == 5


@pytest.mark.parametrize("y_true, scores, message", [
    ([[1, 0]], [[0.5, 0.5, 0.5]], "one shape"),
    ([[2, 0]], [[0.5, 0.5]], "only 0 and 1"),
    ([[1, 0]], [[np.nan, 0.5]], "NaN"),
    ([1, 0], [0.5, 0.5], r"\[N, C\]"),
])
def test_multilabel_metrics_refuse_bad_input_by_name(y_true, scores, message):
    with pytest.raises(ValueError, match=message):
        multilabel_metrics(y_true, scores)


def test_multilabel_macro_f1_counts_a_label_only_predicted_and_leaves_out_one_in_neither():
    y_true = [[1, 0, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0]]
    y_pred = [[1, 0, 1, 0], [0, 0, 0, 0], [0, 1, 0, 0]]
    # label 0: F1 2/3; label 1: 1; label 2 (only predicted): 0; label 3 (in neither): left out
    assert multilabel_macro_f1(y_true, y_pred) == pytest.approx((2 / 3 + 1 + 0) / 3, abs=1e-12)
    assert multilabel_macro_f1([[0, 0]], [[0, 0]]) == 0.0
    scores = np.array(y_pred) * 0.9
    assert multilabel_metrics(y_true, scores)["macro_f1"] == multilabel_macro_f1(y_true, y_pred)


@pytest.mark.parametrize("y_true, y_pred, message", [
    ([[1, 0]], [[1, 0, 0]], "one shape"),
    ([[1, 0]], [[1, 2]], "only 0 and 1"),
    ([1, 0], [1, 0], r"\[N, C\]"),
])
def test_multilabel_macro_f1_refuses_bad_input(y_true, y_pred, message):
    with pytest.raises(ValueError, match=message):
        multilabel_macro_f1(y_true, y_pred)
