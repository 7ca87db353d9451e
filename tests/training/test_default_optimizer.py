import numpy as np
import pytest

from mmkeras.training import default_optimizer


def test_warmup_then_cosine():
    optimizer = default_optimizer(total_steps=100, learning_rate=1.0, warmup_fraction=0.1)
    schedule = optimizer._learning_rate
    values = np.array([float(schedule(step)) for step in (0, 5, 10, 55, 100)])
    assert values[0] == 0.0 and 0.4 < values[1] < 0.6 and values[2] == pytest.approx(1.0)
    assert values[3] < values[2] and values[4] == pytest.approx(0.01, abs=1e-3)


def test_bad_arguments():
    with pytest.raises(ValueError, match="total_steps"):
        default_optimizer(0)
    with pytest.raises(ValueError, match="warmup_fraction"):
        default_optimizer(10, warmup_fraction=1.5)


def _model(kind):
    import keras

    keras.utils.set_random_seed(0)
    if kind == "embedding":  # an embedding's gradient is sparse (`tf.IndexedSlices`), with repeated rows
        return keras.Sequential([keras.Input((5,), dtype="int32"), keras.layers.Embedding(7, 4),
                                 keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(5)])
    return keras.Sequential([keras.Input((6,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(5)])


def _data(kind, clip_scale):
    rng = np.random.default_rng(0)
    if kind == "embedding":
        x = rng.integers(0, 3, size=(16, 5))  # 3 of the 7 rows, each many times a batch
    else:
        x = (rng.normal(size=(16, 6)) * clip_scale).astype("float32")
    return x, rng.integers(0, 5, size=(16,))


def _trained_weights(kind, accumulate, batch_size, x, y):
    import keras

    model = _model(kind)
    model.compile(
        optimizer=default_optimizer(total_steps=10**6, learning_rate=1e-2, warmup_fraction=0.0,
                                    accumulate=accumulate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(x, y, batch_size=batch_size, shuffle=False, epochs=1, verbose=0)
    return model.get_weights()


@pytest.mark.parametrize("kind, clip_scale", [("dense", 1.0), ("dense", 100.0), ("embedding", 1.0)])
def test_accumulation_equals_one_step_on_the_larger_batch(kind, clip_scale):
    # Two updates: 4 micro-batches of 4 with accumulate=2 against 2 batches of 8.
    # `clip_scale` 100 makes gradient norms far above `clipnorm`=1, so clipping
    # must act on the accumulated gradient, as it would on the large batch. An
    # embedding's sparse gradient must update as the dense gradient it sums to.
    x, y = _data(kind, clip_scale)
    accumulated = _trained_weights(kind, 2, 4, x, y)
    large = _trained_weights(kind, 1, 8, x, y)
    for a, b in zip(accumulated, large):
        np.testing.assert_allclose(a, b, atol=1e-6)
    # The comparison is between trained weights, not two untouched models.
    assert any(np.abs(a - b).max() > 1e-4 for a, b in zip(_model(kind).get_weights(), large))
