"""Image-text retrieval metrics (Recall@K, median / mean rank), memory-bounded.

Similarities are dot products of the embeddings as given (L2-normalise them
first for cosine similarity), computed in float32 with TensorFlow, one chunk of
queries against the whole gallery at a time. The full `[N_img, N_txt]` matrix is
never built: memory is about `chunk_size * max(N_img, N_txt) * 4` bytes on top of
the embeddings, so 100k images x 100k captions need a 25 MB score block (default
`chunk_size=64`) where the full matrix would need 40 GB. Larger chunks did not
run faster on CPU in our measurements: blocks past ~16 MB were freshly mapped by
the allocator at every step, and the page faults cost more than the bigger
matmul saved.

Ranks are 1-based. For a query, let `s*` be the score of its *best* correct
gallery item (for image-to-text, the best of the image's captions). Its rank is
`1 + (number of incorrect gallery items scoring >= s*)`: **ties count against
the query** (pessimistic), so a collapsed model whose embeddings are all equal
gets the worst rank rather than a perfect one. Other correct items never count
against it. Recall@K is the fraction of queries with rank <= K (K larger than
the gallery is allowed and gives 1.0).
"""

import numpy as np
import tensorflow as tf

from mmkeras.validation import check_int
from mmkeras.validation import check_ints


@tf.function(jit_compile=True, reduce_retracing=True)
def _chunk_ranks(queries, gallery, query_ids, gallery_owner):
    """1-based pessimistic ranks of one chunk of queries against the gallery.

    Gallery item `j` is correct for query `i` when `gallery_owner[j] == query_ids[i]`.
    """
    scores = tf.matmul(queries, gallery, transpose_b=True)  # [chunk, N_gallery]
    correct = tf.equal(query_ids[:, None], gallery_owner[None, :])
    best = tf.reduce_max(tf.where(correct, scores, -np.inf), axis=1, keepdims=True)
    beaten_by = tf.logical_and(scores >= best, tf.logical_not(correct))
    return 1 + tf.reduce_sum(tf.cast(beaten_by, tf.int32), axis=1)


def _query_ranks(queries, gallery, query_ids, gallery_owner, chunk_size):
    """Ranks of all `queries` (NumPy float32), `chunk_size` queries at a time."""
    num_queries = queries.shape[0]
    ranks = np.empty(num_queries, dtype=np.int64)
    if num_queries == 0:
        return ranks
    chunk = min(chunk_size, num_queries)
    gallery = tf.convert_to_tensor(gallery)
    gallery_owner = tf.convert_to_tensor(gallery_owner)
    for start in range(0, num_queries, chunk):
        q = queries[start : start + chunk]
        ids = query_ids[start : start + chunk]
        size = q.shape[0]
        if size < chunk:  # Pad the last chunk so every call has one static shape.
            q = np.concatenate([q, np.zeros((chunk - size, q.shape[1]), np.float32)])
            ids = np.concatenate([ids, np.full(chunk - size, -1, np.int64)])
        chunk_ranks = _chunk_ranks(tf.constant(q), gallery, tf.constant(ids), gallery_owner)
        ranks[start : start + size] = chunk_ranks.numpy()[:size]
    return ranks


def _check_embeddings(value, name):
    array = np.asarray(value)
    if array.ndim != 2:
        raise ValueError(f"`{name}` must be a 2-D array [N, D], got shape {array.shape}.")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"`{name}` must be non-empty, got shape {array.shape}.")
    if array.dtype.kind in "bOSUMm":  # bool, object, strings, dates
        raise ValueError(f"`{name}` must hold numbers, got dtype {array.dtype}.")
    try:  # also bfloat16 / float8 arrays from ml_dtypes (`.numpy()` of a bf16 tensor)
        array = array.astype(np.float32, copy=False)
    except (TypeError, ValueError) as error:
        raise ValueError(f"`{name}` must hold numbers, got dtype {array.dtype}.") from error
    if not np.all(np.isfinite(array)):
        raise ValueError(f"`{name}` contains NaN or infinite values.")
    return array


def _check_same_width(queries, queries_name, gallery, gallery_name):
    """Both embedding matrices, checked (`_check_embeddings`) and of the same width D."""
    queries = _check_embeddings(queries, queries_name)
    gallery = _check_embeddings(gallery, gallery_name)
    if queries.shape[1] != gallery.shape[1]:
        raise ValueError(
            f"`{queries_name}` and `{gallery_name}` must have the same width D, got "
            f"{queries.shape[1]} and {gallery.shape[1]}."
        )
    return queries, gallery


def _check_indices(values, name, count, bound, symbols, kind):
    """`values` as int64 `[count]` indices in `[0, bound)`.

    `symbols` name `count` and `bound` in the errors (e.g. `("N_txt", "N_img")`),
    `kind` what the indices point at (e.g. "image").
    """
    values = np.asarray(values)
    if values.shape != (count,):
        raise ValueError(f"`{name}` must have shape [{symbols[0]}] = [{count}], got {values.shape}.")
    if not np.issubdtype(values.dtype, np.integer):
        raise ValueError(f"`{name}` must hold integer {kind} indices, got dtype {values.dtype}.")
    values = values.astype(np.int64)
    bad = (values < 0) | (values >= bound)
    if bad.any():
        raise ValueError(
            f"`{name}` must be in [0, {symbols[1]}) = [0, {bound}), got "
            f"{values[bad][:5].tolist()} at positions {np.flatnonzero(bad)[:5].tolist()}."
        )
    return values


def _check_ks(ks):
    """The K values of Recall@K / top-K accuracy: ints >= 1, at least one."""
    if isinstance(ks, (list, tuple)) and not ks:
        raise ValueError("`ks` must hold at least one K.")
    return check_ints("ks", ks, minimum=1)


def retrieval_ranks(image_embeddings, text_embeddings, text_to_image, chunk_size=64):
    """Per-query 1-based ranks in both retrieval directions.

    See the module docstring for the definition of a rank and tie handling.

    Args:
        image_embeddings: float array `[N_img, D]`.
        text_embeddings: float array `[N_txt, D]`.
        text_to_image: int array `[N_txt]`, the index of each caption's image,
            in `[0, N_img)`. An image may have any number of captions.
        chunk_size: int >= 1, queries scored per step; memory grows as
            `chunk_size * gallery_size`.

    Returns:
        `(i2t_ranks, t2i_ranks)`, int64 NumPy arrays of shapes `[N_img]` and
        `[N_txt]`. An image without any caption has no image-to-text rank; it
        is marked 0 (it still appears as a distractor in text-to-image search).

    Raises:
        ValueError: bad shapes, mismatched embedding widths, NaN/inf values,
            non-integer or out-of-range ids, or a bad `chunk_size`.

    Example:

    >>> import numpy as np
    >>> images = np.eye(3, dtype="float32")
    >>> texts = np.array([[1, 0, 0], [0, 0.4, 0.6], [0.1, 0, 0.9]], "float32")
    >>> i2t, t2i = retrieval_ranks(images, texts, text_to_image=[0, 1, 2])
    >>> i2t.tolist(), t2i.tolist()
    ([1, 1, 1], [1, 2, 1])
    """
    images, texts = _check_same_width(image_embeddings, "image_embeddings", text_embeddings, "text_embeddings")
    owner = _check_indices(text_to_image, "text_to_image", texts.shape[0], images.shape[0], ("N_txt", "N_img"), "image")
    chunk_size = check_int("chunk_size", chunk_size, minimum=1)

    image_ids = np.arange(images.shape[0], dtype=np.int64)
    t2i = _query_ranks(texts, images, owner, image_ids, chunk_size)
    has_caption = np.zeros(images.shape[0], dtype=bool)
    has_caption[owner] = True
    i2t = np.zeros(images.shape[0], dtype=np.int64)
    queried = np.flatnonzero(has_caption)
    i2t[queried] = _query_ranks(
        images[queried] if len(queried) < images.shape[0] else images,
        texts,
        image_ids[queried],
        owner,
        chunk_size,
    )
    return i2t, t2i


def retrieval_metrics(
    image_embeddings, text_embeddings, text_to_image, ks=(1, 5, 10), chunk_size=64
):
    """Recall@K and median / mean rank for image-to-text and text-to-image retrieval.

    An image-to-text query is a hit at K when ANY of the image's captions is in
    the top K; a text-to-image query when its image is. Ties count against the
    query (see the module docstring). Computed in chunks: memory stays about
    `chunk_size * max(N_img, N_txt) * 4` bytes beyond the inputs.

    Args:
        image_embeddings: float array `[N_img, D]` (L2-normalised for cosine).
        text_embeddings: float array `[N_txt, D]`.
        text_to_image: int array `[N_txt]`, the image index of each caption.
        ks: the K values of Recall@K (positive ints).
        chunk_size: int >= 1, queries scored per step.

    Returns:
        A JSON-serialisable dict: `i2t_r{K}` and `t2i_r{K}` (fractions in
        [0, 1]) for each K, `i2t_median_rank`, `t2i_median_rank`,
        `i2t_mean_rank`, `t2i_mean_rank` (1-based), and `i2t_num_queries`,
        `t2i_num_queries` (images without a caption are not image-to-text
        queries).

    Raises:
        ValueError: as `retrieval_ranks`, or bad `ks`.

    Example:

    >>> import numpy as np
    >>> images = np.eye(2, dtype="float32")
    >>> texts = np.array([[1, 0], [0.9, 0.1], [0.2, 0.8]], "float32")
    >>> m = retrieval_metrics(images, texts, [0, 0, 1], ks=(1,))
    >>> m["i2t_r1"], m["t2i_r1"], m["t2i_median_rank"]
    (1.0, 1.0, 1.0)
    """
    ks = _check_ks(ks)
    i2t, t2i = retrieval_ranks(image_embeddings, text_embeddings, text_to_image, chunk_size)
    i2t = i2t[i2t > 0]
    metrics = {}
    for direction, ranks in (("i2t", i2t), ("t2i", t2i)):
        for k in ks:
            metrics[f"{direction}_r{k}"] = float(np.mean(ranks <= k))
    for direction, ranks in (("i2t", i2t), ("t2i", t2i)):
        metrics[f"{direction}_median_rank"] = float(np.median(ranks))
        metrics[f"{direction}_mean_rank"] = float(np.mean(ranks))
        metrics[f"{direction}_num_queries"] = int(ranks.size)
    return metrics
