"""Semantic retrieval metrics: a retrieved item counts when it is true of the query, not only when it is the
query's own."""

import numpy as np

from mmkeras.validation import check_ints


def _ranked(scores, rng):
    """Column indices of each row of `scores`, best first, ties in a random order drawn from `rng`."""
    return np.lexsort((rng.random(scores.shape), -scores), axis=-1)


def _chance_hit(m, n, k):
    """P(a random top `k` of `n` items holds one of the `m` true ones), for arrays `m` and `n`."""
    miss = np.ones_like(m, dtype=np.float64)
    for j in range(k):
        miss *= np.clip(n - m - j, 0, None) / np.maximum(n - j, 1)
    return 1.0 - miss


def semantic_retrieval_metrics(image_embeddings, text_embeddings, truth, ks=(1, 5, 10), seed=0, chunk_size=512):
    """Semantic recall (sR@K) and precision (P@K) at K, both ways, with their chance levels.

    Today's R@K counts a hit only when the retrieved item is the query's own (its image, one of its
    captions). Where many captions are true of many images (Shapes: "there are two shapes"), that
    punishes right answers: a perfect model can score R@1 = 0. Given `truth[t, i]` (text `t` is true
    of image `i`), a text-to-image query is a hit at K when one of the top K images makes the text
    true, and an image-to-text query when one of the top K texts is true of the image; P@K is the
    fraction of the top K that is. Scores are dot products (give normalised embeddings for cosine);
    ties are broken in a random order drawn from `seed`, so equal scores neither help nor hurt a
    query on average. Queries with nothing true in the gallery are left out (counted). The chance
    level of each figure is its exact expectation under a random ranking of the same gallery.

    Args:
        image_embeddings: float `[N_img, D]`.
        text_embeddings: float `[N_txt, D]`.
        truth: bool `[N_txt, N_img]`.
        ks: the cut-offs K.
        seed: the tie-breaking seed.
        chunk_size: queries scored at once (memory grows as `chunk_size * gallery size`).

    Returns:
        `{"t2i_sr{K}", "t2i_p{K}", "i2t_sr{K}", "i2t_p{K}"}` for each K, the same keys prefixed
        `chance_`, and `t2i_queries_without_truth` / `i2t_queries_without_truth`.

    Example:

    >>> images = np.eye(3, dtype="float32")
    >>> texts = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0]], "float32")  # text 2 reads like image 0
    >>> truth = np.array([[1, 0, 0], [0, 1, 1], [0, 0, 1]], bool)   # ... but is true only of image 2
    >>> m = semantic_retrieval_metrics(images, texts, truth, ks=(1,))
    >>> round(m["t2i_sr1"], 3), round(m["chance_t2i_sr1"], 3), m["t2i_p1"] == m["t2i_sr1"]
    (0.667, 0.444, True)
    """
    ks = check_ints("ks", ks, minimum=1)
    images = np.asarray(image_embeddings, np.float32)
    texts = np.asarray(text_embeddings, np.float32)
    truth = np.asarray(truth, bool)
    if images.ndim != 2 or texts.ndim != 2 or images.shape[1] != texts.shape[1]:
        raise ValueError(f"`image_embeddings` {images.shape} and `text_embeddings` {texts.shape} must be "
                         "[N, D] with the same D.")
    if truth.shape != (len(texts), len(images)):
        raise ValueError(f"`truth` must be [N_txt, N_img] = {(len(texts), len(images))}, got {truth.shape}.")
    return _ranking_metrics(lambda rows: texts[rows] @ images.T, lambda rows: images[rows] @ texts.T, truth, ks,
                            seed, chunk_size)


def score_retrieval_metrics(scores, truth, ks=(1, 5, 10), seed=0, chunk_size=512):
    """`semantic_retrieval_metrics` for any ranker: a text-image score matrix instead of embeddings.

    For rankers that are not dual encoders (an oracle, a rule-based baseline) or for today's R@K with
    random tie-breaking: with `truth[t, i]` true only where image `i` is caption `t`'s own, `t2i_sr{K}`
    is R@K text-to-image and `i2t_sr{K}` R@K image-to-text (any own caption in the top K), with equal
    scores ordered at random by `seed` instead of counting against the query.

    Args:
        scores: float `[N_txt, N_img]`, higher ranks first, both ways.
        truth: bool `[N_txt, N_img]`.
        ks: the cut-offs K.
        seed: the tie-breaking seed.
        chunk_size: queries ranked at once.

    Returns:
        The keys of `semantic_retrieval_metrics`.

    Example:

    >>> scores = np.array([[1.0, 1.0], [0.0, 1.0]])  # text 0 cannot tell the images apart
    >>> own = np.eye(2, dtype=bool)
    >>> m = score_retrieval_metrics(scores, own, ks=(1,))
    >>> m["chance_t2i_sr1"], m["t2i_sr1"] in (0.5, 1.0)  # text 0's tie goes either way, by the seed
    (0.5, True)
    """
    ks = check_ints("ks", ks, minimum=1)
    scores = np.asarray(scores, np.float64)
    truth = np.asarray(truth, bool)
    if scores.ndim != 2 or truth.shape != scores.shape:
        raise ValueError(f"`scores` {scores.shape} and `truth` {truth.shape} must both be [N_txt, N_img].")
    if not np.isfinite(scores).all():
        raise ValueError("`scores` holds NaN or infinite values.")
    return _ranking_metrics(lambda rows: scores[rows], lambda rows: scores.T[rows], truth, ks, seed, chunk_size)


def _ranking_metrics(text_scores, image_scores, truth, ks, seed, chunk_size):
    """The metrics of both directions; `text_scores(rows)` scores the texts `rows` against every image, and
    `image_scores(rows)` the images `rows` against every text."""
    rng = np.random.default_rng(seed)
    metrics = {}
    for direction, score, relevant in (("t2i", text_scores, truth), ("i2t", image_scores, truth.T)):
        counts = relevant.sum(axis=1)
        asked = counts > 0
        hits = {k: [] for k in ks}
        precision = {k: [] for k in ks}
        top = min(max(ks), relevant.shape[1])
        for start in range(0, len(relevant), chunk_size):
            rows = slice(start, start + chunk_size)
            order = _ranked(score(rows), rng)[:, :top]
            found = np.take_along_axis(relevant[rows], order, axis=1)
            for k in ks:
                hits[k].append(found[:, :k].any(axis=1))
                precision[k].append(found[:, :k].sum(axis=1) / min(k, relevant.shape[1]))
        m, n = counts[asked].astype(np.float64), float(relevant.shape[1])
        for k in ks:
            metrics[f"{direction}_sr{k}"] = float(np.concatenate(hits[k])[asked].mean()) if asked.any() else 0.0
            metrics[f"{direction}_p{k}"] = float(np.concatenate(precision[k])[asked].mean()) if asked.any() else 0.0
            metrics[f"chance_{direction}_sr{k}"] = float(_chance_hit(m, n, min(k, relevant.shape[1])).mean()) if asked.any() else 0.0
            metrics[f"chance_{direction}_p{k}"] = float((m / n).mean()) if asked.any() else 0.0
        metrics[f"{direction}_queries_without_truth"] = int((~asked).sum())
    return metrics
