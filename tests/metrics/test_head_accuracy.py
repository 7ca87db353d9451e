"""`HeadAccuracy`: Keras' own weighted accuracies / MAE on one device (its exactness under several replicas is
checked in `tests/training/test_mirrored_fit.py`)."""

import keras
import numpy as np
import pytest

from mmkeras.metrics import HeadAccuracy


def _weighted(metric, y_true, y_pred, weights):
    metric.update_state(y_true, y_pred, sample_weight=weights)
    return float(metric.result())


@pytest.mark.parametrize("kind, reference, y_true, y_pred", [
    ("multiclass", keras.metrics.SparseCategoricalAccuracy(), np.array([0, 2, 1, 1]),
     np.array([[2.0, 0, 0], [0, 0, 1], [1, 0, 0], [0, 3, 0]])),
    ("binary", keras.metrics.BinaryAccuracy(threshold=0.0), np.array([[1.0], [0], [1], [0]]),
     np.array([[0.3], [-1.0], [-0.2], [0.5]])),
    ("binary", keras.metrics.BinaryAccuracy(threshold=0.0), np.array([[1.0, 0], [0, 1], [1, 1], [0, 0]]),
     np.array([[0.3, -1], [-1.0, 2], [-0.2, 1], [0.5, -3]])),  # multilabel
    ("mae", keras.metrics.MeanAbsoluteError(), np.array([[1.0], [0], [2], [3]]), np.array([[0.5], [0], [1], [5]])),
])
def test_head_accuracy_equals_keras_own_metric_with_sample_weights(kind, reference, y_true, y_pred):
    weights = np.array([1.0, 0.0, 1.0, 1.0])
    value = _weighted(HeadAccuracy(kind), y_true, y_pred, weights)
    assert value == pytest.approx(_weighted(reference, y_true, y_pred, weights))
    assert value != pytest.approx(_weighted(HeadAccuracy(kind), y_true, y_pred, None))  # the weights count


def test_head_accuracy_round_trips_its_config_and_refuses_unknown_kinds():
    metric = HeadAccuracy("binary", name="match_accuracy")
    again = HeadAccuracy.from_config(metric.get_config())
    assert (again.kind, again.name) == ("binary", "match_accuracy")
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(metric))
    assert isinstance(restored, HeadAccuracy) and restored.kind == "binary"
    with pytest.raises(ValueError, match="`kind` must be one of"):
        HeadAccuracy("top5")
