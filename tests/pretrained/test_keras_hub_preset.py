import json
import os

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

from mmkeras.encoders.keras_hub_encoder import KerasHubEncoder
from mmkeras.export import export_model
from mmkeras.models.dual_encoder import DualEncoder
from mmkeras.preprocessing.clip_tokenizer import ClipTokenizer
from mmkeras.preprocessing.image_preprocessor import ImagePreprocessor
from mmkeras.preprocessing.sentencepiece_tokenizer import SentencePieceTokenizer
from mmkeras.preprocessing.wordpiece_tokenizer import WordPieceTokenizer
from mmkeras.pretrained.keras_hub_preset import load_keras_hub_preset

RNG = np.random.default_rng(0)
IMAGES = RNG.uniform(-1, 1, size=(2, 16, 16, 3)).astype("float32")  # what the ImagePreprocessor gives
MEAN, STD = [0.48, 0.46, 0.41], [0.27, 0.26, 0.28]
TOWER = {"hidden_dim": 16, "num_layers": 1, "num_heads": 2, "intermediate_dim": 32}
LETTERS = "abcdefghijklmnopqrstuvwxyz"
# A tiny CLIP byte-level BPE: letters, letters ending a word, two merges; the end token has the largest id.
CLIP_VOCABULARY = {token: i for i, token in enumerate(
    list(LETTERS) + [c + "</w>" for c in LETTERS] + ["ca", "cat</w>", "<|startoftext|>", "<|endoftext|>"]
)}
CLIP_MERGES = ["c a", "ca t</w>"]
SPIECE = os.path.join(os.path.dirname(__file__), "..", "fixtures", "pretrained", "hf_siglip", "spiece.model")
BERT_VOCABULARY = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "dog", "cat", "on", "the", "mat", "!", "##s"]


def _unit(x):
    x = np.asarray(x, "float64")
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _converter():
    return dict(scale=[1.0 / (255.0 * s) for s in STD], offset=[-m / s for m, s in zip(MEAN, STD)])


def _pixels(images):
    """What the preset's image converter feeds the backbone for [-1, 1] images."""
    return (((images + 1.0) * 127.5 / 255.0 - np.array(MEAN)) / np.array(STD)).astype("float32")


@pytest.fixture(scope="module")
def presets(tmp_path_factory):
    root = tmp_path_factory.mktemp("presets")
    clip = keras_hub.models.CLIPBackbone(
        vision_encoder=keras_hub.models.CLIPVisionEncoder(patch_size=8, image_shape=(16, 16, 3), **TOWER),
        text_encoder=keras_hub.models.CLIPTextEncoder(
            vocabulary_size=len(CLIP_VOCABULARY), embedding_dim=16, max_sequence_length=8, **TOWER
        ),
        projection_dim=8,
    )
    clip.clip_head.logit_scale.assign(2.5)
    clip.save_to_preset(str(root / "clip"))
    keras_hub.models.CLIPTokenizer(vocabulary=CLIP_VOCABULARY, merges=CLIP_MERGES).save_to_preset(str(root / "clip"))
    keras_hub.layers.CLIPImageConverter(image_size=(16, 16), **_converter()).save_to_preset(str(root / "clip"))
    siglip = keras_hub.models.SigLIPBackbone(
        vision_encoder=keras_hub.models.SigLIPVisionEncoder(patch_size=8, image_shape=(16, 16, 3), **TOWER),
        text_encoder=keras_hub.models.SigLIPTextEncoder(
            vocabulary_size=500, embedding_dim=16, max_sequence_length=8, **TOWER
        ),
    )
    siglip.siglip_head.logit_scale.assign(1.5)
    siglip.siglip_head.logit_bias.assign(-3.0)
    siglip.save_to_preset(str(root / "siglip"))
    keras_hub.models.SigLIPTokenizer(proto=SPIECE).save_to_preset(str(root / "siglip"))
    keras_hub.layers.SigLIPImageConverter(
        image_size=(16, 16), scale=1 / 127.5, offset=-1.0, crop_to_aspect_ratio=False
    ).save_to_preset(
        str(root / "siglip")
    )
    vit = keras_hub.models.ViTBackbone(
        image_shape=(16, 16, 3), patch_size=8, num_layers=1, num_heads=2, hidden_dim=16, mlp_dim=32
    )
    vit.save_to_preset(str(root / "vit"))
    keras_hub.layers.ViTImageConverter(image_size=(16, 16), **_converter()).save_to_preset(str(root / "vit"))
    bert = keras_hub.models.BertBackbone(vocabulary_size=len(BERT_VOCABULARY), max_sequence_length=12, **{
        "num_layers": 1, "num_heads": 2, "hidden_dim": 16, "intermediate_dim": 32})
    bert.save_to_preset(str(root / "bert"))
    keras_hub.models.BertTokenizer(vocabulary=BERT_VOCABULARY, lowercase=True).save_to_preset(str(root / "bert"))
    return {"root": root, "clip": clip, "siglip": siglip, "vit": vit, "bert": bert}


@pytest.fixture(scope="module")
def clip_model(presets):
    return load_keras_hub_preset(str(presets["root"] / "clip"))


def test_clip_preset_is_a_dual_encoder_with_the_backbone_s_embeddings(presets, clip_model):
    clip = presets["clip"]
    assert isinstance(clip_model, DualEncoder)
    assert isinstance(clip_model.image_encoder, KerasHubEncoder) and clip_model.image_encoder.architecture == "clip_vision"
    tokenizer = clip_model.preprocessor.tokenizer
    assert isinstance(tokenizer, ClipTokenizer) and tokenizer.sequence_length == 8
    token_ids = tokenizer(["a cat", "cats on a mat", ""]).numpy()
    images = clip_model.image_model(IMAGES).numpy()
    texts = clip_model.text_model(token_ids).numpy()
    assert np.abs(images - _unit(clip.get_vision_embeddings(_pixels(IMAGES)))).max() < 1e-5
    assert np.abs(texts - _unit(clip.get_text_embeddings(token_ids))).max() < 1e-5
    np.testing.assert_allclose(float(clip_model.logit_scale()["logit_scale"]), np.exp(2.5), rtol=1e-6)


def test_clip_tokenizer_gives_keras_hub_s_pieces_on_plain_text(clip_model):
    words = keras_hub.models.CLIPTokenizer(vocabulary=CLIP_VOCABULARY, merges=CLIP_MERGES)(tf.constant(["a cat"]))
    words = words.to_list()[0] if isinstance(words, tf.RaggedTensor) else list(np.asarray(words[0]))
    ids = clip_model.preprocessor.tokenizer(["a cat"]).numpy()[0]
    start, end = CLIP_VOCABULARY["<|startoftext|>"], CLIP_VOCABULARY["<|endoftext|>"]
    np.testing.assert_array_equal(ids[: len(words) + 2], [start, *words, end])


def test_clip_preset_round_trip_and_export(clip_model, tmp_path):
    clip_model.save(tmp_path / "clip.keras")
    loaded = keras.saving.load_model(tmp_path / "clip.keras")
    batch = {"images": IMAGES, "token_ids": clip_model.preprocessor.tokenizer(["a cat", "a mat"]).numpy()}
    for key, value in clip_model(batch).items():
        np.testing.assert_array_equal(loaded(batch)[key], value)
    export_model(clip_model, str(tmp_path / "export"))
    serving = tf.saved_model.load(str(tmp_path / "export"))
    png = tf.io.encode_png(tf.cast((IMAGES[0] + 1) * 127.5, tf.uint8))
    out = serving.signatures["similarity"](image_bytes=tf.stack([png]), text=tf.constant(["a cat", "a mat"]))
    assert out["probabilities"].shape == (1, 2)


def test_siglip_preset_is_a_dual_encoder_with_the_backbone_s_embeddings(presets):
    siglip = presets["siglip"]
    model = load_keras_hub_preset(str(presets["root"] / "siglip"))
    assert model.loss_name == "siglip" and model.preprocessor.image_converter.resize == "stretch"
    tokenizer = model.preprocessor.tokenizer
    assert isinstance(tokenizer, SentencePieceTokenizer) and tokenizer.sequence_length == 8
    with open(os.path.join(os.path.dirname(SPIECE), "tokenizer_cases.json"), encoding="utf-8") as f:
        cases = json.load(f)  # the reference ids at length 16
    np.testing.assert_array_equal(tokenizer(cases["captions"][:20])[:, :7], np.array(cases["input_ids"][:20])[:, :7])
    token_ids = tokenizer(["a dog on the mat", "Two cats!", ""]).numpy()
    images = model.image_model(IMAGES).numpy()
    texts = model.text_model(token_ids).numpy()
    # The preset's converter maps [0, 255] to [-1, 1]: the tower sees the ImagePreprocessor's images as they are.
    assert np.abs(images - _unit(siglip.get_vision_embeddings(IMAGES))).max() < 1e-5
    assert np.abs(texts - _unit(siglip.get_text_embeddings(token_ids))).max() < 1e-5
    scale = model.logit_scale()
    np.testing.assert_allclose([float(scale["logit_scale"]), float(scale["logit_bias"])], [np.exp(1.5), -3.0], rtol=1e-6)
    given = WordPieceTokenizer(BERT_VOCABULARY, sequence_length=8)
    assert load_keras_hub_preset(str(presets["root"] / "siglip"), tokenizer=given).preprocessor.tokenizer is given


def test_vit_preset(presets):
    tower, converter = load_keras_hub_preset(str(presets["root"] / "vit"))
    assert isinstance(converter, ImagePreprocessor) and converter.image_size == 16 and converter.resize == "crop"
    out = tower(IMAGES)
    reference = presets["vit"](_pixels(IMAGES)).numpy()
    assert np.abs(out["sequence"].numpy() - reference).max() < 1e-5
    assert np.abs(out["pooled"].numpy() - reference[:, 0]).max() < 1e-5
    with pytest.raises(ValueError, match="no pooler"):
        load_keras_hub_preset(str(presets["root"] / "vit"), pooling="pooler")


@pytest.mark.parametrize("pooling", ["cls", "pooler"])
def test_bert_preset(presets, pooling):
    tower, tokenizer = load_keras_hub_preset(str(presets["root"] / "bert"), pooling=pooling, sequence_length=8)
    assert isinstance(tokenizer, WordPieceTokenizer) and tokenizer.sequence_length == 8
    token_ids = tokenizer(["The DOGS on a mat!", "a cat"]).numpy()
    np.testing.assert_array_equal(token_ids[0], [2, 9, 6, 12, 8, 5, 10, 3])
    np.testing.assert_array_equal(token_ids[1], [2, 5, 7, 3, 0, 0, 0, 0])
    out = tower(token_ids)
    reference = presets["bert"](
        {"token_ids": token_ids, "segment_ids": np.zeros_like(token_ids), "padding_mask": token_ids != 0}
    )
    assert np.abs(out["sequence"].numpy() - reference["sequence_output"].numpy()).max() < 1e-5
    expected = reference["pooled_output"] if pooling == "pooler" else reference["sequence_output"][:, 0]
    assert np.abs(out["pooled"].numpy() - expected.numpy()).max() < 1e-5


def test_errors_name_the_file_and_field(presets, tmp_path):
    with pytest.raises(ValueError, match="not found"):
        load_keras_hub_preset(str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match=r"config\.json is missing"):
        load_keras_hub_preset(str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "clip", "architectures": ["CLIPModel"]}))
    with pytest.raises(ValueError, match="Hugging Face config.*hf:DIR"):
        load_keras_hub_preset(str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({"class_name": "GemmaBackbone", "config": {}}))
    with pytest.raises(ValueError, match=r"config\.json: class_name 'GemmaBackbone' is not a backbone"):
        load_keras_hub_preset(str(tmp_path))
    bare = tmp_path / "bare_bert"
    presets["bert"].save_to_preset(str(bare))
    with pytest.raises(ValueError, match="no tokenizer.json"):
        load_keras_hub_preset(str(bare))
    with pytest.raises(ValueError, match="sequence_length"):
        load_keras_hub_preset(str(presets["root"] / "bert"), sequence_length=13)
    with pytest.raises(ValueError, match="pooling"):
        load_keras_hub_preset(str(presets["root"] / "bert"), pooling="mean")
