"""Zero-shot image classification with a dual encoder and its own preprocessing."""

import numpy as np

from mmkeras.metrics.zero_shot import zero_shot_classifier
from mmkeras.training.full_batches import predict_full_batches
from mmkeras.validation import check_int


def zero_shot_predict(model, images, labels, templates=("{}",), batch_size=64):
    """Scores images against label prompts: the probability of each label for each image.

    Each label is put into every template; the prompts of a label are embedded,
    averaged and normalised (`mmkeras.metrics.zero_shot_classifier`); the
    images are decoded and converted by the model's own preprocessor. For a
    CLIP model the probabilities are a softmax over the labels; for SigLIP a
    sigmoid per label (each is a yes/no probability, they need not sum to 1).

    Args:
        model: a `DualEncoder` with its `preprocessor` (a run's `model.keras`,
            an imported checkpoint).
        images: encoded images (JPEG, PNG, GIF, BMP or WebP bytes), a list or
            a `tf.string` vector, or float pixels `[N, H, W, 3]` already
            converted by the model's image converter.
        labels: the label names (strings), e.g. `["a dog", "a cat"]`.
        templates: prompt templates with `"{}"` for the label (default: the
            label alone), e.g. `("a photo of {}.", "a drawing of {}.")`.
        batch_size: images and prompts embedded per step.

    Returns:
        float32 NumPy array `[num_images, num_labels]`.

    Example:

    ```python
    model = keras.saving.load_model("runs/clip-import/model.keras")
    probs = zero_shot_predict(model, [open("dog.jpg", "rb").read()], ["a dog", "a cat"],
                              templates=("a photo of {}.",))
    ```
    """
    import tensorflow as tf

    preprocessor = getattr(model, "preprocessor", None)
    if preprocessor is None or preprocessor.tokenizer is None or preprocessor.image_converter is None:
        raise ValueError("`model` must be a DualEncoder with its preprocessor (tokenizer and image converter).")
    batch_size = check_int("batch_size", batch_size, minimum=1)
    images = tf.convert_to_tensor(images)
    image_model, converter = model.image_model, preprocessor.image_converter
    chunks = []
    for start in range(0, int(images.shape[0]), batch_size):  # bytes decoded a batch at a time
        chunk = images[start:start + batch_size]
        chunk = converter(chunk) if chunk.dtype == tf.string else chunk
        chunks.append(predict_full_batches(image_model, chunk, batch_size))
    if not chunks:
        raise ValueError("`images` is empty.")
    image_embeddings = np.concatenate(chunks)
    tokenizer, text_model = preprocessor.tokenizer, model.text_model

    def embed_text(strings):
        return predict_full_batches(text_model, tokenizer(tf.constant(list(strings))), batch_size)

    classes = zero_shot_classifier(embed_text, list(labels), templates, batch_size=batch_size)
    logits = np.asarray(model.similarity(image_embeddings, classes), np.float32)
    if model.loss_name == "siglip":
        return 1.0 / (1.0 + np.exp(-logits))
    logits = logits - logits.max(axis=1, keepdims=True)
    return np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
