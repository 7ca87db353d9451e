import numpy as np

from mmkeras.layers import ProjectionHead
from mmkeras.testing.layer_checks import run_layer_checks


def test_checks_and_unit_norm(tmp_path):
    features = np.random.default_rng(0).normal(size=(3, 8)).astype("float32")
    out = run_layer_checks(
        ProjectionHead,
        {"output_dim": 4, "hidden_dim": 16},
        {"features": features},
        str(tmp_path),
        expected_output_shape=(3, 4),
    )
    np.testing.assert_allclose(np.linalg.norm(out, axis=-1), 1.0, atol=1e-5)


def test_bf16_output_is_float32_and_normalised():
    head = ProjectionHead(output_dim=4, dtype="mixed_bfloat16")
    out = head(np.ones((2, 8), "float32"))
    assert out.dtype == "float32"
    np.testing.assert_allclose(np.linalg.norm(out.numpy(), axis=-1), 1.0, atol=1e-5)


def test_unnormalised():
    out = ProjectionHead(output_dim=4, normalize=False)(np.ones((2, 8), "float32") * 10)
    assert not np.allclose(np.linalg.norm(out.numpy(), axis=-1), 1.0)
