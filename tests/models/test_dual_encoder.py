import numpy as np
import pytest
import tensorflow as tf

from mmkeras.encoders import CNNEncoder, TextTransformerEncoder, ViTEncoder
from mmkeras.models import DualEncoder, dual_encoder
from mmkeras.testing.layer_checks import run_model_checks


def _towers(dtype=None):
    image = ViTEncoder(image_size=32, patch_size=16, hidden_dim=16, num_layers=1, num_heads=2, mlp_dim=32, dtype=dtype)
    text = TextTransformerEncoder(
        vocabulary_size=30, sequence_length=6, hidden_dim=16, num_layers=1, num_heads=2, mlp_dim=32, dtype=dtype
    )
    return image, text


def _batch(n=8, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(4, 30, (n, 6)).astype("int32")
    ids[:, 0], ids[:, -1] = 2, 3
    return {"images": rng.uniform(-1, 1, (n, 32, 32, 3)).astype("float32"), "token_ids": ids}


@pytest.mark.parametrize("loss", ["clip", "siglip"])
def test_outputs_round_trips_and_xla(loss, tmp_path):
    model = dual_encoder(*_towers(), embed_dim=8, loss=loss)
    out = run_model_checks(model, _batch(), str(tmp_path))
    for key in ("image_embeddings", "text_embeddings"):
        assert out[key].shape == (8, 8)
        np.testing.assert_allclose(np.linalg.norm(out[key], axis=-1), 1.0, atol=1e-5)
    restored = tf.keras.models.load_model(str(tmp_path / "dual_encoder.keras"))
    assert isinstance(restored, DualEncoder) and restored.loss_name == loss
    np.testing.assert_allclose(
        restored.logit_scale()["logit_scale"], model.logit_scale()["logit_scale"], rtol=1e-6
    )


@pytest.mark.parametrize("loss", ["clip", "siglip"])
def test_fit_learns_a_tiny_batch_with_xla(loss):
    model = dual_encoder(*_towers(), embed_dim=8, loss=loss)
    model.compile(optimizer="adam", jit_compile=True)
    batch = _batch()
    before = float(model.compute_loss(y_pred=model(batch)))
    history = model.fit(tf.data.Dataset.from_tensors(batch).repeat(30), epochs=1, verbose=0)
    after = history.history["loss"][-1]
    assert after < before * 0.7, (before, after)


def test_a_trained_model_reloads_compiled_with_its_optimizer_state(tmp_path):
    import warnings

    import keras

    model = dual_encoder(*_towers(), embed_dim=8)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(tf.data.Dataset.from_tensors(_batch()).repeat(2), epochs=1, verbose=0)
    model.save(str(tmp_path / "trained.keras"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Keras warns when it skips the compiled state of a custom `compile`
        restored = keras.saving.load_model(str(tmp_path / "trained.keras"))
    assert int(restored.optimizer.iterations) == 2
    for before, after in zip(model.optimizer.variables, restored.optimizer.variables):
        np.testing.assert_allclose(after, before)


def test_sub_models_share_weights():
    model = dual_encoder(*_towers(), embed_dim=8)
    batch = _batch()
    out = model(batch)
    np.testing.assert_allclose(model.image_model(batch["images"]), out["image_embeddings"], atol=1e-6)
    np.testing.assert_allclose(model.text_model(batch["token_ids"]), out["text_embeddings"], atol=1e-6)
    assert model.similarity(out["image_embeddings"], out["text_embeddings"]).shape == (8, 8)
    # Built once: the same sub-model each time (its predict function traced once), not a layer of the model.
    assert model.image_model is model.image_model and model.text_model is model.text_model
    assert len(model.layers) == len(dual_encoder(*_towers(), embed_dim=8).layers)
    assert len(model.weights) == len(dual_encoder(*_towers(), embed_dim=8).weights)


def test_locked_image_tower():
    image, text = _towers()
    model = dual_encoder(image, text, embed_dim=8, freeze_image_encoder=True)
    tower_before = [w.copy() for w in image.get_weights()]
    head_before = model.get_layer("image_projection").get_weights()[0].copy()
    model.compile(optimizer="adam")
    model.fit(tf.data.Dataset.from_tensors(_batch()).repeat(3), epochs=1, verbose=0)
    for a, b in zip(tower_before, image.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(head_before, model.get_layer("image_projection").get_weights()[0])


def test_bf16_and_cnn_tower():
    image = CNNEncoder("mobilenetv3small", image_size=32, dtype="mixed_bfloat16")
    _, text = _towers("mixed_bfloat16")
    model = dual_encoder(image, text, embed_dim=8, dtype="mixed_bfloat16")
    out = model(_batch(4))
    assert out["image_embeddings"].dtype == "float32"
    loss = model.compute_loss(y_pred=out)
    assert loss.dtype == "float32" and np.isfinite(float(loss))


def test_bad_arguments():
    with pytest.raises(ValueError, match="`loss` must be one of"):
        dual_encoder(*_towers(), loss="triplet")
    model = dual_encoder(*_towers())
    with pytest.raises(ValueError, match="computes its own contrastive loss"):
        model.compile(optimizer="adam", loss="mse")
