import numpy as np
import pytest

from mmkeras.layers import TransformerEncoderBlock
from mmkeras.testing.layer_checks import run_layer_checks


def _x(batch=2, length=5, width=16, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, length, width)).astype("float32")


def test_checks(tmp_path):
    run_layer_checks(
        TransformerEncoderBlock,
        {"num_heads": 2, "mlp_dim": 32},
        {"x": _x(), "padding_mask": np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)},
        str(tmp_path),
        expected_output_shape=(2, 5, 16),
    )


def test_padding_mask_hides_padded_tokens():
    block = TransformerEncoderBlock(num_heads=2, mlp_dim=32)
    x = _x(batch=1)
    mask = np.array([[1, 1, 1, 0, 0]], bool)
    out = block(x, padding_mask=mask).numpy()
    x2 = x.copy()
    x2[:, 3:] = 100.0  # change only padded tokens
    out2 = block(x2, padding_mask=mask).numpy()
    np.testing.assert_allclose(out[:, :3], out2[:, :3], atol=1e-5)


def test_causal_mask_hides_the_future():
    block = TransformerEncoderBlock(num_heads=2, mlp_dim=32, causal=True)
    x = _x(batch=1)
    out = block(x).numpy()
    x2 = x.copy()
    x2[:, 3:] = -7.0
    out2 = block(x2).numpy()
    np.testing.assert_allclose(out[:, :3], out2[:, :3], atol=1e-5)
    assert not np.allclose(out[:, 3:], out2[:, 3:])


def test_bidirectional_sees_everything():
    block = TransformerEncoderBlock(num_heads=2, mlp_dim=32)
    x = _x(batch=1)
    x2 = x.copy()
    x2[:, 4:] = -7.0
    assert not np.allclose(block(x).numpy()[:, 0], block(x2).numpy()[:, 0])


def test_heads_must_divide_width():
    with pytest.raises(ValueError, match="not divisible by `num_heads`"):
        TransformerEncoderBlock(num_heads=3, mlp_dim=8)(_x())


@pytest.mark.parametrize("causal", [False, True])
def test_query_positions_equal_the_full_block_at_those_positions(causal):
    block = TransformerEncoderBlock(num_heads=2, mlp_dim=32, causal=causal)
    x = _x(batch=3, length=6)
    padding = np.array([[1] * 6, [1] * 4 + [0] * 2, [1] * 2 + [0] * 4], bool)
    attention = np.random.default_rng(1).random((3, 6, 6)) > 0.3
    attention[:, np.arange(6), np.arange(6)] = True
    positions = np.array([5, 3, 0])
    for extra in ({}, {"attention_mask": attention}):
        full = block(x, padding_mask=padding, **extra).numpy()
        at = block(x, padding_mask=padding, query_positions=positions, **extra).numpy()
        assert at.shape == (3, 1, 16)
        np.testing.assert_allclose(at[:, 0], full[np.arange(3), positions], atol=1e-5)


def test_query_positions_under_mixed_bfloat16_and_xla():
    import tensorflow as tf

    block = TransformerEncoderBlock(num_heads=2, mlp_dim=32, causal=True, dtype="mixed_bfloat16")
    x, positions = _x(batch=2), np.array([4, 1])
    eager = block(x, query_positions=positions)
    assert eager.dtype == "bfloat16" and eager.shape == (2, 1, 16)
    compiled = tf.function(lambda a, p: block(a, query_positions=p), jit_compile=True)(x, positions)
    full = block(x).numpy().astype("float32")[np.arange(2), positions]
    np.testing.assert_allclose(compiled.numpy().astype("float32")[:, 0], full, atol=0.05)


@pytest.mark.parametrize("activation,reference", [
    ("quick_gelu", lambda h: h / (1.0 + np.exp(-1.702 * h))),
    ("gelu_exact", lambda h: 0.5 * h * (1.0 + np.vectorize(__import__("math").erf)(h / np.sqrt(2.0)))),
])
def test_activations_of_pretrained_checkpoints(activation, reference, tmp_path):
    run_layer_checks(
        TransformerEncoderBlock,
        {"num_heads": 2, "mlp_dim": 32, "activation": activation, "layer_norm_epsilon": 1e-5},
        {"x": _x()},
        str(tmp_path),
        expected_output_shape=(2, 5, 16),
    )
    block = TransformerEncoderBlock(num_heads=2, mlp_dim=32, activation=activation)
    block(_x())
    h = np.linspace(-4, 4, 9, dtype="float32")
    np.testing.assert_allclose(block._activation_fn(h).numpy(), reference(h.astype("float64")), atol=1e-5)
