"""Corpus BLEU-1..N for captioning, with several references per image.

The definition is the one of the COCO caption evaluation toolkit
(pycocoevalcap's ``Bleu(4)``), so scores reported with mmkeras can be compared
with published COCO / Flickr numbers:

* Text is **pre-tokenized**: a caption is split on whitespace and nothing else
  (lower-case it and strip punctuation beforehand, as the PTB tokenizer of the
  toolkit does).
* Modified n-gram precision: a hypothesis n-gram counts as matched at most as
  many times as it occurs in the single reference where it is most frequent.
  Matches and hypothesis n-gram totals are summed over the whole corpus before
  dividing (corpus-level, not an average of sentence scores).
* Smoothing: ``p_n = (matches_n + 1e-15) / (total_n + 1e-9)``, so a corpus with
  no n-gram match of some order scores (almost) 0 instead of failing.
* Brevity penalty on corpus lengths: ``c`` is the total hypothesis length and
  ``r`` the sum over images of the reference length *closest* to the
  hypothesis length (ties go to the shorter reference); with
  ``ratio = (c + 1e-15) / (r + 1e-9)`` the penalty is ``exp(1 - 1 / ratio)``
  when ``ratio < 1`` and 1 otherwise.
* ``BLEU-n = BP * (p_1 * ... * p_n) ** (1 / n)``.
"""

import collections
import math

_SMALL = 1e-9  # added to denominators
_TINY = 1e-15  # added to numerators, so that 0 / 0 gives ~0


def _ngram_counts(tokens, max_n):
    """Counter of every n-gram (as a tuple) of `tokens` for n = 1..max_n."""
    counts = collections.Counter()
    for n in range(1, max_n + 1):
        for start in range(len(tokens) - n + 1):
            counts[tuple(tokens[start : start + n])] += 1
    return counts


def _as_hypothesis(value, key):
    """One hypothesis: a string, or a list/tuple holding exactly one string."""
    if isinstance(value, (list, tuple)):
        if len(value) != 1 or not isinstance(value[0], str):
            raise ValueError(
                f"`hypotheses`[{key!r}] must be a string or a list holding exactly one "
                f"string, got {value!r}."
            )
        value = value[0]
    if not isinstance(value, str):
        raise ValueError(f"`hypotheses`[{key!r}] must be a string, got {type(value).__name__}.")
    return value.split()


def _as_references(value, key):
    """The references of one image: a non-empty list/tuple of strings."""
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise ValueError(
            f"`references`[{key!r}] must be a list of reference strings, got "
            f"{type(value).__name__}."
        )
    if not value:
        raise ValueError(
            f"`references`[{key!r}] is empty; every image needs at least one reference."
        )
    for ref in value:
        if not isinstance(ref, str):
            raise ValueError(
                f"`references`[{key!r}] must hold strings, got an element of type "
                f"{type(ref).__name__}."
            )
    return [ref.split() for ref in value]


def _align_corpus(hypotheses, references):
    """Pairs hypotheses with references.

    Returns:
        A list of `(key, hypothesis_tokens, [reference_tokens, ...])`, in the
        order of `references` (its keys for dicts, its positions for lists).
    """
    if isinstance(hypotheses, dict) != isinstance(references, dict):
        raise ValueError(
            "`hypotheses` and `references` must both be dicts keyed by image id or both "
            f"be lists, got {type(hypotheses).__name__} and {type(references).__name__}."
        )
    if isinstance(references, dict):
        missing = [k for k in references if k not in hypotheses]
        extra = [k for k in hypotheses if k not in references]
        if missing or extra:
            raise ValueError(
                "`hypotheses` and `references` must have the same image ids; "
                f"ids without a hypothesis: {missing[:5]!r}{' ...' if len(missing) > 5 else ''}, "
                f"ids without references: {extra[:5]!r}{' ...' if len(extra) > 5 else ''}."
            )
        keys = list(references)
    else:
        if not isinstance(hypotheses, (list, tuple)) or not isinstance(references, (list, tuple)):
            raise ValueError(
                "`hypotheses` and `references` must be dicts or lists, got "
                f"{type(hypotheses).__name__} and {type(references).__name__}."
            )
        if len(hypotheses) != len(references):
            raise ValueError(
                f"`hypotheses` has {len(hypotheses)} entries but `references` has "
                f"{len(references)}; they must match one to one."
            )
        keys = list(range(len(references)))
    if not keys:
        raise ValueError("`hypotheses` and `references` are empty; nothing to score.")
    return [(k, _as_hypothesis(hypotheses[k], k), _as_references(references[k], k)) for k in keys]


def corpus_bleu(hypotheses, references, max_n=4):
    """Corpus BLEU-1..`max_n` of captions against several references each.

    Equal (to float rounding) to pycocoevalcap's ``Bleu(max_n).compute_score``
    fed the same pre-tokenized text; see the module docstring for the exact
    definition (closest reference length, corpus-level brevity penalty, 1e-15 /
    1e-9 smoothing).

    Args:
        hypotheses: the generated captions, either a dict `{image_id: caption}`
            or a list of captions. A caption is a whitespace-tokenized string;
            a one-element list `[caption]` (the pycocoevalcap format) is also
            accepted.
        references: the ground truth, either a dict `{image_id: [ref, ...]}`
            with the same ids as `hypotheses`, or a list (same length as
            `hypotheses`) of non-empty lists of whitespace-tokenized strings.
        max_n: int >= 1, the largest n-gram order.

    Returns:
        A list of `max_n` Python floats `[BLEU-1, ..., BLEU-max_n]` in [0, 1].

    Raises:
        ValueError: mismatched ids or lengths, an image with no reference, a
            non-string caption, an empty corpus, or a bad `max_n`.

    Example:

    >>> hyps = ["a dog runs on the grass"]
    >>> refs = [["a dog runs on the grass", "a brown dog is running outside"]]
    >>> [round(b, 4) for b in corpus_bleu(hyps, refs)]
    [1.0, 1.0, 1.0, 1.0]
    >>> round(corpus_bleu({"img1": "a cat"}, {"img1": ["a dog"]}, max_n=1)[0], 4)
    0.5
    """
    if isinstance(max_n, bool) or not isinstance(max_n, int) or max_n < 1:
        raise ValueError(f"`max_n` must be an int >= 1, got {max_n!r}.")
    corpus = _align_corpus(hypotheses, references)

    matches = [0] * max_n
    totals = [0] * max_n
    hyp_length = 0
    ref_length = 0
    for _, hyp, refs in corpus:
        # Clip each hypothesis n-gram by its largest count in any one reference.
        max_ref_counts = collections.Counter()
        for ref in refs:
            for ngram, count in _ngram_counts(ref, max_n).items():
                if count > max_ref_counts[ngram]:
                    max_ref_counts[ngram] = count
        for ngram, count in _ngram_counts(hyp, max_n).items():
            matches[len(ngram) - 1] += min(count, max_ref_counts.get(ngram, 0))
        for n in range(1, max_n + 1):
            totals[n - 1] += max(0, len(hyp) - n + 1)
        # Effective reference length: the closest one, the shorter on a tie.
        hyp_length += len(hyp)
        ref_length += min(
            (len(r) for r in refs), key=lambda length: (abs(length - len(hyp)), length)
        )

    ratio = (hyp_length + _TINY) / (ref_length + _SMALL)
    brevity_penalty = math.exp(1.0 - 1.0 / ratio) if ratio < 1.0 else 1.0
    scores = []
    precision_product = 1.0
    for n in range(1, max_n + 1):
        precision_product *= (matches[n - 1] + _TINY) / (totals[n - 1] + _SMALL)
        scores.append(float(brevity_penalty * precision_product ** (1.0 / n)))
    return scores
