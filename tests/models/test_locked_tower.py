import keras
import numpy as np

from mmkeras import zoo
from mmkeras.models.locked_tower import call_tower, locked_copy


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


def test_locking_an_init_dual_encoders_image_tower_rebuilds_it_in_inference_mode():
    small = {"data.image_size": 32, **{f"image_encoder.{k}": v for k, v in
                                       {"num_layers": 1, "hidden_dim": 16, "mlp_dim": 32, "num_heads": 2,
                                        "dropout": 0.5}.items()}}
    model = zoo.build("shapes-clip-tiny", **small)
    locked = locked_copy(model)
    assert locked.freeze_image_encoder and not locked.image_encoder.trainable and model.image_encoder.trainable
    for a, b in zip(locked.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    batch = {"images": np.random.default_rng(0).uniform(-1, 1, (4, 32, 32, 3)).astype("float32"),
             "token_ids": np.tile(np.array([[2, 7, 9, 3, 0, 0]], "int32"), (4, 1))}
    batch["token_ids"] = np.pad(batch["token_ids"], ((0, 0), (0, model.input["token_ids"].shape[1] - 6)))
    # The tower's dropout (0.5) is off in the locked copy even when the model trains.
    np.testing.assert_allclose(locked(batch, training=True)["image_embeddings"],
                               locked(batch, training=False)["image_embeddings"], rtol=1e-5, atol=1e-6)
    assert not np.allclose(model(batch, training=True)["image_embeddings"],
                           model(batch, training=False)["image_embeddings"])
