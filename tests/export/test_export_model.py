import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_text  # noqa: F401 - the tokenizer's ops, as a serving process imports them

from mmkeras.encoders import TextTransformerEncoder, ViTEncoder
from mmkeras.export import export_model
from mmkeras.generation import CaptionGenerator
from mmkeras.models import captioner, dual_encoder, fusion_classifier
from mmkeras.preprocessing import ImagePreprocessor, MultimodalPreprocessor, SubwordTokenizer

CORPUS = ["a red circle", "two blue squares", "a green star left of a red circle", "a yellow hexagon"]


@pytest.fixture(scope="module")
def parts():
    tokenizer = SubwordTokenizer.train(CORPUS, vocabulary_size=60, sequence_length=8)
    rng = np.random.default_rng(0)
    images = [tf.io.encode_png(rng.integers(0, 255, size, dtype=np.uint8)).numpy()
              for size in [(40, 30, 3), (17, 64, 3), (32, 32, 1)]]
    return tokenizer, ImagePreprocessor(image_size=32), tf.constant(images)


def _vit():
    return ViTEncoder(image_size=32, patch_size=16, hidden_dim=16, num_layers=1, num_heads=2, mlp_dim=32)


def _text(tokenizer):
    return TextTransformerEncoder(tokenizer.vocabulary_size(), 8, hidden_dim=16, num_layers=1, num_heads=2, mlp_dim=32)


def _reloaded(model, tmp_path):
    """The model as `keras.saving.load_model` gives it back: with its preprocessor, nothing else passed."""
    path = str(tmp_path / "model.keras")
    model.save(path)
    return keras.saving.load_model(path)


def test_a_reloaded_dual_encoder_exports_with_export_model_alone(parts, tmp_path):
    tokenizer, images, raw = parts
    model = dual_encoder(_vit(), _text(tokenizer), embed_dim=8,
                         preprocessor=MultimodalPreprocessor(tokenizer, images))
    export_model(_reloaded(model, tmp_path), str(tmp_path / "export"))
    serving = tf.saved_model.load(str(tmp_path / "export"))
    texts = tf.constant(["a red circle", ""])
    np.testing.assert_allclose(serving.signatures["embed_image"](image_bytes=raw)["embeddings"],
                               model.image_model(images(raw)), atol=1e-5)
    np.testing.assert_allclose(serving.signatures["embed_text"](text=texts)["embeddings"],
                               model.text_model(tokenizer(texts)), atol=1e-5)


def test_a_reloaded_captioner_exports_its_decoding(parts, tmp_path):
    tokenizer, images, raw = parts
    rows = SubwordTokenizer.from_config({**tokenizer.get_config(), "sequence_length": 9})
    model = captioner(_vit(), vocabulary_size=None, sequence_length=8, num_layers=1, num_heads=2,
                      preprocessor=MultimodalPreprocessor(rows, images))
    export_model(_reloaded(model, tmp_path), str(tmp_path / "export"), strategy="greedy", max_length=6)
    served = tf.saved_model.load(str(tmp_path / "export")).signatures["caption"](image_bytes=raw)
    expected = CaptionGenerator(model, max_length=6, jit_compile=False).generate(images(raw))
    assert served["captions"].numpy().tolist() == expected["captions"].numpy().tolist()
    np.testing.assert_array_equal(served["token_ids"], expected["token_ids"])


def test_a_reloaded_image_only_classifier_exports_classify(parts, tmp_path):
    _, images, raw = parts
    heads = {"kind": {"type": "multiclass", "num_classes": 3, "labels": ["a", "b", "c"]}}
    model = fusion_classifier(image_encoder=_vit(), heads=heads, preprocessor=MultimodalPreprocessor(image_converter=images))
    export_model(_reloaded(model, tmp_path), str(tmp_path / "export"))
    served = tf.saved_model.load(str(tmp_path / "export")).signatures["classify"](image_bytes=raw)
    expected = model.probabilities(model({"images": images(raw), "image_present": tf.ones([3])}, training=False))
    np.testing.assert_allclose(served["kind_probs"], expected["kind"], atol=1e-5)


def test_clear_errors(parts, tmp_path):
    tokenizer, images, _ = parts
    bare = dual_encoder(_vit(), _text(tokenizer), embed_dim=8)
    with pytest.raises(ValueError, match="no preprocessor tokenizer.*MultimodalPreprocessor"):
        export_model(bare, str(tmp_path / "a"))
    with pytest.raises(ValueError, match=r"Generation options \['num_beams'\] apply to captioners only"):
        export_model(bare, str(tmp_path / "b"), num_beams=2)
    text_only = dual_encoder(_vit(), _text(tokenizer), embed_dim=8, preprocessor=MultimodalPreprocessor(tokenizer))
    with pytest.raises(ValueError, match="no preprocessor image_converter"):
        export_model(text_only, str(tmp_path / "c"))
    with pytest.raises(ValueError, match="DualEncoder, Captioner or FusionClassifier"):
        export_model(_vit(), str(tmp_path / "d"))
