import keras
import numpy as np
import pytest
import tensorflow as tf

from mmkeras.encoders import TextTransformerEncoder, ViTEncoder
from mmkeras.models import captioner, dual_encoder, fusion_classifier
from mmkeras.preprocessing import ImagePreprocessor, MultimodalPreprocessor, SubwordTokenizer

CORPUS = ["a red circle", "two blue squares", "a green star"]


@pytest.fixture(scope="module")
def tokenizer():
    return SubwordTokenizer.train(CORPUS, vocabulary_size=40, sequence_length=6)


def _vit(image_size=16):
    return ViTEncoder(image_size=image_size, patch_size=8, hidden_dim=8, num_layers=1, num_heads=2, mlp_dim=16)


def _text(tokenizer, length=6):
    return TextTransformerEncoder(tokenizer.vocabulary_size(), length, hidden_dim=8, num_layers=1, num_heads=2,
                                  mlp_dim=16)


def test_maps_raw_inputs_and_round_trips(tokenizer, tmp_path):
    pre = MultimodalPreprocessor(tokenizer, ImagePreprocessor(image_size=16))
    png = tf.io.encode_png(np.full((9, 21, 3), 200, "uint8"))
    out = pre({"image_bytes": tf.stack([png, png]), "text": tf.constant(["a red circle", ""])})
    assert out["images"].shape == (2, 16, 16, 3) and out["token_ids"].shape == (2, 6)
    np.testing.assert_array_equal(out["token_ids"], tokenizer(tf.constant(["a red circle", ""])))
    assert set(pre({"text": tf.constant(["a"])})) == {"token_ids"}
    restored = MultimodalPreprocessor.from_config(pre.get_config())
    np.testing.assert_array_equal(restored({"text": tf.constant(["two blue squares"])})["token_ids"],
                                  tokenizer(tf.constant(["two blue squares"])))
    np.testing.assert_array_equal(restored({"image_bytes": tf.stack([png])})["images"], out["images"][:1])
    assert restored.image_size == (16, 16) and restored.sequence_length == 6


def test_clear_errors(tokenizer):
    with pytest.raises(ValueError, match="tokenizer.*image_converter"):
        MultimodalPreprocessor()
    with pytest.raises(ValueError, match="`tokenizer` must be a Keras layer"):
        MultimodalPreprocessor(tokenizer="vocab.txt")
    with pytest.raises(ValueError, match="no image_converter"):
        MultimodalPreprocessor(tokenizer)({"image_bytes": tf.constant([b""])})
    with pytest.raises(ValueError, match="image_bytes"):
        MultimodalPreprocessor(tokenizer)({"texts": tf.constant(["a"])})


def test_each_family_keeps_its_preprocessor_in_the_keras_file(tokenizer, tmp_path):
    image = ImagePreprocessor(image_size=16)
    captioning = MultimodalPreprocessor(SubwordTokenizer.from_config({**tokenizer.get_config(), "sequence_length": 7}),
                                        image)
    models = {
        "dual": dual_encoder(_vit(), _text(tokenizer), embed_dim=8, preprocessor=MultimodalPreprocessor(tokenizer, image)),
        "caption": captioner(_vit(), vocabulary_size=None, sequence_length=6, num_layers=1, num_heads=2,
                             preprocessor=captioning),
        "fusion": fusion_classifier(image_encoder=_vit(), heads={"m": {"type": "binary"}},
                                    preprocessor=MultimodalPreprocessor(image_converter=image)),
    }
    for name, model in models.items():
        path = str(tmp_path / f"{name}.keras")
        model.save(path)
        restored = keras.saving.load_model(path)
        assert restored.preprocessor.get_config() == model.preprocessor.get_config(), name
    assert models["caption"].vocabulary_size == tokenizer.vocabulary_size()


def test_a_preprocessor_that_contradicts_the_towers_fails_naming_both_sizes(tokenizer):
    with pytest.raises(ValueError, match=r"image size \(32, 32\).*\(16, 16\)"):
        dual_encoder(_vit(16), _text(tokenizer), preprocessor=MultimodalPreprocessor(tokenizer, ImagePreprocessor(32)))
    with pytest.raises(ValueError, match="sequence_length 6 differs.*token_ids length 9"):
        dual_encoder(_vit(), _text(tokenizer, 9), preprocessor=MultimodalPreprocessor(tokenizer))
    # A captioner's caption rows are one token longer than its decoder input (the teacher-forcing shift).
    with pytest.raises(ValueError, match="sequence_length 6 differs.*token_ids length 7"):
        captioner(_vit(), vocabulary_size=None, sequence_length=6, num_layers=1, num_heads=2,
                  preprocessor=MultimodalPreprocessor(tokenizer))
    with pytest.raises(ValueError, match="larger than the model's vocabulary_size 10"):
        captioner(_vit(), vocabulary_size=10, sequence_length=5, num_layers=1, num_heads=2,
                  preprocessor=MultimodalPreprocessor(tokenizer))
