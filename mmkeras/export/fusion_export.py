"""Serving SavedModel of a fusion classifier: raw image bytes and raw strings in, labels out."""

import numpy as np
import tensorflow as tf

from mmkeras.export.serving_signatures import preprocessing_of, save_signatures

IMAGE_BYTES = tf.TensorSpec([None], tf.string, name="image_bytes")
TEXT = tf.TensorSpec([None], tf.string, name="text")


def export_fusion_classifier(model, path):
    """Writes a SavedModel with a `classify(image_bytes, text)` signature.

    `classify(image_bytes: string[N], text: string[N])` returns, for every head
    of the model:

    - classification heads: `<head>_probs` float32 `[N, C]` (binary heads:
      `[N, 2]`, the probabilities of `labels[0]` and `labels[1]`) and
      `<head>_label` string `[N]`, the name of the most likely class (the
      label names are stored in the SavedModel); multilabel heads give the
      names of every label with probability >= 0.5, joined by ",";
    - regression heads: `<head>_value` float32 `[N]` (or `[N, K]`).

    Missing inputs: an empty `image_bytes` entry means "no image" and an empty
    (or whitespace-only) `text` entry "no text". The example is then
    classified from the other modality through the model's presence masks
    (the decoder is fed a blank image in place of the empty bytes, never the
    empty bytes). A model with only an image (text) tower takes only
    `image_bytes` (`text`). Undecodable non-empty bytes raise
    `InvalidArgumentError` naming the image, and so do `image_bytes` and
    `text` of different sizes (naming both); an empty batch gives empty
    outputs.

    Loading needs only TensorFlow and `import tensorflow_text` (the
    tokenizer's ops), not mmkeras.

    Args:
        model: a `FusionClassifier` with image and / or text towers, no
            extra (non image / text) inputs, and a `preprocessor` whose
            tokenizer / image converter serve its towers.
        path: output directory (local or `gs://`).

    Returns:
        `path`.

    Example:

    ```python
    export_fusion_classifier(model, "runs/fusion/export")  # or export_model(model, ...)
    serving = tf.saved_model.load("runs/fusion/export")
    out = serving.signatures["classify"](image_bytes=tf.constant([jpeg, b""]),
                                         text=tf.constant(["is there a red circle?", ""]))
    out["answer_label"]   # e.g. [b"yes", b"no"]
    ```
    """
    extra = getattr(model, "extra_inputs", None)
    if not hasattr(model, "heads") or not hasattr(model, "modalities"):
        raise ValueError(f"`model` must be a FusionClassifier, got {type(model).__name__}.")
    if extra:
        raise ValueError(
            f"`model` has extra inputs {sorted(extra)}: `classify(image_bytes, text)` serves image and "
            "text only. Export such a model with `keras.export.ExportArchive` and your own signature."
        )
    has_image = "image" in model.modalities
    has_text = "text" in model.modalities
    tokenizer, preprocessor = preprocessing_of(model, need_tokenizer=has_text, need_images=has_image)
    blank = tf.io.encode_png(np.zeros((8, 8, 3), np.uint8)).numpy()  # stands in for absent images
    heads = model.heads

    def classify(image_bytes=None, text=None):
        count = tf.size(image_bytes if has_image else text)
        if has_image and has_text:
            message = "`image_bytes` and `text` must have the same batch size, got image_bytes of size"
            check = tf.debugging.Assert(
                tf.equal(count, tf.size(text)), [message, count, "and text of size", tf.size(text)]
            )
            with tf.control_dependencies([check]):
                count = tf.identity(count)
        # An empty batch runs on one example with neither modality; the outputs are cut back to `count`.
        pad = tf.fill([tf.maximum(1 - count, 0)], "")
        if has_image:
            image_bytes = tf.concat([image_bytes, pad], 0)
        if has_text:
            text = tf.concat([text, pad], 0)
        inputs = {}
        if has_image:
            present = tf.strings.length(image_bytes) > 0
            safe_bytes = tf.where(present, image_bytes, tf.constant(blank))
            inputs["images"] = preprocessor(safe_bytes)
            inputs["image_present"] = tf.cast(present, tf.float32)
        if has_text:
            inputs["token_ids"] = tokenizer(text)
            present = tf.strings.length(tf.strings.strip(text)) > 0
            inputs["text_present"] = tf.cast(present, tf.float32)
        probabilities = model.probabilities(model(inputs, training=False))
        results = {}
        for head, spec in heads.items():
            p = tf.convert_to_tensor(probabilities[head])
            if spec["type"] == "regression":
                results[f"{head}_value"] = p
                continue
            names = tf.constant(spec["labels"])
            if spec["type"] == "binary":
                p = tf.stack([1.0 - p, p], axis=-1)
            results[f"{head}_probs"] = p
            if spec["type"] == "multilabel":
                chosen = tf.ragged.boolean_mask(
                    tf.broadcast_to(names, tf.shape(p)), p >= 0.5
                )
                results[f"{head}_label"] = tf.strings.reduce_join(chosen, axis=-1, separator=",")
            else:
                results[f"{head}_label"] = tf.gather(names, tf.argmax(p, axis=-1))
        return {key: value[:count] for key, value in results.items()}

    if has_image and has_text:
        endpoint = (lambda image_bytes, text: classify(image_bytes, text), [IMAGE_BYTES, TEXT])
    elif has_image:
        endpoint = (lambda image_bytes: classify(image_bytes=image_bytes), [IMAGE_BYTES])
    else:
        endpoint = (lambda text: classify(text=text), [TEXT])
    layers = []  # the preprocessing the signature uses
    if has_text:
        layers.append(tokenizer)
    if has_image:
        layers.append(preprocessor)
    save_signatures(path, {"classify": endpoint}, models=[model], layers=layers)
    return path
