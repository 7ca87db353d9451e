"""Serving SavedModel of a captioner: raw image bytes in, caption strings out."""

import tensorflow as tf

from mmkeras.export.serving_signatures import preprocessing_of, save_signatures

IMAGE_BYTES = tf.TensorSpec([None], tf.string, name="image_bytes")


def export_captioner(generator, path):
    """Writes a SavedModel with the signature `caption(image_bytes) -> {captions, scores}`.

    `caption(image_bytes: string[N]) -> {"captions": string[N], "scores": float32[N],
    "token_ids": int32[N, max_length]}`. Image decoding, the whole XLA-compiled
    KV-cached decode (the generator's strategy, beam width and maximum length
    are fixed here, at export time) and the detokenizer run inside the
    signature. Undecodable bytes raise `InvalidArgumentError` naming the image.
    Loading needs only TensorFlow and `import tensorflow_text`.

    Args:
        generator: a `mmkeras.generation.CaptionGenerator` whose model has
            a `preprocessor` (its image converter decodes the bytes; its
            tokenizer is the default detokenizer).
        path: output directory (local or `gs://`).

    Example:

    ```python
    generator = CaptionGenerator(model, strategy="beam", num_beams=3)
    export_captioner(generator, "runs/cap/export")  # or export_model(model, ..., strategy="beam")
    tf.saved_model.load("runs/cap/export").signatures["caption"](image_bytes=...)["captions"]
    ```
    """
    _, preprocessor = preprocessing_of(generator.model, need_tokenizer=False, need_images=True)
    if generator.detokenizer is None:
        raise ValueError("`generator` has no detokenizer: give the model a preprocessor with a tokenizer.")
    seed = tf.constant([0, 0], tf.int32)  # beam and greedy ignore it; sampling is reproducible

    def caption(image_bytes):
        outputs = generator.generate_fn(preprocessor(image_bytes), seed)
        return {
            "captions": generator.detokenize(outputs["token_ids"]),
            "scores": outputs["scores"],
            "token_ids": outputs["token_ids"],
        }

    save_signatures(path, {"caption": (caption, [IMAGE_BYTES])}, models=[generator.model],
                    layers=[generator.detokenizer, preprocessor])
    return path
