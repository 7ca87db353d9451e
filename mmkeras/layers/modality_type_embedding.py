import keras
from keras import ops


@keras.saving.register_keras_serializable(package="mmkeras")
class ModalityTypeEmbedding(keras.layers.Layer):
    """Adds a learned per-modality vector to token sequences.

    Joint (early-fusion) Transformers see image, text and other tokens in one
    sequence; this layer tells them apart, as BERT's segment embeddings do. One
    instance holds one table and is called once per modality.

    Args:
        num_modalities: int, how many modality types there are.
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        tokens: float tensor `[B, T, D]`.
        modality_index: python int, the modality every token belongs to.
        type_ids: optional int tensor `[B, T]` giving a modality per token
            (overrides `modality_index`).

    Example:

    >>> import numpy as np
    >>> types = ModalityTypeEmbedding(num_modalities=2)
    >>> image_tokens = types(np.zeros((2, 5, 8), "float32"), modality_index=0)
    >>> text_tokens = types(np.zeros((2, 3, 8), "float32"), modality_index=1)
    >>> image_tokens.shape, text_tokens.shape
    (TensorShape([2, 5, 8]), TensorShape([2, 3, 8]))
    """

    def __init__(self, num_modalities, **kwargs):
        super().__init__(**kwargs)
        if int(num_modalities) < 1:
            raise ValueError(f"`num_modalities` must be >= 1, got {num_modalities!r}.")
        self.num_modalities = int(num_modalities)

    def build(self, input_shape):
        self.embedding = self.add_weight(
            shape=(self.num_modalities, input_shape[-1]),
            initializer=keras.initializers.RandomNormal(stddev=0.02),
            name="embedding",
        )

    def call(self, tokens, modality_index=0, type_ids=None):
        table = ops.cast(self.embedding, tokens.dtype)
        if type_ids is not None:
            return tokens + ops.take(table, ops.cast(type_ids, "int32"), axis=0)
        if not 0 <= int(modality_index) < self.num_modalities:
            raise ValueError(
                f"`modality_index` must be in [0, {self.num_modalities}), got {modality_index!r}."
            )
        return tokens + table[int(modality_index)]

    def compute_output_shape(self, input_shape):
        return input_shape

    # === Config ===
    def get_config(self):
        config = super().get_config()
        config.update({"num_modalities": self.num_modalities})
        return config
