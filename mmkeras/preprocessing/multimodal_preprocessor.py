"""The preprocessing a model carries: a tokenizer and an image converter."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="mmkeras")
class MultimodalPreprocessor(keras.layers.Layer):
    """Raw strings and image bytes to model inputs; travels with the model that owns it.

    A family model (`DualEncoder`, `Captioner`, `FusionClassifier`) keeps its
    preprocessor as `model.preprocessor`: it is part of the model's config, so
    a `.keras` file restores it with the weights, and
    `mmkeras.export.export_model(model, path)` builds the serving signatures
    from it alone. Either part may be absent (an image-only classifier has no
    tokenizer).

    Args:
        tokenizer: a tokenizer layer (strings -> int32 `[N, L]`), e.g. a
            `SubwordTokenizer`, or None.
        image_converter: an image layer (encoded bytes or pixels -> float
            `[N, H, W, 3]`), e.g. an `ImagePreprocessor`, or None.
        **kwargs: `keras.layers.Layer` arguments such as `name`.

    Example:

    >>> import numpy as np, tensorflow as tf
    >>> from mmkeras.preprocessing import ImagePreprocessor, SubwordTokenizer
    >>> tokenizer = SubwordTokenizer.train(["a red circle"], vocabulary_size=40, sequence_length=6)
    >>> pre = MultimodalPreprocessor(tokenizer, ImagePreprocessor(image_size=16))
    >>> png = tf.io.encode_png(np.zeros((20, 10, 3), "uint8"))
    >>> out = pre({"image_bytes": tf.stack([png]), "text": tf.constant(["a red circle"])})
    >>> out["images"].shape, out["token_ids"].shape
    (TensorShape([1, 16, 16, 3]), TensorShape([1, 6]))
    >>> pre.image_size, pre.sequence_length
    ((16, 16), 6)
    """

    def __init__(self, tokenizer=None, image_converter=None, **kwargs):
        super().__init__(**kwargs)
        if tokenizer is None and image_converter is None:
            raise ValueError("`MultimodalPreprocessor` needs a `tokenizer`, an `image_converter` or both.")
        for name, part in (("tokenizer", tokenizer), ("image_converter", image_converter)):
            if part is not None and not isinstance(part, keras.layers.Layer):
                raise ValueError(f"`{name}` must be a Keras layer, got {type(part).__name__}.")
        # === Config ===
        self.tokenizer = tokenizer
        self.image_converter = image_converter
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True
        self.built = True

    @property
    def image_size(self):
        """`(height, width)` of the converted images, or None without an image converter."""
        if self.image_converter is None:
            return None
        size = self.image_converter.image_size
        return (size, size) if isinstance(size, int) else tuple(size)

    @property
    def sequence_length(self):
        """Length of the token id rows, or None (no tokenizer, or one whose rows are ragged)."""
        length = getattr(self.tokenizer, "sequence_length", None)
        return None if length is None else int(length)

    def call(self, inputs):
        """`{"image_bytes", "text"}` (either may be absent) to `{"images", "token_ids"}`."""
        if not isinstance(inputs, dict) or not set(inputs) <= {"image_bytes", "text"}:
            raise ValueError(
                "`MultimodalPreprocessor` takes a dict with 'image_bytes' and/or 'text', got "
                f"{sorted(inputs) if isinstance(inputs, dict) else type(inputs).__name__}."
            )
        outputs = {}
        for key, output, part, name in (
            ("image_bytes", "images", self.image_converter, "image_converter"),
            ("text", "token_ids", self.tokenizer, "tokenizer"),
        ):
            if key in inputs:
                if part is None:
                    raise ValueError(f"This preprocessor has no {name}, so it cannot take {key!r}.")
                outputs[output] = part(tf.convert_to_tensor(inputs[key]))
        return outputs

    def get_config(self):
        config = super().get_config()
        config.update(
            tokenizer=keras.saving.serialize_keras_object(self.tokenizer),
            image_converter=keras.saving.serialize_keras_object(self.image_converter),
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for name in ("tokenizer", "image_converter"):
            config[name] = keras.saving.deserialize_keras_object(config.get(name))
        return cls(**config)


def check_matches_towers(preprocessor, image_encoder=None, token_ids_length=None, vocabulary_size=None):
    """Raises a `ValueError` naming both sizes when `preprocessor` does not fit a model's inputs.

    Args:
        preprocessor: a `MultimodalPreprocessor` or None (nothing to check).
        image_encoder: the model's image tower (its input `[B, H, W, 3]`), or None.
        token_ids_length: the token id length the model's text input takes, or None.
        vocabulary_size: the number of token ids the model can embed, or None.

    Example:

    >>> from mmkeras.preprocessing import ImagePreprocessor
    >>> check_matches_towers(MultimodalPreprocessor(image_converter=ImagePreprocessor(32)))
    """
    if preprocessor is None:
        return
    if not isinstance(preprocessor, MultimodalPreprocessor):
        raise ValueError(f"`preprocessor` must be a MultimodalPreprocessor, got {type(preprocessor).__name__}.")
    if image_encoder is not None and preprocessor.image_size is not None:
        tower = tuple(image_encoder.inputs[0].shape[1:3])
        if None not in tower and tower != preprocessor.image_size:
            raise ValueError(
                f"The preprocessor's image size {preprocessor.image_size} differs from the image tower's "
                f"input {tower}: set the image size in one place (the tower's `image_size`)."
            )
    length = preprocessor.sequence_length
    if token_ids_length is not None and length is not None and length != token_ids_length:
        raise ValueError(
            f"The tokenizer's sequence_length {length} differs from the model's token_ids length "
            f"{token_ids_length}."
        )
    if vocabulary_size is None or not hasattr(preprocessor.tokenizer, "vocabulary_size"):
        return
    try:
        tokens = preprocessor.tokenizer.vocabulary_size()
    except ValueError:  # a keras-hub tokenizer being loaded gets its vocabulary after its config
        return
    if tokens > vocabulary_size:
        raise ValueError(
            f"The tokenizer's vocabulary ({tokens} tokens) is larger than the model's vocabulary_size "
            f"{vocabulary_size}."
        )
