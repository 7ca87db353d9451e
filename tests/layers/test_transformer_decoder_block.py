import numpy as np
import tensorflow as tf

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


def test_incremental_decoding_with_cache_equals_full_pass():
    block = TransformerDecoderBlock(intermediate_dim=32, num_heads=2)
    tokens, image = _inputs(1)
    full = block(tokens, image).numpy()
    cross = block.cross_attention_cache_for(image)
    cache = block.empty_self_attention_cache(batch_size=2, max_length=6)

    @tf.function(jit_compile=True)
    def step(token, cache, index):
        return block(
            token,
            image,
            self_attention_cache=cache,
            self_attention_cache_update_index=index,
            cross_attention_cache=cross,
        )

    outputs = []
    for i in range(6):
        out, cache, _ = step(tokens[:, i : i + 1], cache, tf.constant(i))
        outputs.append(out.numpy())
    np.testing.assert_allclose(np.concatenate(outputs, axis=1), full, atol=1e-5)
