import shutil

import keras
import keras_hub
import numpy as np
import pytest

from mmkeras.encoders.keras_hub_encoder import KerasHubEncoder
from mmkeras.testing.layer_checks import run_layer_checks

RNG = np.random.default_rng(0)
IMAGES = RNG.uniform(-1, 1, size=(2, 16, 16, 3)).astype("float32")
# CLIP and SigLIP text towers here take 8 ids (SigLIP needs exactly max_sequence_length).
TOKEN_IDS = np.array([[5, 9, 30, 0, 0, 0, 0, 0], [4, 12, 8, 7, 2, 0, 0, 0]], "int32")
CLIP_MEAN, CLIP_STD = [0.48, 0.46, 0.41], [0.27, 0.26, 0.28]

TOWER = {"hidden_dim": 16, "num_layers": 1, "num_heads": 2, "intermediate_dim": 32}
VISION = {"patch_size": 8, "image_shape": (16, 16, 3), **TOWER}
TEXT = {"vocabulary_size": 40, "embedding_dim": 16, "max_sequence_length": 8, **TOWER}


@pytest.fixture(scope="module")
def presets(tmp_path_factory):
    root = tmp_path_factory.mktemp("presets")
    clip = keras_hub.models.CLIPBackbone(
        vision_encoder=keras_hub.models.CLIPVisionEncoder(**VISION),
        text_encoder=keras_hub.models.CLIPTextEncoder(**TEXT),
        projection_dim=8,
    )
    clip.save_to_preset(str(root / "clip"))
    keras_hub.layers.CLIPImageConverter(
        image_size=(16, 16),
        scale=[1.0 / (255.0 * s) for s in CLIP_STD],
        offset=[-m / s for m, s in zip(CLIP_MEAN, CLIP_STD)],
    ).save_to_preset(str(root / "clip"))
    siglip = keras_hub.models.SigLIPBackbone(
        vision_encoder=keras_hub.models.SigLIPVisionEncoder(**VISION),
        text_encoder=keras_hub.models.SigLIPTextEncoder(**TEXT),
    )
    siglip.save_to_preset(str(root / "siglip"))
    bert = keras_hub.models.BertBackbone(
        vocabulary_size=40,
        num_layers=1,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        max_sequence_length=8,
    )
    bert.save_to_preset(str(root / "bert"))
    vit = keras_hub.models.ViTBackbone(
        image_shape=(16, 16, 3), patch_size=8, num_layers=1, num_heads=2, hidden_dim=16, mlp_dim=32
    )
    vit.save_to_preset(str(root / "vit"))
    return {"root": root, "clip": clip, "siglip": siglip, "bert": bert, "vit": vit}


def _clip_pixels(images):
    """What a CLIP image converter feeds the tower for [-1, 1] images."""
    pixels = (images + 1.0) * 127.5
    return (pixels / 255.0 - np.array(CLIP_MEAN)) / np.array(CLIP_STD)


def test_clip_towers_match_backbone(presets):
    clip = presets["clip"]
    image_tower = KerasHubEncoder(str(presets["root"] / "clip"), modality="image")
    text_tower = KerasHubEncoder(str(presets["root"] / "clip"), modality="text")
    image_out, text_out = image_tower(IMAGES), text_tower(TOKEN_IDS)
    assert image_out["sequence"].shape == (2, 5, 16) and image_out["pooled"].shape == (2, 16)
    assert text_out["sequence"].shape == (2, 8, 16) and text_out["pooled"].shape == (2, 16)
    assert image_tower.output_dim == text_tower.output_dim == 16
    np.testing.assert_array_equal(text_out["padding_mask"], TOKEN_IDS != 0)
    # Same numbers as CLIPBackbone's own pooling (before its projection).
    pixels = _clip_pixels(IMAGES).astype("float32")
    reference_image = clip.vision_pooler(clip.vision_encoder({"images": pixels}))
    np.testing.assert_allclose(image_out["pooled"], reference_image, rtol=1e-4, atol=1e-4)
    reference_text = clip.text_pooler(clip.text_encoder({"token_ids": TOKEN_IDS}), TOKEN_IDS)
    np.testing.assert_allclose(text_out["pooled"], reference_text, rtol=1e-5, atol=1e-5)


def test_image_converter_is_mapped_to_unit_range(presets):
    tower = KerasHubEncoder(str(presets["root"] / "clip"), modality="image")
    config = tower.get_config()
    scale, offset = np.array(config["image_scale"]), np.array(config["image_offset"])
    np.testing.assert_allclose(-scale + offset, _clip_pixels(np.full(3, -1.0)), rtol=1e-6)
    np.testing.assert_allclose(scale + offset, _clip_pixels(np.full(3, 1.0)), rtol=1e-6)
    plain = KerasHubEncoder(str(presets["root"] / "siglip"), modality="image")
    assert plain.get_config()["image_scale"] is None


def test_siglip_towers_expose_sequence_and_head(presets):
    siglip = presets["siglip"]
    image_tower = KerasHubEncoder(str(presets["root"] / "siglip"), modality="image")
    text_tower = KerasHubEncoder(str(presets["root"] / "siglip"), modality="text")
    image_out, text_out = image_tower(IMAGES), text_tower(TOKEN_IDS)
    assert image_out["sequence"].shape == (2, 4, 16)
    assert text_out["sequence"].shape == (2, 8, 16)
    reference_image = siglip.vision_encoder({"images": IMAGES})
    np.testing.assert_allclose(image_out["pooled"], reference_image, rtol=1e-5, atol=1e-5)
    reference_text = siglip.text_encoder({"token_ids": TOKEN_IDS})
    np.testing.assert_allclose(text_out["pooled"], reference_text, rtol=1e-5, atol=1e-5)
    # SigLIP adds its whole position table: the tower takes exactly max_sequence_length ids.
    assert tuple(text_tower.input.shape) == (None, 8)


@pytest.mark.parametrize("kind", ["clip", "siglip"])
def test_layer_checks(presets, kind, tmp_path):
    preset = str(presets["root"] / kind)
    for modality, inputs in [("image", IMAGES), ("text", TOKEN_IDS)]:
        kwargs = {"preset": preset, "modality": modality}
        run_layer_checks(KerasHubEncoder, kwargs, {"inputs": inputs}, str(tmp_path))


def test_keras_file_is_self_contained(presets, tmp_path):
    preset = str(tmp_path / "copied_preset")
    shutil.copytree(str(presets["root"] / "clip"), preset)
    tower = KerasHubEncoder(preset, modality="text")
    token_ids = keras.Input((None,), dtype="int32")
    model = keras.Model(token_ids, keras.layers.Dense(3, name="head")(tower(token_ids)["pooled"]))
    model.compile(keras.optimizers.SGD(0.1), "mse")
    model.fit(TOKEN_IDS, np.ones((2, 3), "float32"), epochs=1, verbose=0)
    path = str(tmp_path / "with_tower.keras")
    model.save(path)
    shutil.rmtree(preset)  # the .keras file must not need the preset any more
    restored = keras.saving.load_model(path)
    np.testing.assert_allclose(restored(TOKEN_IDS), model(TOKEN_IDS), rtol=1e-5, atol=1e-6)
    restored_tower = [layer for layer in restored.layers if isinstance(layer, KerasHubEncoder)][0]
    np.testing.assert_allclose(restored_tower(TOKEN_IDS)["pooled"], tower(TOKEN_IDS)["pooled"], rtol=1e-5)


def test_pooling_overrides(presets):
    preset = str(presets["root"] / "clip")
    default = KerasHubEncoder(preset, modality="text")(TOKEN_IDS)
    sequence = default["sequence"].numpy()
    mask = (TOKEN_IDS != 0)[:, :, None]
    mean = KerasHubEncoder(preset, modality="text", pooling="mean")(TOKEN_IDS)["pooled"]
    np.testing.assert_allclose(mean, (sequence * mask).sum(1) / mask.sum(1), rtol=1e-5, atol=1e-6)
    last = KerasHubEncoder(preset, modality="text", pooling="last_token")(TOKEN_IDS)["pooled"]
    np.testing.assert_allclose(last, sequence[[0, 1], [2, 4]], rtol=1e-5)
    image_mean = KerasHubEncoder(preset, modality="image", pooling="mean")(IMAGES)
    expected = image_mean["sequence"].numpy().mean(1)
    np.testing.assert_allclose(image_mean["pooled"], expected, rtol=1e-5, atol=1e-6)


def test_generic_backbones(presets):
    bert = KerasHubEncoder(str(presets["root"] / "bert"), modality="text")
    out = bert(TOKEN_IDS)
    reference = presets["bert"](
        {"token_ids": TOKEN_IDS, "segment_ids": np.zeros_like(TOKEN_IDS), "padding_mask": TOKEN_IDS != 0}
    )
    np.testing.assert_allclose(out["sequence"], reference["sequence_output"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out["pooled"], reference["pooled_output"], rtol=1e-5, atol=1e-5)
    vit = KerasHubEncoder(str(presets["root"] / "vit"), modality="image")
    out = vit(IMAGES)
    np.testing.assert_allclose(out["sequence"], presets["vit"](IMAGES), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out["pooled"], out["sequence"].numpy().mean(1), rtol=1e-5, atol=1e-6)


def test_from_tower_instance(presets):
    tower = KerasHubEncoder(tower=presets["siglip"], modality="text")
    assert tower.tower is presets["siglip"].text_encoder
    assert tower.get_config()["tower"]["class_name"] == "SigLIPTextEncoder"


def test_bad_arguments(presets, tmp_path):
    with pytest.raises(ValueError, match="preset"):
        KerasHubEncoder(str(tmp_path), modality="image")
    with pytest.raises(ValueError, match="preset"):
        KerasHubEncoder("clip_vit_base_patch16", modality="image")
    with pytest.raises(ValueError, match="modality"):
        KerasHubEncoder(str(presets["root"] / "clip"), modality="audio")
    with pytest.raises(ValueError, match="pooling"):
        KerasHubEncoder(str(presets["root"] / "clip"), modality="image", pooling="argmax")
    with pytest.raises(ValueError, match="modality"):
        KerasHubEncoder(tower=presets["clip"].vision_encoder, modality="text")
    with pytest.raises(ValueError, match="image_scale"):
        KerasHubEncoder(str(presets["root"] / "siglip"), modality="image", image_scale="big")


def test_activation_sets_the_blocks_feed_forward_activation(presets, tmp_path):
    preset = str(presets["root"] / "bert")
    approximate = KerasHubEncoder(preset, modality="text")(TOKEN_IDS)["sequence"].numpy()
    exact_tower = KerasHubEncoder(preset, modality="text", activation="gelu")
    exact = exact_tower(TOKEN_IDS)["sequence"].numpy()
    assert np.abs(exact - approximate).max() > 1e-7  # BertBackbone builds its blocks with the tanh approximation
    block = exact_tower.tower.get_layer("transformer_layer_0")
    inputs = keras.ops.convert_to_tensor(np.linspace(-3, 3, 7, dtype="float32"))
    np.testing.assert_allclose(block._feedforward_intermediate_dense.activation(inputs),
                               keras.activations.gelu(inputs, approximate=False), rtol=1e-6)
    token_ids = keras.Input((None,), dtype="int32")
    model = keras.Model(token_ids, exact_tower(token_ids)["sequence"])
    model.save(tmp_path / "exact.keras")
    np.testing.assert_array_equal(keras.saving.load_model(tmp_path / "exact.keras")(TOKEN_IDS), exact)
    with pytest.raises(ValueError, match="no keras-hub TransformerEncoder"):
        KerasHubEncoder(str(presets["root"] / "vit"), modality="image", activation="gelu")
    with pytest.raises(ValueError, match="activation"):
        KerasHubEncoder(preset, modality="text", activation=keras.activations.relu)
