"""What a run's report shows of it, computed from its task and model, on Shapes or real data.

Captioning samples come from the run's `samples.json`; retrieval examples and
confusion matrices are computed with the trained model on the task's
evaluation split (`task.data.evaluation_batches`: Shapes' test split, or the
held-out records of real data, whose images are shown scaled down). Every
function returns plain NumPy / Python data for `DemoReport`.
"""

import numpy as np

# Largest side, in pixels, of the real-data images shown in retrieval grids and caption cards.
GRID_IMAGE_SIZE, CAPTION_IMAGE_SIZE = 64, 128


def confusion_matrix(y_true, y_pred, num_classes):
    """Counts `[num_classes, num_classes]`: row = true label, column = predicted label.

    Args:
        y_true: 1-D integer labels in `[0, num_classes)`.
        y_pred: 1-D integer predictions, same length.
        num_classes: the number of classes.

    Example:

    >>> confusion_matrix([0, 1, 1, 2], [0, 1, 2, 2], 3).tolist()
    [[1, 0, 0], [0, 1, 1], [0, 0, 1]]
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.ndim != 1 or y_true.shape != y_pred.shape:
        raise ValueError(f"`y_true` {y_true.shape} and `y_pred` {y_pred.shape} must be 1-D of one length.")
    if not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ValueError(f"`num_classes` must be a positive int, got {num_classes!r}.")
    for name, labels in (("y_true", y_true), ("y_pred", y_pred)):
        if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(f"`{name}` must hold labels in [0, {num_classes}).")
    matrix = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(matrix, (y_true.astype(np.int64), y_pred.astype(np.int64)), 1)
    return matrix


def caption_samples(task, limit=8):
    """Held-out images with their generated and reference captions, from the run's `samples.json`.

    The evaluation images that have a caption, in the order `task.data.evaluation_batches` yields
    them (the order the evaluation captioned them in).

    Args:
        task: a trained captioning task (its run directory holds `samples{evaluation_suffix}.json`).
        limit: at most this many samples.

    Returns:
        A list of dicts `{"image": uint8 [H, W, 3], "generated": str, "references": [str], "true": bool or
        None}`: "true" says whether the generated caption is true of the image, where the records hold each
        image's true captions (Shapes), else None.

    Example:

    ```python
    samples = caption_samples(task, limit=4)
    print(samples[0]["generated"], samples[0]["references"][0])
    ```
    """
    samples = task.run_dir.read_json(f"samples{getattr(task, 'evaluation_suffix', '')}.json")[:limit]
    images, truths = [], []
    if samples:  # the captioned evaluation images, read as far as the samples go
        needed = 1 + max(s["image_id"] for s in samples)
        for records in _evaluation_batches(task):
            captioned = [i for i, c in enumerate(records["texts"]) if c]
            images += list(_thumbnails(task, records["images"][captioned], CAPTION_IMAGE_SIZE)) if captioned else []
            truths += [records["metadata"][i].get("true_captions") for i in captioned]
            if len(images) >= needed:
                break
    return [
        {"image": images[s["image_id"]], "generated": s["generated"], "references": list(s["references"]),
         "true": None if truths[s["image_id"]] is None else s["generated"] in truths[s["image_id"]]}
        for s in samples
    ]


def retrieval_samples(task, model, num_queries=4, k=5):
    """Text-to-image retrieval examples: the top-`k` held-out images for a few held-out captions.

    The queries are the first captions of evenly spaced held-out images (those with a caption),
    embedded with the trained model's `text_model` and ranked against every held-out image embedded
    with its `image_model` (`task.evaluated_image_embeddings`: those the task's evaluation ranked).

    Args:
        task: a matching task (Shapes or real data).
        model: its trained dual encoder.
        num_queries: number of captions.
        k: images per caption.

    Returns:
        A list of dicts `{"query": str, "images": uint8 [k, H, W, 3], "scores": [k floats],
        "correct": [k bools] (the image the caption was written for), "true": [k bools] (the
        caption is true of the image; None where the records do not say, as on real data), "rank":
        int (1-based rank of that image among all held-out images)}`.

    Example:

    ```python
    for query in retrieval_samples(task, model):
        print(query["query"], query["rank"], query["scores"])
    ```
    """
    import tensorflow as tf

    from mmkeras.training.full_batches import predict_full_batches

    batch = task.config["eval"]["batch_size"]
    images, image_embeddings, captions, truths = _embedded_held_out(task, model)
    if not 1 <= k <= len(images):
        raise ValueError(f"`k` must be in [1, {len(images)}] (the held-out images), got {k}.")
    captioned = [i for i, c in enumerate(captions) if c]
    spread = np.linspace(0, len(captioned) - 1, min(num_queries, len(captioned))).round().astype(int)
    picks = [captioned[i] for i in spread]
    queries = [captions[i][0] for i in picks]
    text_embeddings = predict_full_batches(model.text_model, task.tokenizer(tf.constant(queries)), batch)
    scores = np.asarray(text_embeddings) @ np.asarray(image_embeddings).T
    results = []
    for query, truth, row in zip(queries, picks, scores):
        order = np.argsort(-row, kind="stable")
        top = order[:k]
        results.append({
            "query": query,
            "images": images[top],
            "scores": [float(row[i]) for i in top],
            "correct": [bool(i == truth) for i in top],
            "true": None if None in truths else [query in truths[i] for i in top],
            "rank": int(np.nonzero(order == truth)[0][0]) + 1,
        })
    return results


def fusion_confusion(task, model, head=None, predicted=None):
    """The confusion matrix of one head of a trained fusion classifier on the held-out split.

    Args:
        task: a fusion task: Shapes (heads `"answer"` and / or `"match"`, test split) or real data
            (one head, `"label"`, held-out records).
        model: its trained fusion classifier.
        head: the head (default: the task's first).
        predicted: `task.predictions(model)` if already at hand (default: those the task's latest
            evaluation of `model` made, else computed).

    Returns:
        `{"head": head, "labels": [class names], "matrix": int array [C, C]}`, rows = true labels.

    Example:

    ```python
    confusion = fusion_confusion(task, model, "answer")
    print(confusion["labels"], confusion["matrix"].trace() / confusion["matrix"].sum())
    ```
    """
    heads = fusion_heads(task)
    head = heads[0] if head is None else head
    if head not in heads:
        raise ValueError(f"`head` must be one of the task's heads {heads}, got {head!r}.")
    labels = list(task.heads[head]["labels"])
    predicted = task.evaluated_predictions(model) if predicted is None else predicted
    rows = predicted["labels"][head] >= 0
    y_true = predicted["labels"][head][rows]
    y_pred = _predicted_labels(np.asarray(predicted["probabilities"]["both"][head])[rows])
    return {"head": head, "labels": labels, "matrix": confusion_matrix(y_true, y_pred, len(labels))}


def fusion_heads(task):
    """The heads of a fusion task (Shapes: "answer" and / or "match"; real data: "label", set from the data).

    Args:
        task: a fusion task.

    Example:

    >>> import types
    >>> fusion_heads(types.SimpleNamespace(heads={"answer": {}, "match": {}}))
    ['answer', 'match']
    """
    if task.heads is None:
        task.prepare()  # real data: the head comes from the training labels
    return list(task.heads)


def _evaluation_batches(task):
    return task.data.evaluation_batches(task.preprocessor, task.config["eval"]["batch_size"])


def _predicted_labels(probabilities):
    """Labels from `[N, C]` probabilities (argmax) or `[N]` binary ones (>= 0.5)."""
    return probabilities.argmax(axis=-1) if probabilities.ndim == 2 else (probabilities >= 0.5).astype(np.int64)


def _thumbnails(task, images, size):
    """uint8 pixels of the task's preprocessed `images`, scaled down to at most `size` pixels a side."""
    import tensorflow as tf

    pixels = task.preprocessor.denormalize(images)
    height, width = pixels.shape[1:3]
    scale = size / max(height, width)
    if scale < 1:
        resized = tf.image.resize(pixels, (round(height * scale), round(width * scale)), antialias=True)
        pixels = tf.saturate_cast(tf.round(resized), tf.uint8)
    return np.asarray(pixels)


def _embedded_held_out(task, model):
    """`(uint8 images, image embeddings, captions per image, true captions per image or None)` of the
    evaluation split; the embeddings are those of the task's latest evaluation of `model` where it made one."""
    images, captions, truths = [], [], []
    for records in _evaluation_batches(task):
        images.append(_thumbnails(task, records["images"], GRID_IMAGE_SIZE))
        captions += records["texts"]
        truths += [m.get("true_captions") for m in records["metadata"]]
    if not images:
        raise ValueError("The evaluation split has no decodable image: raise `data.val_fraction`.")
    return np.concatenate(images), np.asarray(task.evaluated_image_embeddings(model)), captions, truths
