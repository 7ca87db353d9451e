"""Zero-shot classification with a dual encoder: prompt ensembles and top-K accuracy."""

import numpy as np

from mmkeras.metrics.retrieval import _check_indices
from mmkeras.metrics.retrieval import _check_ks
from mmkeras.metrics.retrieval import _check_same_width
from mmkeras.metrics.retrieval import _query_ranks
from mmkeras.validation import check_int

DEFAULT_TEMPLATES = (
    "a photo of a {}.",
    "a photo of the {}.",
    "a picture of a {}.",
    "an image of a {}.",
    "a drawing of a {}.",
)


def zero_shot_classifier(embed_text_fn, class_names, templates=DEFAULT_TEMPLATES, batch_size=256):
    """Builds one text embedding per class from a prompt ensemble.

    Every class name is put into every template (`"{}"` is replaced by the
    name), the prompts are embedded with `embed_text_fn`, each prompt embedding
    is L2-normalised, the embeddings of one class are averaged over templates
    and the mean is L2-normalised again.

    Args:
        embed_text_fn: callable taking a list of strings and returning their
            embeddings as an array-like `[len(strings), D]` (NumPy array or
            tensor), e.g. a wrapper around a dual encoder's text tower and
            tokenizer.
        class_names: non-empty sequence of class names (strings), in label
            order.
        templates: non-empty sequence of prompt templates, each containing
            `"{}"`.
        batch_size: int >= 1, the most prompts passed to `embed_text_fn` at once.

    Returns:
        float32 NumPy array `[C, D]` of unit-norm class embeddings, row `c` for
        `class_names[c]`.

    Raises:
        ValueError: empty or non-string `class_names` / `templates`, a template
            without `"{}"`, a bad `batch_size`, or `embed_text_fn` returning
            the wrong shape, NaN / inf, or an all-zero embedding.

    Example:

    >>> import numpy as np
    >>> table = {"cat": [1.0, 0.0], "dog": [0.0, 2.0]}
    >>> fn = lambda texts: np.array([table[t.split()[-1].rstrip(".")] for t in texts])
    >>> zero_shot_classifier(fn, ["cat", "dog"]).tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    """
    if isinstance(class_names, str) or not len(class_names):
        raise ValueError(f"`class_names` must be a non-empty list of strings, got {class_names!r}.")
    if isinstance(templates, str) or not len(templates):
        raise ValueError(f"`templates` must be a non-empty list of strings, got {templates!r}.")
    for name in class_names:
        if not isinstance(name, str):
            raise ValueError(f"`class_names` must hold strings, got {name!r}.")
    for template in templates:
        if not isinstance(template, str) or "{}" not in template:
            raise ValueError(f"`templates` must hold strings containing '{{}}', got {template!r}.")
    batch_size = check_int("batch_size", batch_size, minimum=1)

    prompts = [template.replace("{}", name) for name in class_names for template in templates]
    parts = []
    for start in range(0, len(prompts), batch_size):
        batch = prompts[start : start + batch_size]
        embedded = np.asarray(embed_text_fn(batch), dtype=np.float64)
        if embedded.ndim != 2 or embedded.shape[0] != len(batch):
            raise ValueError(
                f"`embed_text_fn` must return an array [num_texts, D] = [{len(batch)}, D], got "
                f"shape {embedded.shape}."
            )
        parts.append(embedded)
    embeddings = np.concatenate(parts)
    if not np.all(np.isfinite(embeddings)):
        raise ValueError("`embed_text_fn` returned NaN or infinite values.")
    norms = np.linalg.norm(embeddings, axis=-1, keepdims=True)
    if np.any(norms == 0):
        raise ValueError("`embed_text_fn` returned an all-zero embedding; it cannot be normalised.")
    embeddings = (embeddings / norms).reshape(len(class_names), len(templates), -1)
    means = embeddings.mean(axis=1)
    mean_norms = np.linalg.norm(means, axis=-1, keepdims=True)
    if np.any(mean_norms == 0):
        raise ValueError("A class's template embeddings average to zero; it cannot be normalised.")
    return (means / mean_norms).astype(np.float32)


def zero_shot_accuracy(image_embeddings, labels, class_embeddings, ks=(1,), chunk_size=1024):
    """Top-K accuracy of classifying images by their most similar class embedding.

    Scores are dot products (use unit-norm class embeddings, e.g. from
    `zero_shot_classifier`; the image norm does not change the ranking). As in
    `retrieval_metrics`, ties count against the image: it is correct at K when
    fewer than K other classes score greater than or equal to its true class.

    Args:
        image_embeddings: float array `[N, D]`.
        labels: int array `[N]`, the true class of each image in `[0, C)`.
        class_embeddings: float array `[C, D]`.
        ks: the K values of top-K accuracy (positive ints); K >= C gives 1.0.
        chunk_size: int >= 1, images scored per step (memory `chunk_size * C`).

    Returns:
        A JSON-serialisable dict `{"top1": float, "top5": float, ...}` with one
        fraction in [0, 1] per K.

    Raises:
        ValueError: bad shapes, mismatched widths, NaN / inf, labels that are
            not integers in `[0, C)`, or bad `ks` / `chunk_size`.

    Example:

    >>> import numpy as np
    >>> classes = np.eye(3, dtype="float32")
    >>> images = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.6, 0.0, 0.4]], "float32")
    >>> zero_shot_accuracy(images, [0, 1, 2], classes, ks=(1, 2))
    {'top1': 0.6666666666666666, 'top2': 1.0}
    """
    images, classes = _check_same_width(image_embeddings, "image_embeddings", class_embeddings, "class_embeddings")
    labels = _check_indices(labels, "labels", images.shape[0], classes.shape[0], ("N", "C"), "class")
    ks = _check_ks(ks)
    chunk_size = check_int("chunk_size", chunk_size, minimum=1)

    ranks = _query_ranks(images, classes, labels, np.arange(classes.shape[0]), chunk_size)
    return {f"top{k}": float(np.mean(ranks <= k)) for k in ks}
