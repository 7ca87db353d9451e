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
