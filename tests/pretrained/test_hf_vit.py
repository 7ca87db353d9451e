import json
import os

import keras
import numpy as np
import pytest

from mmkeras.encoders.keras_hub_encoder import KerasHubEncoder
from mmkeras.preprocessing.image_preprocessor import ImagePreprocessor
from mmkeras.pretrained.hf_vit import load_hf_vit

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "fixtures", "pretrained", "hf_vit")


@pytest.fixture(scope="module")
def imported():
    return {pooling: load_hf_vit(FIXTURE, pooling=pooling) for pooling in ("cls", "pooler")}


@pytest.mark.parametrize("pooling", ["cls", "pooler"])
def test_outputs_equal_the_reference(imported, expected, pooling):
    tower, _ = imported[pooling]
    assert isinstance(tower, KerasHubEncoder) and tower.output_dim == 32
    out = tower(expected["pixel_values"].transpose(0, 2, 3, 1))  # NCHW -> NHWC
    assert np.abs(out["sequence"].numpy() - expected["last_hidden_state"]).max() < 1e-4
    reference = expected["pooler_output"] if pooling == "pooler" else expected["last_hidden_state"][:, 0]
    assert np.abs(out["pooled"].numpy() - reference).max() < 1e-4


def test_image_converter_is_the_checkpoint_s(imported, expected):
    _, converter = imported["cls"]
    assert isinstance(converter, ImagePreprocessor) and converter.image_size == 32
    with open(os.path.join(FIXTURE, "preprocessor_config.json")) as f:
        settings = json.load(f)
    np.testing.assert_allclose(converter.mean, settings["image_mean"])
    np.testing.assert_allclose(converter.std, settings["image_std"])


def test_raw_images_through_the_converter_match_the_reference(imported, expected, unit, raw_bytes):
    # A 50x40 JPEG and a partly transparent 24x36 PNG: stretched to 32x32, the PNG composited on white.
    tower, converter = imported["pooler"]
    assert converter.resize == "stretch" and converter.transparency == "white"
    embeddings = tower(converter(raw_bytes))["pooled"].numpy()
    cosine = (unit(embeddings) * unit(expected["raw_image_embeds"])).sum(-1)
    assert cosine.min() >= 0.99, cosine


def test_keras_file_round_trip(imported, expected, tmp_path):
    tower, _ = imported["pooler"]
    images = keras.Input((32, 32, 3))
    model = keras.Model(images, tower(images)["pooled"])
    model.save(tmp_path / "vit.keras")
    loaded = keras.saving.load_model(tmp_path / "vit.keras")
    pixels = expected["pixel_values"].transpose(0, 2, 3, 1)
    np.testing.assert_array_equal(loaded(pixels), model(pixels))


def test_mixed_bfloat16_import(expected, unit):
    tower, _ = load_hf_vit(FIXTURE, dtype="mixed_bfloat16")
    pooled = tower(expected["pixel_values"].transpose(0, 2, 3, 1))["pooled"].numpy().astype("float32")
    assert (unit(pooled) * unit(expected["last_hidden_state"][:, 0])).sum(-1).min() > 0.98


# --- errors -------------------------------------------------------------------


def test_vit_prefixed_names_are_read(expected, checkpoint_copy, rewrite_tensors):
    folder = checkpoint_copy(FIXTURE)
    rewrite_tensors(folder, lambda t: t.update({f"vit.{k}": t.pop(k) for k in list(t) if not k.startswith("pooler.")}))
    tower, _ = load_hf_vit(folder)
    out = tower(expected["pixel_values"].transpose(0, 2, 3, 1))
    assert np.abs(out["sequence"].numpy() - expected["last_hidden_state"]).max() < 1e-4


def test_pickle_checkpoints_are_refused_with_how_to_convert(check_pickle_refused):
    check_pickle_refused(load_hf_vit, FIXTURE, r"pytorch_model\.bin is a pickle checkpoint.*save_file")


def test_missing_and_misshapen_tensors_are_named(check_tensor_errors):
    missing, pooler = "encoder.layer.1.output.dense.weight", ("pooler.dense.weight", 8)
    folder = check_tensor_errors(
        load_hf_vit, FIXTURE, missing, pooler, r"\(32, 8\).*\(32, 32\)", load_resized=lambda f: load_hf_vit(f, pooling="pooler")
    )
    load_hf_vit(folder)  # the class token pooling never reads the pooler


def test_other_architectures_and_missing_files(checkpoint_copy, check_folder_errors, check_refused_fields):
    folder = checkpoint_copy(FIXTURE)
    check_refused_fields(load_hf_vit, folder / "config.json", r"config\.json: hidden_act is 'relu'", hidden_act="relu")
    bert = {"model_type": "bert", "architectures": ["BertModel"]}
    check_folder_errors(load_hf_vit, folder, bert, r"config\.json: architectures=\['BertModel'\].*not a 'vit' checkpoint")
    with pytest.raises(ValueError, match="pooling"):
        load_hf_vit(FIXTURE, pooling="mean")


def test_image_preprocessing_settings(checkpoint_copy, check_refused_fields):
    folder = checkpoint_copy(FIXTURE)
    settings = folder / "preprocessor_config.json"
    size = r"preprocessor_config\.json: size .* must be the image tower's image_size 32"
    check_refused_fields(load_hf_vit, settings, size, size={"height": 24, "width": 24})
    check_refused_fields(load_hf_vit, settings, r"preprocessor_config\.json: do_center_crop", do_center_crop=True)
    os.remove(folder / "preprocessor_config.json")
    _, converter = load_hf_vit(folder)
    assert converter.mean == [0.5, 0.5, 0.5] and converter.std == [0.5, 0.5, 0.5] and converter.image_size == 32
