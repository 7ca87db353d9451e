"""A fusion head's weighted accuracy (or MAE) that is exact under any `tf.distribute` strategy."""

import keras
import tensorflow as tf

_FUNCTIONS = {
    "multiclass": (keras.metrics.sparse_categorical_accuracy, {}),
    "binary": (keras.metrics.binary_accuracy, {"threshold": 0.0}),  # on logits
    "mae": (keras.metrics.mean_absolute_error, {}),
}


@keras.saving.register_keras_serializable(package="mmkeras")
class HeadAccuracy(keras.metrics.MeanMetricWrapper):
    """Accuracy of one head's logits (multiclass: argmax; binary / multilabel: logit >= 0, per label), or MAE.

    A weighted mean like Keras' own accuracy metrics, with one difference: under a strategy with several
    replicas, Keras logs the mean of the replicas' own results, which is not the global figure when the
    replicas hold different total sample weights (multi-task batches, where each example weighs only for its
    own heads). `result()` sums the replicas' totals and weights first, so the logged value is the same as
    on one device.

    Args:
        kind: "multiclass" (integer labels, `[B, C]` logits), "binary" (0/1 labels, logits of the same
            shape; multilabel heads too) or "mae" (regression).
        name: the metric's name.
        dtype: the metric's dtype.

    Example:

    >>> import numpy as np
    >>> metric = HeadAccuracy("multiclass")
    >>> metric.update_state(np.array([1, 0]), np.array([[0.1, 2.0], [0.3, 0.2]]), sample_weight=np.array([1.0, 0.0]))
    >>> float(metric.result())
    1.0
    """

    def __init__(self, kind="multiclass", name="accuracy", dtype=None):
        if kind not in _FUNCTIONS:
            raise ValueError(f"`kind` must be one of {sorted(_FUNCTIONS)}, got {kind!r}.")
        function, kwargs = _FUNCTIONS[kind]
        super().__init__(function, name=name, dtype=dtype, **kwargs)
        self.kind = kind

    def result(self):
        context = tf.distribute.get_replica_context()
        if context is None or context.num_replicas_in_sync == 1:
            return super().result()
        total, count = context.all_reduce(tf.distribute.ReduceOp.SUM, [tf.convert_to_tensor(self.total),
                                                                        tf.convert_to_tensor(self.count)])
        return tf.math.divide_no_nan(total, count)

    def get_config(self):
        return {"kind": self.kind, "name": self.name, "dtype": self.dtype}
