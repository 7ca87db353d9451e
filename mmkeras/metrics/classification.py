"""Classification metrics for fusion classifiers: accuracy, macro-F1, AUROC, per-class report.

Thin wrappers around `sklearn.metrics` that check their inputs (clear
`ValueError`s) and return Python floats / ints / strings, so the results can be
written to a `metrics.json` as they are.

Classes that never occur (policy used by `macro_f1`, `per_class_report` and
`classification_metrics`):

* precision is 0 for a class that is never predicted, recall is 0 for a class
  with no true example, and F1 is 0 when precision + recall is 0;
* the macro-F1 averages over the classes that occur in `y_true` **or** in
  `y_pred`. A class predicted but absent from `y_true` therefore counts with
  F1 = 0 (its predictions are all false positives); a class absent from both
  carries no information and is left out (`classification_metrics` lists such
  classes under `macro_f1_excluded_classes`).
"""

import numpy as np
from sklearn import metrics as sk


def _check_labels(values, name):
    """1-D non-empty array of non-negative integer labels (int64)."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"`{name}` must be a 1-D array of class labels, got shape {array.shape}.")
    if array.size == 0:
        raise ValueError(f"`{name}` is empty; there is nothing to score.")
    if array.dtype == bool:
        return array.astype(np.int64)
    if np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)) or np.any(array != np.round(array)):
            raise ValueError(f"`{name}` must hold integer class labels, got non-integer values.")
    elif not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"`{name}` must hold integer class labels, got dtype {array.dtype}.")
    array = array.astype(np.int64)
    if np.any(array < 0):
        raise ValueError(f"`{name}` must hold labels >= 0, got {array[array < 0][:5].tolist()}.")
    return array


def _check_same_length(y_true, other, other_name):
    if other.shape[0] != y_true.shape[0]:
        raise ValueError(
            f"`y_true` has {y_true.shape[0]} examples but `{other_name}` has {other.shape[0]}."
        )


def _resolve_num_classes(num_classes, class_names, *label_arrays):
    largest = max(int(a.max()) for a in label_arrays) + 1
    if class_names is not None:
        if isinstance(class_names, str) or not all(isinstance(c, str) for c in class_names):
            raise ValueError(f"`class_names` must be a list of strings, got {class_names!r}.")
        if num_classes is not None and num_classes != len(class_names):
            raise ValueError(
                f"`num_classes`={num_classes} but `class_names` has {len(class_names)} names."
            )
        num_classes = len(class_names)
    if num_classes is None:
        return largest
    if (
        isinstance(num_classes, bool)
        or not isinstance(num_classes, (int, np.integer))
        or num_classes < 1
    ):
        raise ValueError(f"`num_classes` must be a positive int, got {num_classes!r}.")
    if largest > num_classes:
        raise ValueError(
            f"Labels must be in [0, {num_classes}) (from `num_classes` / `class_names`), "
            f"got label {largest - 1}."
        )
    return int(num_classes)


def _labels_and_predictions(y_true, y_pred):
    """Both label arrays, checked and of the same length."""
    y_true = _check_labels(y_true, "y_true")
    y_pred = _check_labels(y_pred, "y_pred")
    _check_same_length(y_true, y_pred, "y_pred")
    return y_true, y_pred


def accuracy(y_true, y_pred):
    """Fraction of examples whose predicted label equals the true label.

    Args:
        y_true: 1-D array of integer labels.
        y_pred: 1-D array of integer labels, same length.

    Returns:
        A Python float in [0, 1].

    Raises:
        ValueError: empty inputs, different lengths, or non-integer labels.

    Example:

    >>> accuracy([0, 1, 2, 2], [0, 2, 2, 2])
    0.75
    """
    return float(sk.accuracy_score(*_labels_and_predictions(y_true, y_pred)))


def macro_f1(y_true, y_pred, num_classes=None):
    """Unweighted mean of the per-class F1 scores.

    `sklearn.metrics.f1_score(average="macro", zero_division=0)`: averages
    over the classes that occur in `y_true` or `y_pred` (see the module
    docstring): a class only predicted counts with F1 = 0, a class in neither
    is left out.

    Args:
        y_true: 1-D array of integer labels.
        y_pred: 1-D array of integer labels, same length.
        num_classes: optional int, the number of classes; labels must be
            below it.

    Returns:
        A Python float in [0, 1].

    Raises:
        ValueError: empty inputs, different lengths, non-integer labels or
            labels >= `num_classes`.

    Example:

    >>> round(macro_f1([0, 0, 1, 1], [0, 1, 1, 1]), 4)  # F1 = 2/3 and 4/5
    0.7333
    """
    y_true, y_pred = _labels_and_predictions(y_true, y_pred)
    _resolve_num_classes(num_classes, None, y_true, y_pred)  # checks the labels' range
    return float(sk.f1_score(y_true, y_pred, average="macro", zero_division=0))


def auroc(y_true, y_score):
    """Area under the ROC curve of a binary classifier.

    `sklearn.metrics.roc_auc_score`: the probability that a random positive
    scores higher than a random negative, a tie counting 1/2. Only the order
    of the scores matters (probabilities or logits).

    Args:
        y_true: 1-D array of binary labels (0 / 1 or bool).
        y_score: 1-D float array of scores for the positive class, same length.

    Returns:
        A Python float in [0, 1].

    Raises:
        ValueError: empty inputs, different lengths, labels other than 0 / 1,
            NaN / inf scores, or only one class present in `y_true`.

    Example:

    >>> auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    >>> auroc([0, 1, 0, 1], [0.5, 0.5, 0.2, 0.9])  # the tie counts 1/2
    0.875
    """
    y_true = _check_labels(y_true, "y_true")
    if np.any(y_true > 1):
        raise ValueError(
            f"`y_true` must hold binary labels 0 / 1, got {np.unique(y_true).tolist()}."
        )
    y_score = np.asarray(y_score)
    if y_score.ndim != 1:
        raise ValueError(f"`y_score` must be a 1-D array of scores, got shape {y_score.shape}.")
    _check_same_length(y_true, y_score, "y_score")
    if not (np.issubdtype(y_score.dtype, np.number) or y_score.dtype == bool):
        raise ValueError(f"`y_score` must hold numbers, got dtype {y_score.dtype}.")
    y_score = y_score.astype(np.float64)
    if not np.all(np.isfinite(y_score)):
        raise ValueError("`y_score` contains NaN or infinite values.")
    num_pos = int(y_true.sum())
    num_neg = y_true.size - num_pos
    if num_pos == 0 or num_neg == 0:
        raise ValueError(
            "`y_true` must contain both classes for AUROC, got only "
            f"{'negatives' if num_pos == 0 else 'positives'}."
        )
    return float(sk.roc_auc_score(y_true, y_score))


def per_class_report(y_true, y_pred, class_names=None, num_classes=None):
    """Precision, recall, F1 and support of every class.

    `sklearn.metrics.precision_recall_fscore_support` over every label, with
    `zero_division=0`.

    Args:
        y_true: 1-D array of integer labels.
        y_pred: 1-D array of integer labels, same length.
        class_names: optional list of names, `class_names[c]` for label `c`;
            defaults to `"0"`, `"1"`, ...
        num_classes: optional int, the number of classes (implied by
            `class_names`; otherwise the largest label + 1).

    Returns:
        A dict `{class_name: {"precision", "recall", "f1", "support"}}` in label
        order, with float scores and int support. Every class is listed, also
        one that never occurs (then all zeros; see the module docstring).

    Raises:
        ValueError: as `macro_f1`, or `class_names` not matching the labels.

    Example:

    >>> report = per_class_report([0, 0, 1], [0, 1, 1], class_names=["cat", "dog"])
    >>> report["dog"]
    {'precision': 0.5, 'recall': 1.0, 'f1': 0.6666666666666666, 'support': 1}
    """
    y_true, y_pred = _labels_and_predictions(y_true, y_pred)
    num_classes = _resolve_num_classes(num_classes, class_names, y_true, y_pred)
    names = list(class_names) if class_names is not None else [str(c) for c in range(num_classes)]
    if len(set(names)) != len(names):
        raise ValueError(f"`class_names` must be unique, got {names!r}.")
    precision, recall, f1, support = sk.precision_recall_fscore_support(
        y_true, y_pred, labels=np.arange(num_classes), average=None, zero_division=0
    )
    return {
        name: {
            "precision": float(precision[c]),
            "recall": float(recall[c]),
            "f1": float(f1[c]),
            "support": int(support[c]),
        }
        for c, name in enumerate(names)
    }


def classification_metrics(y_true, y_output, class_names=None, threshold=0.5):
    """All classification metrics in one JSON-serialisable dict.

    `y_output` is read by its dtype and rank:

    * integer / bool, 1-D: predicted labels (no AUROC);
    * float, 1-D: binary scores for class 1 (probabilities or logits),
      predicted label `score >= threshold`;
    * float, 2-D `[N, C]`: per-class scores, predicted label `argmax`.

    Args:
        y_true: 1-D array of integer labels.
        y_output: predicted labels or scores, see above.
        class_names: optional list of class names in label order (sets the
            number of classes).
        threshold: float, decision threshold for 1-D binary scores (use 0.0
            for logits).

    Returns:
        A dict with `num_examples`, `num_classes`, `accuracy`, `macro_f1`,
        `macro_f1_excluded_classes` (names of classes in neither `y_true` nor
        the predictions), `per_class` (see `per_class_report`) and, for
        scores: `auroc` for two classes, or `auroc_ovr_macro` (mean one-vs-rest
        AUROC over the classes with both positives and negatives in `y_true`;
        scores such as logits need not sum to 1) for more. An AUROC that is undefined (a class missing from `y_true`)
        is stored as `None`.

    Raises:
        ValueError: empty inputs, mismatched lengths, labels out of range,
            NaN / inf scores, or a shape that is none of the above.

    Example:

    >>> import json
    >>> probs = [[0.9, 0.1], [0.4, 0.6], [0.3, 0.7], [0.6, 0.4]]
    >>> m = classification_metrics([0, 1, 1, 1], probs, class_names=["no", "yes"])
    >>> m["accuracy"], m["auroc"], m["per_class"]["yes"]["recall"]
    (0.75, 1.0, 0.6666666666666666)
    >>> _ = json.dumps(m)
    """
    y_true = _check_labels(y_true, "y_true")
    output = np.asarray(y_output)
    scores = None
    if output.dtype == bool or np.issubdtype(output.dtype, np.integer):
        y_pred = _check_labels(output, "y_output")
    elif np.issubdtype(output.dtype, np.floating):
        if output.ndim not in (1, 2):
            raise ValueError(
                f"`y_output` scores must be [N] (binary) or [N, C], got shape {output.shape}."
            )
        if output.shape[0] == 0:
            raise ValueError("`y_output` is empty; there is nothing to score.")
        if not np.all(np.isfinite(output)):
            raise ValueError("`y_output` contains NaN or infinite values.")
        scores = output.astype(np.float64)
        if scores.ndim == 1:
            y_pred = (scores >= threshold).astype(np.int64)
        else:
            if scores.shape[1] < 2:
                raise ValueError(f"`y_output` scores [N, C] need C >= 2, got shape {scores.shape}.")
            y_pred = np.argmax(scores, axis=1)
    else:
        raise ValueError(f"`y_output` must hold labels or float scores, got dtype {output.dtype}.")
    _check_same_length(y_true, y_pred, "y_output")

    if scores is not None and scores.ndim == 2:
        num_classes = scores.shape[1]
        if class_names is not None and len(class_names) != num_classes:
            raise ValueError(
                f"`class_names` has {len(class_names)} names but `y_output` has {num_classes} columns."
            )
    elif scores is not None:
        num_classes = 2
        if class_names is not None and len(class_names) != 2:
            raise ValueError(f"1-D binary scores need 2 `class_names`, got {len(class_names)}.")
    else:
        num_classes = None
    num_classes = _resolve_num_classes(num_classes, class_names, y_true, y_pred)
    names = list(class_names) if class_names is not None else [str(c) for c in range(num_classes)]

    occurs = np.union1d(y_true, y_pred)
    metrics = {
        "num_examples": int(y_true.size),
        "num_classes": int(num_classes),
        "accuracy": accuracy(y_true, y_pred),
        "macro_f1": macro_f1(y_true, y_pred),
        "macro_f1_excluded_classes": [names[c] for c in range(num_classes) if c not in occurs],
        "per_class": per_class_report(y_true, y_pred, class_names=names),
    }
    if scores is not None:
        # One column per class, kept where `y_true` has both positives and negatives.
        one_hot = y_true[:, None] == np.arange(num_classes)
        defined = (one_hot.sum(axis=0) > 0) & (one_hot.sum(axis=0) < y_true.size)
        if num_classes == 2:
            positive_scores = scores if scores.ndim == 1 else scores[:, 1]
            metrics["auroc"] = auroc(y_true, positive_scores) if defined.all() else None
        else:
            # Macro one-vs-rest AUROC as a multilabel average, so logits are scored as they are.
            metrics["auroc_ovr_macro"] = (
                float(sk.roc_auc_score(one_hot[:, defined], scores[:, defined], average="macro"))
                if defined.any() else None
            )
    return metrics


def multilabel_macro_f1(y_true, y_pred):
    """Macro-F1 of a multilabel head: the mean F1 of the labels that occur in `y_true` or `y_pred`
    (the policy of `macro_f1`, per label column).

    Args:
        y_true: `[N, C]` 0/1 array, the true labels.
        y_pred: `[N, C]` 0/1 array, the predicted labels.

    Returns:
        A Python float in [0, 1]; 0.0 when no label occurs in either.

    Raises:
        ValueError: arrays of other shapes or values other than 0 and 1.

    Example:

    >>> round(multilabel_macro_f1([[1, 0, 0], [1, 1, 0]], [[1, 0, 0], [0, 1, 0]]), 4)  # F1 2/3 and 1
    0.8333
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.ndim != 2 or y_true.shape != y_pred.shape or not y_true.size:
        raise ValueError(f"`y_true` and `y_pred` must be non-empty [N, C] arrays of one shape, got "
                         f"{y_true.shape} and {y_pred.shape}.")
    if not (np.isin(y_true, (0, 1)).all() and np.isin(y_pred, (0, 1)).all()):
        raise ValueError("Multilabel `y_true` and `y_pred` must hold only 0 and 1.")
    occurring = np.flatnonzero(y_true.any(0) | y_pred.any(0))
    if not occurring.size:
        return 0.0
    return float(sk.f1_score(y_true.astype(np.int64), y_pred.astype(np.int64), labels=occurring,
                             average="macro", zero_division=0))


def multilabel_metrics(y_true, scores, class_names=None, threshold=0.5):
    """Metrics of a multilabel head (any number of labels per example), one JSON-serialisable dict.

    Args:
        y_true: `[N, C]` 0/1 array, the true labels of each example.
        scores: `[N, C]` per-label probabilities (or 0/1 predictions); label `c` is predicted when
            `scores[:, c] >= threshold`.
        class_names: optional list of the `C` label names (default `"0"`, `"1"`, ...).
        threshold: float, the decision threshold (0.0 for logits).

    Returns:
        A dict with `num_examples`, `num_classes`, `accuracy` (exact match: every label of the
        example right), `label_accuracy` (the fraction of single labels right), `micro_f1`,
        `macro_f1` (over the labels that occur in `y_true` or the predictions) and `per_class`
        (precision, recall, F1 and support of each label, as `per_class_report`).

    Raises:
        ValueError: empty or mismatched inputs, values other than 0/1 in `y_true`, NaN scores, or
            `class_names` of the wrong length.

    Example:

    >>> m = multilabel_metrics([[1, 0, 1], [0, 1, 0]], [[0.9, 0.2, 0.7], [0.6, 0.8, 0.1]],
    ...                        class_names=["a", "b", "c"])
    >>> m["accuracy"], m["label_accuracy"], m["per_class"]["a"]["precision"]
    (0.5, 0.8333333333333334, 0.5)
    """
    y_true, scores = np.asarray(y_true), np.asarray(scores, np.float64)
    if y_true.ndim != 2 or y_true.shape != scores.shape or not y_true.size:
        raise ValueError(f"`y_true` and `scores` must be non-empty [N, C] arrays of one shape, got "
                         f"{y_true.shape} and {scores.shape}.")
    if not np.isin(y_true, (0, 1)).all():
        raise ValueError("`y_true` of a multilabel head must hold only 0 and 1.")
    if not np.all(np.isfinite(scores)):
        raise ValueError("`scores` contains NaN or infinite values.")
    num_classes = y_true.shape[1]
    names = list(class_names) if class_names is not None else [str(c) for c in range(num_classes)]
    if len(names) != num_classes:
        raise ValueError(f"`class_names` has {len(names)} names for {num_classes} labels.")
    y_true, y_pred = y_true.astype(np.int64), (scores >= threshold).astype(np.int64)
    precision, recall, f1, support = sk.precision_recall_fscore_support(y_true, y_pred, average=None,
                                                                        zero_division=0)
    return {
        "num_examples": int(len(y_true)),
        "num_classes": int(num_classes),
        "accuracy": float(sk.accuracy_score(y_true, y_pred)),
        "label_accuracy": float(np.mean(y_true == y_pred)),
        "micro_f1": float(sk.f1_score(y_true, y_pred, average="micro", zero_division=0)),
        "macro_f1": multilabel_macro_f1(y_true, y_pred),
        "per_class": {name: {"precision": float(precision[c]), "recall": float(recall[c]), "f1": float(f1[c]),
                             "support": int(support[c])} for c, name in enumerate(names)},
    }
