import numpy as np

from mmkeras.metrics.masked_perplexity import MaskedPerplexity


def test_uniform_prediction_and_sample_weight():
    metric = MaskedPerplexity()
    metric.update_state(np.array([[4, 3, 0]], "int32"), np.zeros((1, 3, 8), "float32"))
    np.testing.assert_allclose(float(metric.result()), 8.0, rtol=1e-6)
    weighted = MaskedPerplexity()
    logits = np.log(np.array([[[0.5, 0.5]], [[0.25, 0.75]]], "float32"))
    weighted.update_state(
        np.array([[1], [1]], "int32"), logits, sample_weight=np.array([1.0, 0.0], "float32")
    )
    np.testing.assert_allclose(float(weighted.result()), 2.0, rtol=1e-5)
