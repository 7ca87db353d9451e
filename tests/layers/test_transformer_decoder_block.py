import numpy as np
import pytest

from mmkeras.layers import TransformerDecoderBlock
from mmkeras.testing.layer_checks import run_layer_checks


def _inputs(seed=0):
    rng = np.random.default_rng(seed)
    tokens = rng.normal(size=(2, 6, 16)).astype("float32")
    image = rng.normal(size=(2, 5, 16)).astype("float32")
    return tokens, image


def test_checks(tmp_path):
    tokens, image = _inputs()
    run_layer_checks(
        TransformerDecoderBlock,
        {"intermediate_dim": 32, "num_heads": 2},
        {"decoder_sequence": tokens, "encoder_sequence": image},
        str(tmp_path),
        expected_output_shape=(2, 6, 16),
    )


def test_causal_and_cross_attention():
    block = TransformerDecoderBlock(intermediate_dim=32, num_heads=2)
    tokens, image = _inputs()
    out = block(tokens, image).numpy()
    future = tokens.copy()
    future[:, 4:] = 9.0
    np.testing.assert_allclose(block(future, image).numpy()[:, :4], out[:, :4], atol=1e-5)
    assert not np.allclose(block(tokens, image * 2.0).numpy(), out)


def test_sublayers_hold_every_weight_of_the_block():
    """`sublayers()` names every layer the block computes with (the cached decoding step uses them alone)."""
    block = TransformerDecoderBlock(intermediate_dim=32, num_heads=2)
    tokens, image = _inputs(1)
    with pytest.raises(ValueError, match="built"):
        block.sublayers()
    block(tokens, image)
    layers = vars(block.sublayers()).values()
    assert sorted(id(w) for layer in layers for w in layer.weights) == sorted(id(w) for w in block.weights)
    assert block.sublayers().self_attention.query_dense.kernel.shape == (16, 2, block.head_dim)
