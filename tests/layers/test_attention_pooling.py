import numpy as np

from mmkeras.layers import AttentionPooling
from mmkeras.testing.layer_checks import run_layer_checks


def test_checks(tmp_path):
    tokens = np.random.default_rng(0).normal(size=(2, 5, 8)).astype("float32")
    run_layer_checks(
        AttentionPooling,
        {"num_heads": 2},
        {"tokens": tokens, "padding_mask": np.array([[1, 1, 0, 0, 0], [1] * 5], bool)},
        str(tmp_path),
        expected_output_shape=(2, 8),
    )


def test_multiple_queries_and_masking():
    layer = AttentionPooling(num_heads=2, num_queries=3)
    tokens = np.random.default_rng(1).normal(size=(1, 4, 8)).astype("float32")
    mask = np.array([[1, 1, 0, 0]], bool)
    out = layer(tokens, padding_mask=mask).numpy()
    assert out.shape == (1, 3, 8)
    tokens[:, 2:] = 50.0
    np.testing.assert_allclose(layer(tokens, padding_mask=mask).numpy(), out, atol=1e-5)
