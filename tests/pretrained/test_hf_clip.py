import json
import os
import shutil

import keras
import numpy as np
import pytest
import safetensors.numpy
import tensorflow as tf

from mmkeras.export import export_model
from mmkeras.models.dual_encoder import DualEncoder
from mmkeras.pretrained import load_hf_clip

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "fixtures", "pretrained", "hf_clip")
RAW = ("0.jpg", "1.png")
TEXTS = ["a photo of a dog", "Two CATS, sleeping!", ""]


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


@pytest.fixture(scope="module")
def expected():
    return dict(np.load(os.path.join(FIXTURE, "expected.npz")))


@pytest.fixture(scope="module")
def model():
    return load_hf_clip(FIXTURE)


def _raw_bytes():
    return tf.constant([open(os.path.join(FIXTURE, "raw", name), "rb").read() for name in RAW])


@pytest.mark.parametrize("pooled_only", [True, False])
def test_embeddings_equal_the_reference(expected, pooled_only, model):
    clip = model if pooled_only else load_hf_clip(FIXTURE, pooled_only=False)
    assert isinstance(clip, DualEncoder)
    images = clip.image_model(expected["pixel_values"].transpose(0, 2, 3, 1)).numpy()  # NCHW -> NHWC
    texts = clip.text_model(expected["input_ids"].astype("int32")).numpy()
    assert np.abs(images - _unit(expected["image_embeds"])).max() < 1e-4
    assert np.abs(texts - _unit(expected["text_embeds"])).max() < 1e-4
    np.testing.assert_allclose(float(clip.logit_scale()["logit_scale"]), np.exp(expected["logit_scale"]), rtol=1e-5)


def test_the_preprocessor_is_the_checkpoint_s(model, expected):
    with open(os.path.join(FIXTURE, "tokenizer_cases.json"), encoding="utf-8") as f:
        cases = json.load(f)
    tokenizer = model.preprocessor.tokenizer
    np.testing.assert_array_equal(tokenizer(cases["captions"][:50]), np.array(cases["input_ids"][:50]))
    converter = model.preprocessor.image_converter
    assert converter.resize == "crop" and converter.image_size == 32
    with open(os.path.join(FIXTURE, "preprocessor_config.json")) as f:
        np.testing.assert_allclose(converter.mean, json.load(f)["image_mean"])


def test_raw_jpeg_through_the_preprocessor_matches_the_reference(model, expected):
    images = model.preprocessor({"image_bytes": _raw_bytes()})["images"]
    cosine = (model.image_model(images).numpy() * _unit(expected["raw_image_embeds"])).sum(-1)
    assert cosine[0] >= 0.99, cosine


def test_raw_transparent_png_matches_the_reference(model, expected):
    images = model.preprocessor({"image_bytes": _raw_bytes()})["images"]
    cosine = (model.image_model(images).numpy() * _unit(expected["raw_image_embeds"])).sum(-1)
    assert cosine[1] >= 0.99, cosine


def test_keras_file_round_trip(model, expected, tmp_path):
    model.save(tmp_path / "clip.keras")
    loaded = keras.saving.load_model(tmp_path / "clip.keras")
    batch = {"images": expected["pixel_values"].transpose(0, 2, 3, 1), "token_ids": expected["input_ids"][:2].astype("int32")}
    for key, value in model(batch).items():
        np.testing.assert_array_equal(loaded(batch)[key], value)
    np.testing.assert_array_equal(loaded.preprocessor.tokenizer(TEXTS), model.preprocessor.tokenizer(TEXTS))
    assert float(loaded.logit_scale()["logit_scale"]) == float(model.logit_scale()["logit_scale"])


def test_export_takes_raw_bytes_and_strings(model, tmp_path):
    export_model(model, str(tmp_path / "export"))
    serving = tf.saved_model.load(str(tmp_path / "export"))
    texts = serving.signatures["embed_text"](text=tf.constant(TEXTS))["embeddings"].numpy()
    images = serving.signatures["embed_image"](image_bytes=_raw_bytes())["embeddings"].numpy()
    inputs = model.preprocessor({"image_bytes": _raw_bytes(), "text": tf.constant(TEXTS)})
    np.testing.assert_allclose(texts, model.text_model(inputs["token_ids"]).numpy(), atol=1e-5)
    np.testing.assert_allclose(images, model.image_model(inputs["images"]).numpy(), atol=1e-5)


def test_mixed_bfloat16_import(expected):
    clip = load_hf_clip(FIXTURE, dtype="mixed_bfloat16")
    texts = clip.text_model(expected["input_ids"].astype("int32")).numpy()
    assert (texts * _unit(expected["text_embeds"])).sum(-1).min() > 0.98


# --- errors -------------------------------------------------------------------


def _copy(tmp_path):
    folder = tmp_path / "clip"
    shutil.copytree(FIXTURE, folder)
    return folder


def _rewrite(folder, change):
    path = str(folder / "model.safetensors")
    tensors = safetensors.numpy.load_file(path)
    change(tensors)
    safetensors.numpy.save_file(tensors, path)
    return path


def test_pickle_checkpoints_are_refused_with_how_to_convert(tmp_path):
    folder = _copy(tmp_path)
    os.remove(folder / "model.safetensors")
    (folder / "pytorch_model.bin").write_bytes(b"pickle")
    for source in (folder, folder / "pytorch_model.bin"):
        with pytest.raises(ValueError, match=r"pytorch_model\.bin is a pickle checkpoint.*save_file.*safe_serialization"):
            load_hf_clip(source)


def test_a_missing_tensor_is_named(tmp_path):
    folder = _copy(tmp_path)
    path = _rewrite(folder, lambda t: t.pop("text_model.encoder.layers.1.mlp.fc2.weight"))
    with pytest.raises(ValueError, match=rf"{path}: tensor 'text_model\.encoder\.layers\.1\.mlp\.fc2\.weight' is missing"):
        load_hf_clip(folder)


def test_a_wrong_shape_names_the_file_the_tensor_and_both_shapes(tmp_path):
    folder = _copy(tmp_path)

    def shrink(tensors):
        tensors["visual_projection.weight"] = tensors["visual_projection.weight"][:, :8]

    path = _rewrite(folder, shrink)
    with pytest.raises(ValueError, match=rf"{path}: tensor 'visual_projection\.weight' has shape \(16, 8\), the model needs \(16, 32\)"):
        load_hf_clip(folder)


def test_other_architectures_and_missing_files(tmp_path):
    folder = _copy(tmp_path)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "architectures": ["SiglipModel"], "model_type": "siglip"}))
    with pytest.raises(ValueError, match=r"config\.json: architectures=\['SiglipModel'\].*not a CLIP checkpoint"):
        load_hf_clip(folder)
    os.remove(folder / "config.json")
    with pytest.raises(ValueError, match=r"config\.json is missing"):
        load_hf_clip(folder)
    with pytest.raises(ValueError, match="not found"):
        load_hf_clip(tmp_path / "nowhere")
    folder = _copy(tmp_path / "again")
    os.remove(folder / "merges.txt")
    os.remove(folder / "tokenizer.json") if (folder / "tokenizer.json").exists() else None
    with pytest.raises(ValueError, match="no tokenizer"):
        load_hf_clip(folder)


def test_legacy_eos_token_id_and_tokenizer_json(tmp_path, expected):
    folder = _copy(tmp_path)
    config = json.loads((folder / "config.json").read_text())
    config["text_config"]["eos_token_id"] = 2  # configs written before the fix pool at the largest id
    (folder / "config.json").write_text(json.dumps(config))
    vocabulary = json.loads((folder / "vocab.json").read_text())
    merges = [line.split(" ") for line in (folder / "merges.txt").read_text().split("\n")[1:] if line]
    (folder / "tokenizer.json").write_text(json.dumps({"model": {"type": "BPE", "vocab": vocabulary, "merges": merges}}))
    os.remove(folder / "vocab.json")
    os.remove(folder / "merges.txt")
    clip = load_hf_clip(folder)
    assert clip.text_encoder.get_config()["end_token_id"] == max(vocabulary.values())
    texts = clip.text_model(expected["input_ids"].astype("int32")).numpy()
    assert np.abs(texts - _unit(expected["text_embeds"])).max() < 1e-4
    np.testing.assert_array_equal(clip.preprocessor.tokenizer(TEXTS), load_hf_clip(FIXTURE).preprocessor.tokenizer(TEXTS))


FINE_TUNE = """
from mmkeras.testing.distributed import split_cpu, print_results
split_cpu(2)
import numpy as np, tensorflow as tf, keras
from mmkeras.pretrained import load_hf_clip
expected = np.load({fixture!r} + "/expected.npz")
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    model = load_hf_clip({fixture!r})
    model.compile(optimizer=keras.optimizers.SGD(0.1))
rng = np.random.default_rng(0)
images = np.concatenate([expected["pixel_values"].transpose(0, 2, 3, 1)] * 2) + rng.normal(0, 0.1, (4, 32, 32, 3))
batch = {{"images": images.astype("float32"), "token_ids": np.concatenate([expected["input_ids"]] * 2)[:4].astype("int32")}}
before = model.text_model(batch["token_ids"]).numpy()
history = model.fit(tf.data.Dataset.from_tensors(batch).repeat(3), epochs=1, verbose=0)
print_results({{
    "replicas": strategy.num_replicas_in_sync,
    "in_scope": all(strategy.extended.variable_created_in_scope(v.value) for v in model.trainable_variables),
    "loss": float(history.history["loss"][-1]),
    "moved": float(np.abs(model.text_model(batch["token_ids"]).numpy() - before).max()),
}})
"""


def test_fine_tunes_under_mirrored_strategy_on_two_cpus():
    from mmkeras.testing.distributed import run_python

    results = run_python(["-c", FINE_TUNE.format(fixture=os.path.abspath(FIXTURE))], timeout=300)
    assert results["replicas"] == 2 and results["in_scope"]
    assert np.isfinite(results["loss"]) and results["moved"] > 1e-4


def test_eos_token_id_outside_the_vocabulary_is_named(tmp_path):
    folder = _copy(tmp_path)
    config = json.loads((folder / "config.json").read_text())
    config["text_config"]["eos_token_id"] = 49407
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"config\.json: text_config\.eos_token_id 49407 is not below vocab_size"):
        load_hf_clip(folder)
