import keras
import numpy as np
import pytest

from mmkeras.training.full_batches import pad_to_full_batches, predict_full_batches


class _CountingDense(keras.layers.Dense):
    """Counts the times its `call` runs in Python (one per trace of a graph that uses it)."""

    calls = 0

    def call(self, inputs):
        type(self).calls += 1
        return super().call(inputs)


def test_pad_to_full_batches_repeats_the_last_row_of_every_array():
    inputs = {"x": np.arange(10).reshape(5, 2), "y": np.array([1, 2, 3, 4, 5]), "z": (np.zeros(5), np.ones(5))}
    padded, count = pad_to_full_batches(inputs, 4)
    assert count == 5
    assert padded["x"].tolist() == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9], [8, 9], [8, 9], [8, 9]]
    assert padded["y"].tolist() == [1, 2, 3, 4, 5, 5, 5, 5]
    assert padded["z"][1].shape == (8,)
    same, count = pad_to_full_batches(np.arange(8), 4)  # already full: unchanged
    assert same.tolist() == list(range(8)) and count == 8
    small, count = pad_to_full_batches(np.arange(3), 64)  # fewer rows than a batch: one batch
    assert small.shape == (64,) and count == 3


@pytest.mark.parametrize(
    "inputs, batch_size, message",
    [
        ({"a": np.zeros(3), "b": np.zeros(4)}, 2, "same number of rows"),
        (np.zeros((0, 3)), 2, "at least one"),
        (np.float32(1.0), 2, "same number of rows"),
        (np.zeros(3), 0, "`batch_size` must be an int >= 1"),
        (np.zeros(3), 2.0, "`batch_size` must be an int >= 1"),
    ],
)
def test_pad_to_full_batches_errors(inputs, batch_size, message):
    with pytest.raises(ValueError, match=message):
        pad_to_full_batches(inputs, batch_size)


def test_predict_full_batches_traces_once_and_equals_predict():
    inputs = keras.Input((3,))
    model = keras.Model(inputs, _CountingDense(2)(inputs))
    x = np.random.default_rng(0).normal(size=(10, 3)).astype("float32")

    _CountingDense.calls = 0
    expected = model.predict(x, batch_size=4, verbose=0)  # batches of 4, 4, 2
    assert _CountingDense.calls == 2  # what padding avoids: the last, smaller batch is traced again

    fresh = keras.Model(inputs, model.layers[-1](inputs))
    _CountingDense.calls = 0
    got = predict_full_batches(fresh, x, batch_size=4)
    assert _CountingDense.calls == 1
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert got.shape == (10, 2)
    predict_full_batches(fresh, x[:3], batch_size=4)  # another row count, the same batch shape
    assert _CountingDense.calls == 1
