"""CIDEr-D, the consensus-based captioning metric used on COCO.

The definition is the one of the COCO caption evaluation toolkit
(pycocoevalcap's ``Cider()``), so mmkeras scores compare with published ones.
Text is **pre-tokenized** (split on whitespace only). For a corpus of ``N``
images:

* Every caption becomes, for each order n = 1..``max_n``, a TF-IDF vector over
  its n-grams: ``tf * (log N - log max(1, df))``, where ``df`` is the number of
  images whose *references* contain the n-gram (hypotheses never change the
  document frequencies; an n-gram unseen in the references gets ``df = 1``).
* Per image and order n, against each reference ``j``: the clipped cosine
  ``sum_g min(h_g, r_g) * r_g / (|h| |r|)`` (0 when either norm is 0), times the
  Gaussian length penalty ``exp(-(l_h - l_r)^2 / (2 sigma^2))``. As in the
  reference implementation, a caption's length ``l`` is its number of bigram
  positions, ``max(0, words - 1)`` (0 for every caption when ``max_n = 1``).
* The image score is ``10 * mean_n mean_j`` of those values, and the corpus
  score is the mean of the image scores.
"""

import collections
import math

import numpy as np

from mmkeras.metrics.bleu import _align_corpus
from mmkeras.metrics.bleu import _ngram_counts


def _tfidf_vectors(counts, log_num_images, document_frequency, max_n):
    """Splits n-gram counts by order and weighs them by TF-IDF.

    Returns:
        `(vectors, norms, length)`: `vectors[n - 1]` maps each n-gram of order n
        to its weight, `norms[n - 1]` is that vector's L2 norm and `length` the
        number of bigram positions of the caption.
    """
    vectors = [{} for _ in range(max_n)]
    for ngram, tf in counts.items():
        idf = log_num_images - math.log(max(1.0, document_frequency.get(ngram, 0)))
        vectors[len(ngram) - 1][ngram] = tf * idf
    norms = np.array([math.sqrt(sum(w * w for w in v.values())) for v in vectors])
    length = sum(counts[g] for g in vectors[1]) if max_n >= 2 else 0
    return vectors, norms, length


def cider_d(hypotheses, references, max_n=4, sigma=6.0):
    """CIDEr-D of captions against several references each.

    Equal (to float rounding) to pycocoevalcap's ``Cider().compute_score`` fed
    the same pre-tokenized text; see the module docstring for the definition.
    Document frequencies come from the references of the corpus passed in, so
    score the whole evaluation split in one call (a single image always scores
    0: every reference n-gram then has IDF ``log 1 - log 1 = 0``).

    Args:
        hypotheses: the generated captions, as `mmkeras.metrics.bleu.corpus_bleu`
            takes them (a dict `{image_id: caption}` or a list).
        references: the ground truth, as `corpus_bleu` takes it (a dict
            `{image_id: [ref, ...]}` or a list of lists).
        max_n: int >= 1, the largest n-gram order (4 for CIDEr-D).
        sigma: float > 0, the standard deviation of the length penalty.

    Returns:
        `(score, per_image_scores)`: `score` is the corpus CIDEr-D as a Python
        float (usually reported x1, e.g. 1.05; it is already multiplied by 10
        per image as in the toolkit). `per_image_scores` is a dict
        `{image_id: float}` when the inputs are dicts, otherwise a float64
        NumPy array in the order of the lists.

    Raises:
        ValueError: mismatched ids or lengths, an image with no reference, a
            non-string caption, an empty corpus, or a bad `max_n` / `sigma`.

    Example:

    >>> hyps = ["a dog runs", "a red car", "two cats sleep"]
    >>> refs = [["a dog runs", "a dog is running"],
    ...         ["a red car", "a car parked"],
    ...         ["two cats sleep", "cats sleeping"]]
    >>> score, per_image = cider_d(hyps, refs)
    >>> round(score, 3), per_image.shape
    (4.488, (3,))
    """
    if isinstance(max_n, bool) or not isinstance(max_n, int) or max_n < 1:
        raise ValueError(f"`max_n` must be an int >= 1, got {max_n!r}.")
    if not isinstance(sigma, (int, float)) or not sigma > 0:
        raise ValueError(f"`sigma` must be a positive number, got {sigma!r}.")
    corpus = _align_corpus(hypotheses, references)

    hyp_counts = [_ngram_counts(hyp, max_n) for _, hyp, _ in corpus]
    ref_counts = [[_ngram_counts(ref, max_n) for ref in refs] for _, _, refs in corpus]

    # Document frequency: in how many images' reference sets an n-gram occurs.
    document_frequency = collections.Counter()
    for counts_of_refs in ref_counts:
        document_frequency.update(set().union(*counts_of_refs))
    log_num_images = math.log(len(corpus))

    two_sigma_sq = 2.0 * float(sigma) ** 2
    per_image = np.zeros(len(corpus), dtype=np.float64)
    for i, (h_counts, counts_of_refs) in enumerate(zip(hyp_counts, ref_counts)):
        h_vecs, h_norms, h_len = _tfidf_vectors(h_counts, log_num_images, document_frequency, max_n)
        total = np.zeros(max_n, dtype=np.float64)
        for r_counts in counts_of_refs:
            r_vecs, r_norms, r_len = _tfidf_vectors(
                r_counts, log_num_images, document_frequency, max_n
            )
            clipped_dot = np.array(
                [
                    sum(
                        min(w, r_vecs[n].get(g, 0.0)) * r_vecs[n].get(g, 0.0)
                        for g, w in h_vecs[n].items()
                    )
                    for n in range(max_n)
                ]
            )
            denom = h_norms * r_norms
            cosine = np.divide(clipped_dot, denom, out=np.zeros(max_n), where=denom != 0)
            total += cosine * math.exp(-float(h_len - r_len) ** 2 / two_sigma_sq)
        per_image[i] = 10.0 * total.mean() / len(counts_of_refs)

    score = float(per_image.mean())
    if isinstance(references, dict):
        return score, {key: float(s) for (key, _, _), s in zip(corpus, per_image)}
    return score, per_image
