import keras
import numpy as np
import pytest
import tensorflow as tf

from mmkeras.encoders import CNNEncoder
from mmkeras.encoders import ViTEncoder
from mmkeras.losses.masked_sequence_loss import MaskedSequenceLoss
from mmkeras.metrics.masked_perplexity import MaskedPerplexity
from mmkeras.metrics.masked_token_accuracy import MaskedTokenAccuracy
from mmkeras.models.captioner import Captioner
from mmkeras.models.captioner import captioner
from mmkeras.models.captioner import split_for_teacher_forcing
from mmkeras.preprocessing.multimodal_preprocessor import MultimodalPreprocessor
from mmkeras.testing.layer_checks import run_model_checks

VIT = dict(image_size=32, patch_size=16, hidden_dim=16, num_layers=1, num_heads=2, mlp_dim=32)
DECODER = dict(vocabulary_size=30, sequence_length=8, num_layers=2, num_heads=2, mlp_dim=32, dropout=0.0)
CAPTIONS = np.array(
    [[2, 5, 6, 7, 3, 0, 0, 0, 0], [2, 9, 3, 0, 0, 0, 0, 0, 0], [2, 4, 4, 8, 9, 10, 11, 12, 3], [2, 3, 0, 0, 0, 0, 0, 0, 0]],
    "int32",
)


def _batch(dtype="float32"):
    images = np.random.default_rng(0).uniform(-1, 1, (4, 32, 32, 3)).astype(dtype)
    return split_for_teacher_forcing({"images": images, "token_ids": CAPTIONS})


def test_outputs_and_round_trips(tmp_path):
    model = captioner(ViTEncoder(**VIT), hidden_dim=32, **DECODER)  # 16 -> 32 projection
    inputs, _ = _batch()
    logits = run_model_checks(model, inputs, str(tmp_path))
    assert logits.shape == (4, 8, 30) and logits.dtype == "float32"
    assert isinstance(keras.saving.load_model(str(tmp_path / "captioner.keras")), Captioner)
    config = model.get_config()
    assert config["hidden_dim"] == 32 and config["image_encoder"]["class_name"] == "ViTEncoder"
    assert model.image_projection is not None


def test_teacher_forcing_convention_is_causal():
    model = captioner(ViTEncoder(**VIT), **DECODER)
    assert model.image_projection is None  # same width: no projection
    inputs, targets = _batch()
    np.testing.assert_array_equal(inputs["token_ids"], CAPTIONS[:, :-1])
    np.testing.assert_array_equal(targets, CAPTIONS[:, 1:])
    logits = model(inputs).numpy()
    future = inputs["token_ids"].numpy().copy()
    future[:, 5:] = 17  # the future cannot change earlier predictions
    changed = dict(inputs, token_ids=tf.constant(future))
    np.testing.assert_allclose(model(changed).numpy()[:, :5], logits[:, :5], atol=1e-5)
    other_images = dict(inputs, images=inputs["images"][::-1])
    assert not np.allclose(model(other_images).numpy(), logits)


def test_untied_output_and_any_image_tower():
    encoder = CNNEncoder("mobilenetv3small", image_size=32, weights=None)
    model = captioner(encoder, hidden_dim=16, tie_weights=False, **DECODER)
    inputs, _ = _batch()
    assert model(inputs).shape == (4, 8, 30)
    assert "reverse_embeddings" in [w.name for w in model.weights]


def test_fit_with_masked_loss_and_metrics_jit_and_bf16(tmp_path):
    keras.utils.set_random_seed(1)
    encoder = ViTEncoder(dtype="mixed_bfloat16", **VIT)
    model = captioner(encoder, dtype="mixed_bfloat16", **{**DECODER, "num_layers": 1})
    inputs, targets = _batch()
    assert model(inputs).dtype == "float32"  # logits stay float32 under bf16
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=MaskedSequenceLoss(label_smoothing=0.1),
        metrics=[MaskedTokenAccuracy(), MaskedPerplexity()],
        jit_compile=True,
    )
    data = tf.data.Dataset.from_tensor_slices((dict(inputs), targets)).repeat(4).batch(4)
    history = model.fit(data, epochs=3, verbose=0).history
    assert history["loss"][-1] < history["loss"][0]
    assert history["masked_token_accuracy"][-1] > history["masked_token_accuracy"][0]
    assert np.all(np.isfinite(history["masked_perplexity"]))
    path = str(tmp_path / "bf16.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    assert restored.get_config()["dtype"] == "mixed_bfloat16"
    np.testing.assert_allclose(restored(inputs).numpy(), model(inputs).numpy(), atol=1e-5)


def test_preprocessor_is_kept_with_the_model(tmp_path):
    import keras_hub

    vocab = ["[PAD]", "[UNK]", "[BOS]", "[EOS]", "a", "red", "blue", "square", "circle"]
    tokenizer = keras_hub.tokenizers.WordPieceTokenizer(vocabulary=vocab)
    model = captioner(ViTEncoder(**VIT), vocabulary_size=None, sequence_length=6, num_layers=1,
                      num_heads=2, mlp_dim=32, preprocessor=MultimodalPreprocessor(tokenizer))
    assert model.vocabulary_size == len(vocab)
    path = str(tmp_path / "with_tokenizer.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    assert restored.tokenizer.get_vocabulary() == vocab
    words = tf.convert_to_tensor(restored.tokenizer.detokenize(tf.ragged.constant([[4, 5, 7]])))
    assert words.numpy().tolist() == [b"a red square"]


def test_bad_arguments():
    encoder = ViTEncoder(**VIT)
    with pytest.raises(ValueError, match="vocabulary_size"):
        captioner(encoder, vocabulary_size=None, sequence_length=8)
    with pytest.raises(ValueError, match="sequence_length"):
        captioner(encoder, vocabulary_size=30, sequence_length=0)
    with pytest.raises(ValueError, match="hidden_dim"):
        captioner(encoder, vocabulary_size=30, sequence_length=8, hidden_dim=18, num_heads=4)
    for name, value in (("hidden_dim", "abc"), ("mlp_dim", 0), ("num_layers", 1.5), ("num_heads", True)):
        with pytest.raises(ValueError, match=f"`{name}` must be an int >= 1, got {value!r}"):
            captioner(encoder, vocabulary_size=30, sequence_length=8, **{name: value})
    with pytest.raises(ValueError, match="dropout"):
        captioner(encoder, vocabulary_size=30, sequence_length=8, dropout=1.5)
    with pytest.raises(ValueError, match="image_encoder"):
        captioner(keras.layers.Dense(3), vocabulary_size=30, sequence_length=8)
    with pytest.raises(ValueError, match="token_ids"):
        split_for_teacher_forcing({"images": np.zeros((1, 4, 4, 3))})


def test_several_captions_per_image_share_one_image_encoding():
    """`token_ids [B*K, L]` with `images [B]` equals repeating each image K times, also under XLA."""
    model = captioner(ViTEncoder(**VIT), **DECODER)
    images = np.random.default_rng(1).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    inputs, _ = split_for_teacher_forcing({"images": images, "token_ids": CAPTIONS})  # K = 2
    shared = model(inputs)
    repeated = model({"images": tf.repeat(images, 2, axis=0), "token_ids": inputs["token_ids"]})
    np.testing.assert_allclose(shared, repeated, atol=1e-5)
    jitted = tf.function(lambda x: model(x), jit_compile=True)(inputs)
    np.testing.assert_allclose(jitted, repeated, atol=1e-5)
    with pytest.raises(ValueError, match="K rows per image"):
        model({"images": inputs["images"], "token_ids": inputs["token_ids"][:3]})
