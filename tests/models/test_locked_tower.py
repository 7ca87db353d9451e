import keras
import numpy as np

from mmkeras.models.locked_tower import call_tower


def _tower():
    return keras.Sequential([keras.Input((4,)), keras.layers.Dropout(0.9), keras.layers.Dense(3)])


def test_a_locked_tower_is_frozen_and_runs_in_inference_mode_while_the_model_trains():
    tower = _tower()
    inputs = keras.Input((4,))
    model = keras.Model(inputs, call_tower(tower, inputs, locked=True))
    assert not tower.trainable and model.trainable_weights == []
    x = np.ones((8, 4), "float32")
    # Dropout at 0.9 would change the outputs were the tower called in training mode.
    np.testing.assert_allclose(model(x, training=True), tower(x, training=False), rtol=1e-6)


def test_an_unlocked_tower_trains_and_follows_the_training_flag():
    tower = _tower()
    inputs = keras.Input((4,))
    model = keras.Model(inputs, call_tower(tower, inputs))
    assert tower.trainable and len(model.trainable_weights) == 2
    x = np.ones((8, 4), "float32")
    assert not np.allclose(model(x, training=True), tower(x, training=False))
