import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from mmkeras.encoders.keras_hub_encoder import KerasHubEncoder
from mmkeras.preprocessing.image_preprocessor import ImagePreprocessor
from mmkeras.pretrained.hf_vit import load_hf_vit

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "fixtures", "pretrained", "hf_vit")


@pytest.fixture(scope="module")
def expected():
    return dict(np.load(os.path.join(FIXTURE, "expected.npz")))


@pytest.fixture(scope="module")
def imported():
    return {pooling: load_hf_vit(FIXTURE, pooling=pooling) for pooling in ("cls", "pooler")}


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


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


def _raw_embeddings(imported):
    tower, converter = imported["pooler"]
    raw = [open(os.path.join(FIXTURE, "raw", name), "rb").read() for name in ("0.jpg", "1.png")]
    return tower(converter(tf.constant(raw)))["pooled"].numpy()


def test_raw_images_through_the_converter_match_the_reference(imported, expected):
    # A 50x40 JPEG and a partly transparent 24x36 PNG: stretched to 32x32, the PNG composited on white.
    tower, converter = imported["pooler"]
    assert converter.resize == "stretch" and converter.transparency == "white"
    cosine = (_unit(_raw_embeddings(imported)) * _unit(expected["raw_image_embeds"])).sum(-1)
    assert cosine.min() >= 0.99, cosine


def test_keras_file_round_trip(imported, expected, tmp_path):
    tower, _ = imported["pooler"]
    images = keras.Input((32, 32, 3))
    model = keras.Model(images, tower(images)["pooled"])
    model.save(tmp_path / "vit.keras")
    loaded = keras.saving.load_model(tmp_path / "vit.keras")
    pixels = expected["pixel_values"].transpose(0, 2, 3, 1)
    np.testing.assert_array_equal(loaded(pixels), model(pixels))


def test_mixed_bfloat16_import(expected):
    tower, _ = load_hf_vit(FIXTURE, dtype="mixed_bfloat16")
    pooled = tower(expected["pixel_values"].transpose(0, 2, 3, 1))["pooled"].numpy().astype("float32")
    assert (_unit(pooled) * _unit(expected["last_hidden_state"][:, 0])).sum(-1).min() > 0.98


# --- errors -------------------------------------------------------------------


def test_vit_prefixed_names_are_read(expected, checkpoint_copy, rewrite_tensors):
    folder = checkpoint_copy(FIXTURE)
    rewrite_tensors(folder, lambda t: t.update({f"vit.{k}": t.pop(k) for k in list(t) if not k.startswith("pooler.")}))
    tower, _ = load_hf_vit(folder)
    out = tower(expected["pixel_values"].transpose(0, 2, 3, 1))
    assert np.abs(out["sequence"].numpy() - expected["last_hidden_state"]).max() < 1e-4


def test_pickle_checkpoints_are_refused_with_how_to_convert(pickle_checkpoint):
    folder = pickle_checkpoint(FIXTURE)
    for source in (folder, folder / "pytorch_model.bin"):
        with pytest.raises(ValueError, match=r"pytorch_model\.bin is a pickle checkpoint.*save_file"):
            load_hf_vit(source)


def test_missing_and_misshapen_tensors_are_named(checkpoint_copy, rewrite_tensors):
    folder = checkpoint_copy(FIXTURE)
    path = rewrite_tensors(folder, lambda t: t.pop("encoder.layer.1.output.dense.weight"))
    with pytest.raises(ValueError, match=rf"{path}: tensor 'encoder\.layer\.1\.output\.dense\.weight' is missing"):
        load_hf_vit(folder)
    folder = checkpoint_copy(FIXTURE)
    path = rewrite_tensors(folder, lambda t: t.update({"pooler.dense.weight": t["pooler.dense.weight"][:, :8]}))
    with pytest.raises(ValueError, match=rf"{path}: tensor 'pooler\.dense\.weight' has shape \(32, 8\).*\(32, 32\)"):
        load_hf_vit(folder, pooling="pooler")
    load_hf_vit(folder)  # the class token pooling never reads the pooler


def test_other_architectures_and_missing_files(tmp_path, checkpoint_copy):
    folder = checkpoint_copy(FIXTURE)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "model_type": "bert", "architectures": ["BertModel"]}))
    with pytest.raises(ValueError, match=r"config\.json: architectures=\['BertModel'\].*not a 'vit' checkpoint"):
        load_hf_vit(folder)
    (folder / "config.json").write_text(json.dumps({**config, "hidden_act": "relu"}))
    with pytest.raises(ValueError, match=r"config\.json: hidden_act is 'relu'"):
        load_hf_vit(folder)
    os.remove(folder / "config.json")
    with pytest.raises(ValueError, match=r"config\.json is missing"):
        load_hf_vit(folder)
    with pytest.raises(ValueError, match="not found"):
        load_hf_vit(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="pooling"):
        load_hf_vit(FIXTURE, pooling="mean")


def test_image_preprocessing_settings(checkpoint_copy):
    folder = checkpoint_copy(FIXTURE)
    settings = json.loads((folder / "preprocessor_config.json").read_text())
    (folder / "preprocessor_config.json").write_text(json.dumps({**settings, "size": {"height": 24, "width": 24}}))
    with pytest.raises(ValueError, match=r"preprocessor_config\.json: size .* must be the image tower's image_size 32"):
        load_hf_vit(folder)
    (folder / "preprocessor_config.json").write_text(json.dumps({**settings, "do_center_crop": True}))
    with pytest.raises(ValueError, match=r"preprocessor_config\.json: do_center_crop"):
        load_hf_vit(folder)
    os.remove(folder / "preprocessor_config.json")
    _, converter = load_hf_vit(folder)
    assert converter.mean == [0.5, 0.5, 0.5] and converter.std == [0.5, 0.5, 0.5] and converter.image_size == 32
