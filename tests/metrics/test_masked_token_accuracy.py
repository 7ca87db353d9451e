import numpy as np

from mmkeras.metrics.masked_token_accuracy import MaskedTokenAccuracy


def test_pad_predictions_and_sample_weight():
    metric = MaskedTokenAccuracy()
    y_true = np.array([[4, 3, 0, 0]], "int32")
    logits = np.eye(5, dtype="float32")[[[4, 1, 0, 0]]]  # right, wrong, (pad), (pad)
    metric.update_state(y_true, logits)
    assert float(metric.result()) == 0.5
    weighted = MaskedTokenAccuracy()
    weighted.update_state(
        np.concatenate([y_true, y_true]),
        np.concatenate([logits, np.eye(5, dtype="float32")[[[4, 3, 0, 0]]]]),
        sample_weight=np.array([1.0, 3.0], "float32"),
    )
    np.testing.assert_allclose(float(weighted.result()), (1 + 3 * 2) / 8)
