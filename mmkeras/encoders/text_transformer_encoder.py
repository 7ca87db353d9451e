import keras
import keras_hub
from keras import ops

from mmkeras.encoders.encoder import Encoder
from mmkeras.layers.attention_pooling import AttentionPooling
from mmkeras.layers.transformer_encoder_block import TransformerEncoderBlock
from mmkeras.preprocessing.special_tokens import PAD_ID
from mmkeras.validation import check_int

TEXT_POOLINGS = ("first", "last", "mean", "attention")


@keras.saving.register_keras_serializable(package="mmkeras")
class TextTransformerEncoder(Encoder):
    """Transformer text tower, causal or bidirectional.

    Token + position embeddings (`keras_hub.layers.TokenAndPositionEmbedding`),
    pre-norm encoder blocks, final layer norm. Id 0 is `[PAD]` and is masked out,
    unless `end_token_id` is set: then the text ends at its first end token and
    every later position is padding, whatever its id (CLIP's vocabulary has a
    real token at id 0, "!", and its tokenizers pad with the end token or "!").

    Pooling: "first" takes the first token (`[BOS]`, a BERT-style summary token,
    suited to bidirectional towers); "last" takes the last non-padding token
    (`[EOS]`, CLIP-style, the only token that has seen the whole caption in a
    causal tower); "mean" averages non-padding tokens; "attention" uses a learned
    query.

    Args:
        vocabulary_size: int, number of token ids.
        sequence_length: int, maximum number of tokens.
        hidden_dim: int, token width.
        num_layers: int, number of blocks.
        num_heads: int, attention heads.
        mlp_dim: int, MLP width.
        causal: bool, causal self-attention.
        pooling: one of "first", "last", "mean", "attention". Defaults to "last"
            when causal, else "first".
        dropout: float, dropout rate.
        layer_norm_epsilon: float, epsilon of the blocks' and the final layer
            norms (1e-5 in CLIP checkpoints).
        activation: MLP activation of the blocks: "gelu" (tanh
            approximation), "gelu_exact", "quick_gelu" (OpenAI CLIP) or any
            Keras activation name.
        end_token_id: optional int, the id that ends a text (CLIP's
            `<|endoftext|>`). When set, `padding_mask` is True up to and
            including the first `end_token_id` of each row and False after it
            (a row without one is all text), and "last" pooling takes the end
            token: the Hugging Face CLIP text tower's pooled output. With a
            causal tower the tokens after the end token never reach it, so
            any padding id gives the same pooled vector.
        pooled_only: bool, output only `{"pooled", "padding_mask"}`. With
            "first" or "last" pooling the last block then runs its query,
            attention output and MLP for the pooled token alone (same weights
            and same pooled vector, about a fifth less work for a 4-block
            tower); dual encoders need nothing else.
        dtype: optional dtype policy.
        **kwargs: `keras.Model` arguments such as `name`.

    Inputs: `token_ids` int `[B, sequence_length]`.

    Outputs: `{"sequence": [B, L, D], "pooled": [B, D], "padding_mask": bool [B, L]}`
    (no `"sequence"` with `pooled_only=True`).

    Example:

    >>> import numpy as np
    >>> text = TextTransformerEncoder(vocabulary_size=50, sequence_length=6,
    ...     hidden_dim=16, num_layers=1, num_heads=2, mlp_dim=32, causal=True)
    >>> out = text(np.array([[2, 7, 9, 3, 0, 0]]))
    >>> out["sequence"].shape, out["pooled"].shape
    (TensorShape([1, 6, 16]), TensorShape([1, 16]))
    """

    def __init__(self, vocabulary_size, sequence_length, hidden_dim=512, num_layers=12, num_heads=8,
                 mlp_dim=2048, causal=True, pooling=None, dropout=0.0, layer_norm_epsilon=1e-6,
                 activation="gelu", end_token_id=None, pooled_only=False, dtype=None, **kwargs):
        pooling = pooling or ("last" if causal else "first")
        if pooling not in TEXT_POOLINGS:
            raise ValueError(f"`pooling` must be one of {TEXT_POOLINGS}, got {pooling!r}.")
        if int(num_layers) < 1:
            raise ValueError(f"`num_layers` must be >= 1, got {num_layers!r}.")
        if end_token_id is not None:
            end_token_id = check_int("end_token_id", end_token_id, minimum=0)
            if end_token_id >= int(vocabulary_size):
                raise ValueError(
                    f"`end_token_id` must be below `vocabulary_size`={vocabulary_size}, got {end_token_id}."
                )
            end_token_id = int(end_token_id)

        # === Layers ===
        embedding = keras_hub.layers.TokenAndPositionEmbedding(
            vocabulary_size, sequence_length, hidden_dim, dtype=dtype, name="embedding"
        )
        epsilon = float(layer_norm_epsilon)
        blocks = [
            TransformerEncoderBlock(
                num_heads, mlp_dim, dropout=dropout, activation=activation, layer_norm_epsilon=epsilon,
                causal=causal, dtype=dtype, name=f"block_{i}",
            )
            for i in range(num_layers)
        ]
        final_norm = keras.layers.LayerNormalization(epsilon=epsilon, dtype=dtype, name="final_norm")
        pool = AttentionPooling(num_heads, dtype=dtype, name="pool") if pooling == "attention" else None

        # === Functional Model ===
        token_ids = keras.Input((sequence_length,), dtype="int32", name="token_ids")
        padding_mask = _padding_mask(token_ids, end_token_id)
        x = embedding(token_ids)
        last = ops.maximum(ops.sum(ops.cast(padding_mask, "int32"), axis=1) - 1, 0)
        one_token = pooled_only and pooling in ("first", "last")
        for block in blocks[:-1] if one_token else blocks:
            x = block(x, padding_mask=padding_mask)
        if one_token:  # the pooled token's output is all that is needed
            position = last if pooling == "last" else ops.zeros_like(last)
            x = blocks[-1](x, padding_mask=padding_mask, query_positions=position)
        sequence = final_norm(x)
        if pooling == "first" or one_token:
            pooled = sequence[:, 0]
        elif pooling == "last":
            pooled = ops.take_along_axis(sequence, last[:, None, None], axis=1)[:, 0]
        elif pooling == "mean":
            weights = ops.cast(padding_mask, sequence.dtype)[..., None]
            pooled = ops.sum(sequence * weights, axis=1) / ops.maximum(ops.sum(weights, axis=1), 1.0)
        else:
            pooled = pool(sequence, padding_mask=padding_mask)
        outputs = {"sequence": sequence, "pooled": pooled, "padding_mask": padding_mask}
        if pooled_only:
            del outputs["sequence"]
        super().__init__(inputs=token_ids, outputs=outputs, **kwargs)

        # === Config ===
        self._set_config(
            output_dim=hidden_dim,
            vocabulary_size=int(vocabulary_size),
            sequence_length=int(sequence_length),
            hidden_dim=int(hidden_dim),
            num_layers=int(num_layers),
            num_heads=int(num_heads),
            mlp_dim=int(mlp_dim),
            causal=bool(causal),
            pooling=pooling,
            dropout=float(dropout),
            layer_norm_epsilon=epsilon,
            activation=activation,
            end_token_id=end_token_id,
            pooled_only=bool(pooled_only),
            dtype=dtype,
        )


def _padding_mask(token_ids, end_token_id):
    """bool `[B, L]`: ids other than `[PAD]`, or the positions up to the first `end_token_id`."""
    if end_token_id is None:
        return ops.not_equal(token_ids, PAD_ID)
    length = ops.shape(token_ids)[1]
    positions = ops.arange(length, dtype="int32")[None, :]
    first_end = ops.min(ops.where(ops.equal(token_ids, end_token_id), positions, length), axis=1)
    return ops.less_equal(positions, ops.minimum(first_end, length - 1)[:, None])
