import keras
from keras import ops

from mmkeras.layers import RepeatToBatch, TokenAndPositionEmbedding
from mmkeras.layers.transformer_decoder_block import TransformerDecoderBlock
from mmkeras.models.builder import builder_of
from mmkeras.models.saved_parts import from_config_with_parts
from mmkeras.preprocessing.multimodal_preprocessor import check_matches_towers
from mmkeras.validation import check_int
from mmkeras.validation import check_rate


@keras.saving.register_keras_serializable(package="mmkeras")
class Captioner(keras.Model):
    """Image captioning Transformer: image tower + cross-attending text decoder.

    `images -> image tower ["sequence"] -> (projection to the decoder width) ->
    layer norm` gives the image tokens; `token_ids -> token + position
    embedding -> N x TransformerDecoderBlock (causal self-attention,
    cross-attention to the image tokens, MLP) -> layer norm -> logits` over the
    vocabulary, optionally tied to the token embedding (keras-hub
    `ReversibleEmbedding` in reverse mode).

    Teacher-forcing convention: `token_ids` is the decoder *input* and
    `logits[:, t]` predicts the token that follows `token_ids[:, t]`. For a
    caption `c = [BOS] w1 ... wn [EOS] [PAD]...` (`[PAD]=0, [BOS]=2, [EOS]=3`),
    the inputs are `c[:, :-1]` and the targets `c[:, 1:]` (see
    `split_for_teacher_forcing`). Padding needs no attention mask: the
    self-attention is causal and padding sits at the end, so real positions
    never see it, and `MaskedSequenceLoss` ignores targets equal to `[PAD]`.

    Prefer the `captioner(...)` builder; the class is public for `isinstance`
    checks and deserialisation. Decoding (greedy, beam, top-k, top-p with a KV
    cache) lives in `mmkeras.generation.CaptionGenerator`; the methods below
    expose the pieces: `encode_images` (image tokens, once per image),
    `decode_hidden` / `decode_logits` (uncached decoder pass) and
    `hidden_to_logits`; the KV-cached step is `mmkeras.generation.decoder_steps`.

    Args:
        image_encoder: any mmkeras image tower (a model returning `{"sequence",
            "pooled"}` from `images [B, H, W, 3]`).
        vocabulary_size: int, size of the token vocabulary; taken from the
            preprocessor's tokenizer when None and a preprocessor is given.
        sequence_length: int, the longest decoder input (number of learned
            positions); generation can produce at most this many tokens.
        num_layers: int, number of decoder blocks.
        num_heads: int, attention heads per block.
        hidden_dim: int, decoder width; defaults to the width of the image
            tokens. Image tokens are projected to it when the widths differ.
        mlp_dim: int, MLP width per block; defaults to `4 * hidden_dim`.
        dropout: float, dropout rate in the decoder blocks.
        tie_weights: bool, output logits reuse the token embedding matrix.
        preprocessor: optional `MultimodalPreprocessor` kept with the model
            (and in its `.keras` file): its tokenizer makes caption rows of
            `sequence_length + 1` ids (the teacher-forcing shift) and turns
            generated ids back into strings; its image converter decodes
            image bytes for serving (`mmkeras.export.export_model`).
        dtype: optional dtype policy for the decoder, e.g. "mixed_bfloat16";
            the logits are always float32.
        **kwargs: `keras.Model` arguments such as `name`.

    Inputs: `{"images": [B, H, W, 3] float, "token_ids": [B * K, L] int32}` with
    `L <= sequence_length`. With `K > 1` every image comes with `K` captions
    (rows `i*K .. i*K+K-1` of `token_ids` belong to image `i`): the image is
    encoded once and its tokens repeated for its captions, so training on
    several reference captions per image costs the image tower nothing extra.
    Outputs: next-token logits `[B * K, L, vocabulary_size]`, float32.

    Example:

    >>> import numpy as np
    >>> from mmkeras.encoders import ViTEncoder
    >>> from mmkeras.losses.masked_sequence_loss import MaskedSequenceLoss
    >>> vit = ViTEncoder(image_size=32, patch_size=16, hidden_dim=16, num_layers=1,
    ...                  num_heads=2, mlp_dim=32)
    >>> model = captioner(vit, vocabulary_size=30, sequence_length=8, num_layers=1,
    ...                   num_heads=2, mlp_dim=32)
    >>> captions = np.array([[2, 7, 8, 9, 3, 0, 0, 0, 0]] * 4, "int32")
    >>> inputs, targets = split_for_teacher_forcing(
    ...     {"images": np.zeros((4, 32, 32, 3), "float32"), "token_ids": captions})
    >>> model(inputs).shape
    TensorShape([4, 8, 30])
    >>> model.compile(optimizer="adam", loss=MaskedSequenceLoss())
    >>> history = model.fit(inputs, targets, epochs=1, verbose=0)
    """

    def __init__(self, image_encoder, vocabulary_size=None, sequence_length=32, num_layers=6, num_heads=8,
                 hidden_dim=None, mlp_dim=None, dropout=0.1, tie_weights=True, preprocessor=None, dtype=None,
                 **kwargs):
        tokenizer = None if preprocessor is None else preprocessor.tokenizer
        if vocabulary_size is None and tokenizer is not None:
            vocabulary_size = tokenizer.vocabulary_size()
        vocabulary_size = check_int("vocabulary_size", vocabulary_size, minimum=4)
        sequence_length = check_int("sequence_length", sequence_length, minimum=1)
        num_layers = check_int("num_layers", num_layers, minimum=1)
        num_heads = check_int("num_heads", num_heads, minimum=1)
        if hidden_dim is not None:
            hidden_dim = check_int("hidden_dim", hidden_dim, minimum=1)
        if mlp_dim is not None:
            mlp_dim = check_int("mlp_dim", mlp_dim, minimum=1)
        dropout = check_rate("dropout", dropout)
        if not hasattr(image_encoder, "inputs") or not image_encoder.inputs:
            raise ValueError(
                "`image_encoder` must be a built functional model taking `images`, got "
                f"{type(image_encoder).__name__}."
            )
        image_outputs = image_encoder.output
        if not isinstance(image_outputs, dict) or "sequence" not in image_outputs:
            raise ValueError(
                "`image_encoder` must return a dict with a 'sequence' entry ([B, T, D] image "
                f"tokens), got {type(image_outputs).__name__}."
            )
        image_width = int(image_outputs["sequence"].shape[-1])
        hidden_dim = image_width if hidden_dim is None else hidden_dim
        if hidden_dim % num_heads:
            raise ValueError(
                f"`hidden_dim` ({hidden_dim}) must be divisible by `num_heads` ({num_heads})."
            )
        mlp_dim = 4 * hidden_dim if mlp_dim is None else mlp_dim

        check_matches_towers(
            preprocessor, image_encoder, token_ids_length=sequence_length + 1, vocabulary_size=vocabulary_size
        )

        # === Layers ===
        image_projection = None
        if image_width != hidden_dim:
            image_projection = keras.layers.Dense(hidden_dim, dtype=dtype, name="image_projection")
        image_norm = keras.layers.LayerNormalization(epsilon=1e-6, dtype=dtype, name="image_norm")
        embedding = TokenAndPositionEmbedding(
            vocabulary_size=vocabulary_size,
            sequence_length=sequence_length,
            embedding_dim=hidden_dim,
            tie_weights=bool(tie_weights),
            embeddings_initializer=keras.initializers.RandomNormal(stddev=0.02),
            dtype=dtype,
            name="embedding",
        )
        blocks = [
            TransformerDecoderBlock(
                intermediate_dim=mlp_dim,
                num_heads=num_heads,
                dropout=dropout,
                dtype=dtype,
                name=f"decoder_block_{i}",
            )
            for i in range(num_layers)
        ]
        final_norm = keras.layers.LayerNormalization(epsilon=1e-6, dtype=dtype, name="decoder_norm")
        to_float32 = keras.layers.Activation("linear", dtype="float32", name="logits")

        # === Functional Model ===
        images = keras.Input(image_encoder.inputs[0].shape[1:], name="images")
        token_ids = keras.Input((None,), dtype="int32", name="token_ids")
        image_tokens = image_encoder(images)["sequence"]
        if image_projection is not None:
            image_tokens = image_projection(image_tokens)
        image_tokens = image_norm(image_tokens)
        x = embedding(token_ids)
        image_tokens = RepeatToBatch(name="captions_per_image")(image_tokens, x)
        for block in blocks:
            x = block(x, image_tokens)
        x = final_norm(x)
        logits = to_float32(embedding.token_embedding(x, reverse=True))
        super().__init__(inputs={"images": images, "token_ids": token_ids}, outputs=logits, **kwargs)

        # === Config ===
        self.image_encoder = image_encoder
        self.image_projection = image_projection
        self.image_norm = image_norm
        self.embedding = embedding
        self.decoder_blocks = blocks
        self.final_norm = final_norm
        self.preprocessor = preprocessor
        self.vocabulary_size = vocabulary_size
        self.sequence_length = sequence_length
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.mlp_dim = mlp_dim
        self.dropout = dropout
        self.tie_weights = bool(tie_weights)
        self._dtype_arg = None if dtype is None else keras.dtype_policies.get(dtype).name

    # --- Pieces used by decoding ---------------------------------------------
    def encode_images(self, images, training=False):
        """Image tokens `[B, S, hidden_dim]` the decoder cross-attends to."""
        tokens = self.image_encoder(images, training=training)["sequence"]
        if self.image_projection is not None:
            tokens = self.image_projection(tokens)
        return self.image_norm(tokens)

    def _logits(self, hidden):
        logits = self.embedding.token_embedding(self.final_norm(hidden), reverse=True)
        return ops.cast(logits, "float32")

    def decode_hidden(self, token_ids, image_tokens, training=False):
        """Uncached decoder pass: final hidden states `[B, L, hidden_dim]` (before the norm)."""
        x = self.embedding(token_ids)
        for block in self.decoder_blocks:
            x = block(x, image_tokens, training=training)
        return x

    def decode_logits(self, token_ids, image_tokens, training=False):
        """Uncached decoder pass over `token_ids [B, L]`: float32 logits `[B, L, V]`."""
        return self._logits(self.decode_hidden(token_ids, image_tokens, training=training))

    def hidden_to_logits(self, hidden):
        """Final norm + vocabulary projection, float32."""
        return self._logits(hidden)

    # --- Config -------------------------------------------------------------
    def get_config(self):
        config = {
            "name": self.name,
            "trainable": self.trainable,
            "image_encoder": keras.saving.serialize_keras_object(self.image_encoder),
            "vocabulary_size": self.vocabulary_size,
            "sequence_length": self.sequence_length,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "hidden_dim": self.hidden_dim,
            "mlp_dim": self.mlp_dim,
            "dropout": self.dropout,
            "tie_weights": self.tie_weights,
            "dtype": self._dtype_arg,
        }
        if self.preprocessor is not None:
            config["preprocessor"] = keras.saving.serialize_keras_object(self.preprocessor)
        return config

    @classmethod
    def from_config(cls, config):
        return from_config_with_parts(cls, config)

    @property
    def tokenizer(self):
        """The preprocessor's tokenizer (None without a preprocessor)."""
        return None if self.preprocessor is None else self.preprocessor.tokenizer


@builder_of(Captioner)
def captioner(*, name="captioner", **arguments):
    """Builds an image captioning Transformer (encoder-decoder with cross-attention).

    Any mmkeras image tower works (ViT, keras.applications CNNs, keras-hub or
    TF-Hub towers): its `"sequence"` output is projected to the decoder width
    if needed, layer-normed, and cross-attended by every decoder block.

    Args:
        image_encoder: an image tower returning `{"sequence", "pooled"}`.
        vocabulary_size: int; taken from the preprocessor's tokenizer when
            None and a preprocessor is given.
        sequence_length: int, longest decoder input / generated caption.
        num_layers: int, decoder blocks.
        num_heads: int, attention heads.
        hidden_dim: decoder width (default: the image token width).
        mlp_dim: MLP width (default `4 * hidden_dim`).
        dropout: float, decoder dropout.
        tie_weights: bool, tie the output projection to the token embedding.
        preprocessor: optional `MultimodalPreprocessor` kept with the model
            (tokenizes captions, detokenizes generated ones, decodes images).
        dtype: optional dtype policy for the decoder, e.g. "mixed_bfloat16".
        name: model name.

    Returns:
        A `Captioner` mapping `{"images", "token_ids"}` to float32 next-token
        logits `[B, L, vocabulary_size]`.

    Example:

    >>> import numpy as np
    >>> from mmkeras.encoders import ViTEncoder
    >>> vit = ViTEncoder(image_size=32, patch_size=16, hidden_dim=16, num_layers=1,
    ...                  num_heads=2, mlp_dim=32)
    >>> model = captioner(vit, vocabulary_size=30, sequence_length=8, num_layers=1,
    ...                   num_heads=2, hidden_dim=32)
    >>> model({"images": np.zeros((2, 32, 32, 3), "float32"),
    ...        "token_ids": np.array([[2, 5, 6], [2, 7, 3]], "int32")}).shape
    TensorShape([2, 3, 30])
    """
    return Captioner(name=name, **arguments)


def split_for_teacher_forcing(features, targets=None):
    """`{"images", "token_ids": [B, L+1]}` -> `({"images", "token_ids": ids[:, :-1]}, ids[:, 1:])`.

    Use with `tf.data.Dataset.map` on batches of full captions (`[BOS] ...
    [EOS] [PAD]...`) to get the `(inputs, targets)` pairs `Captioner.fit`
    expects. A second positional argument is ignored, so it also maps
    datasets of `(features, anything)` pairs.

    Example:

    >>> import numpy as np
    >>> x, y = split_for_teacher_forcing({"images": np.zeros((1, 4, 4, 3), "float32"),
    ...                                   "token_ids": np.array([[2, 5, 3, 0]], "int32")})
    >>> x["token_ids"].numpy().tolist(), y.numpy().tolist()
    ([[2, 5, 3]], [[5, 3, 0]])
    """
    if "token_ids" not in features or "images" not in features:
        raise ValueError(
            f"`features` must have the keys 'images' and 'token_ids', got {sorted(features)}."
        )
    token_ids = ops.convert_to_tensor(features["token_ids"])
    if len(token_ids.shape) != 2:
        raise ValueError(
            f"`features['token_ids']` must have shape [batch, length], got {tuple(token_ids.shape)}."
        )
    token_ids = ops.cast(token_ids, "int32")
    inputs = {key: ops.convert_to_tensor(value) for key, value in features.items()}
    inputs["token_ids"] = token_ids[:, :-1]
    return inputs, token_ids[:, 1:]

