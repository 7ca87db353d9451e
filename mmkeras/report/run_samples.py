"""What the demo report shows of a trained run, computed from its task and model.

Captioning samples come from the run's `samples.json`; retrieval examples and
confusion matrices are computed with the trained model on the task's held-out
split. Every function returns plain NumPy / Python data for `DemoReport`.
"""

import numpy as np


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
    """Test images with their generated and reference captions, from the run's `samples.json`.

    Args:
        task: a trained `CaptioningTask` (its run directory holds `samples.json`).
        limit: at most this many samples.

    Returns:
        A list of dicts `{"image": uint8 [H, W, 3], "generated": str, "references": [str]}`.

    Example:

    ```python
    samples = caption_samples(task, limit=4)
    print(samples[0]["generated"], samples[0]["references"][0])
    ```
    """
    images = task.shapes.images("test")
    samples = task.run_dir.read_json("samples.json")[:limit]
    return [
        {"image": images[s["image_id"]], "generated": s["generated"], "references": list(s["references"])}
        for s in samples
    ]


def retrieval_samples(task, model, num_queries=4, k=5):
    """Text-to-image retrieval examples: the top-`k` test images for a few test captions.

    The queries are the first captions of evenly spaced test scenes, embedded with the trained
    model's `text_model` and ranked against every test image embedded with its `image_model`.

    Args:
        task: a `MatchingTask`.
        model: its trained dual encoder.
        num_queries: number of captions.
        k: images per caption.

    Returns:
        A list of dicts `{"query": str, "images": uint8 [k, H, W, 3], "scores": [k floats],
        "correct": [k bools] (the image the caption was written for), "rank": int (1-based rank
        of that image among all test images)}`.

    Example:

    ```python
    for query in retrieval_samples(task, model):
        print(query["query"], query["rank"], query["scores"])
    ```
    """
    import tensorflow as tf

    from mmkeras.training.full_batches import predict_full_batches

    scenes = task.shapes.scenes("test")
    images = task.shapes.images("test")
    if not 1 <= k <= len(scenes):
        raise ValueError(f"`k` must be in [1, {len(scenes)}] (the test images), got {k}.")
    batch = task.config["eval"]["batch_size"]
    image_embeddings = predict_full_batches(model.image_model, task.preprocessor(images), batch)
    picks = np.linspace(0, len(scenes) - 1, min(num_queries, len(scenes))).round().astype(int)
    queries = [scenes[i]["captions"][0] for i in picks]
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
            "rank": int(np.nonzero(order == truth)[0][0]) + 1,
        })
    return results


def fusion_confusion(task, model, head="answer"):
    """The confusion matrix of one head of a trained fusion classifier on the test split.

    Args:
        task: a `FusionTask`.
        model: its trained fusion classifier.
        head: `"answer"` (question answering) or `"match"` (caption matching).

    Returns:
        `{"head": head, "labels": [class names], "matrix": int array [C, C]}`, rows = true labels.

    Example:

    ```python
    confusion = fusion_confusion(task, model, "answer")
    print(confusion["labels"], confusion["matrix"].trace() / confusion["matrix"].sum())
    ```
    """
    if head not in getattr(task, "tasks", ()):
        raise ValueError(f"`head` must be one of the task's heads {list(getattr(task, 'tasks', ()))}, got {head!r}.")
    examples = task.examples("test")
    rows = examples["task"] == head
    probabilities = np.asarray(task.predict(model, "test")[head])[rows]
    if probabilities.ndim == 2:
        y_true, y_pred = examples["answer_id"][rows], probabilities.argmax(axis=-1)
    else:
        y_true, y_pred = examples["match_label"][rows], (probabilities >= 0.5).astype(np.int64)
    labels = list(task.heads[head]["labels"])
    return {"head": head, "labels": labels, "matrix": confusion_matrix(y_true, y_pred, len(labels))}
