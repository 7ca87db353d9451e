"""Small decoders for the examples and tests of `mmkeras.generation`."""


def tiny_captioner(vocabulary_size=30, sequence_length=8, num_layers=1, num_heads=2, **kwargs):
    """A small, untrained `Captioner` on 32x32 images: a one-block ViT tower 16 wide.

    Args:
        vocabulary_size: int, size of the token vocabulary.
        sequence_length: int, the longest decoder input.
        num_layers: int, number of decoder blocks.
        num_heads: int, attention heads per decoder block.
        **kwargs: other `mmkeras.models.captioner` arguments (`hidden_dim`,
            `mlp_dim`, `dropout`, `dtype`, ...); a `dtype` also goes to the tower.

    Returns:
        The `Captioner`, taking `images [B, 32, 32, 3]`.

    Example:

    >>> model = tiny_captioner(vocabulary_size=20, sequence_length=6)
    >>> model.vocabulary_size, model.sequence_length, len(model.decoder_blocks)
    (20, 6, 1)
    """
    from mmkeras.encoders.vit_encoder import ViTEncoder
    from mmkeras.models.captioner import captioner

    vit = ViTEncoder(
        image_size=32, patch_size=16, hidden_dim=16, num_layers=1, num_heads=2, mlp_dim=32, dtype=kwargs.get("dtype")
    )
    return captioner(
        vit,
        vocabulary_size=vocabulary_size,
        sequence_length=sequence_length,
        num_layers=num_layers,
        num_heads=num_heads,
        **kwargs,
    )


def bigram_step(table):
    """The step function of a bigram model: the next-token logits are `table[current token]`.

    Follows the `step(tokens, index, caches) -> (logits, caches)` interface of
    `mmkeras.generation.sampling_search` and `beam_search` (the caches pass
    through unchanged).

    Args:
        table: float `[V, V]`, row `i` the next-token logits after token `i`.

    Returns:
        The step function.

    Example:

    >>> import numpy as np
    >>> table = np.eye(4, dtype="float32")
    >>> logits, caches = bigram_step(table)(np.array([[2, 1]], "int32"), 1, ())
    >>> logits.numpy().tolist()
    [[0.0, 1.0, 0.0, 0.0]]
    """
    from keras import ops

    def step(tokens, index, caches):
        return ops.take(table, ops.take(tokens, index, axis=1), axis=0), caches

    return step
