"""Writes serving SavedModels: named signatures over Keras models, traced once each."""

import tensorflow as tf


def save_signatures(path, endpoints, *, models=(), layers=()):
    """Writes a SavedModel whose signatures are `endpoints`; returns `path`.

    The shared writer of the captioner, dual-encoder and fusion exports. It
    does what `keras.export.ExportArchive` does for them 2.5x faster
    (`benchmarks/export_time.py`), because it traces every endpoint once:

    - The endpoints are traced only inside `tf.saved_model.save`. A function
      traced before saving is traced again there, since the save options are
      part of a `tf.function`'s cache key (`ExportArchive` traces first, to
      list the variables used).
    - A Keras model is saved through its variables, not as an object: saving
      a `keras.Model` object also traces its default serving function (the
      whole model, once per sub-model) for a signature nobody asked for.

    The first endpoint is also the `serving_default` signature (what
    TF-Serving calls by default), and every endpoint stays callable as an
    attribute of the loaded object (`tf.saved_model.load(path).caption(...)`).

    Args:
        path: output directory (local or `gs://`).
        endpoints: dict `{name: (fn, input_signature)}`, in order; `fn` takes
            tensors matching the list of `tf.TensorSpec` and returns a dict of
            tensors.
        models: the Keras models (or layers) whose variables the endpoints read.
        layers: objects that own TensorFlow resources the endpoints use (a
            tokenizer's lookup tables, an image preprocessor), saved as objects.

    Returns:
        `path`.

    Example:

    ```python
    spec = tf.TensorSpec([None, 4], tf.float32, name="x")
    save_signatures("export", {"predict": (lambda x: {"y": model(x)}, [spec])}, models=[model])
    tf.saved_model.load("export").signatures["predict"](x=tf.ones([2, 4]))["y"]
    ```
    """
    if not endpoints:
        raise ValueError("`endpoints` must name at least one signature.")
    root = tf.Module()
    root.model_variables = [v for model in models for v in model.variables]
    root.layers = list(layers)
    signatures = {}
    for name, (fn, input_signature) in endpoints.items():
        signatures[name] = tf.function(fn, input_signature=list(input_signature), autograph=False)
        setattr(root, name, signatures[name])
    signatures.setdefault("serving_default", signatures[next(iter(endpoints))])
    tf.saved_model.save(root, path, signatures=signatures)
    return path


def preprocessing_of(model, need_tokenizer, need_images):
    """The `(tokenizer, image_converter)` of `model.preprocessor`, with a clear error for a missing part.

    Args:
        model: a family model (`DualEncoder`, `Captioner`, `FusionClassifier`).
        need_tokenizer: whether the export tokenizes text.
        need_images: whether the export decodes image bytes.

    Returns:
        The tokenizer and the image converter (either None when not needed and absent).

    Example:

    >>> import keras
    >>> preprocessing_of(keras.Sequential([]), need_tokenizer=False, need_images=False)
    (None, None)
    """
    preprocessor = getattr(model, "preprocessor", None)
    tokenizer = getattr(preprocessor, "tokenizer", None)
    image_converter = getattr(preprocessor, "image_converter", None)
    for needed, part, name in ((need_tokenizer, tokenizer, "tokenizer"), (need_images, image_converter, "image_converter")):
        if needed and part is None:
            raise ValueError(
                f"`{model.name}` has no preprocessor {name}: build the model with "
                f"`preprocessor=MultimodalPreprocessor(...)` (a trained run's model.keras has one)."
            )
    return tokenizer, image_converter
