import json
import os

import numpy as np
import pytest

from mmkeras.models.dual_encoder import DualEncoder
from mmkeras.pretrained import load_hf_clip

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "fixtures", "pretrained", "hf_clip")
TEXTS = ["a photo of a dog", "Two CATS, sleeping!", ""]


@pytest.fixture(scope="module")
def model():
    return load_hf_clip(FIXTURE)


@pytest.mark.parametrize("pooled_only", [True, False])
def test_embeddings_equal_the_reference(expected, pooled_only, model, check_embeddings):
    clip = model if pooled_only else load_hf_clip(FIXTURE, pooled_only=False)
    assert isinstance(clip, DualEncoder)
    check_embeddings(clip, expected, "image_embeds", "text_embeds")


def test_the_preprocessor_is_the_checkpoint_s(model, expected):
    with open(os.path.join(FIXTURE, "tokenizer_cases.json"), encoding="utf-8") as f:
        cases = json.load(f)
    tokenizer = model.preprocessor.tokenizer
    np.testing.assert_array_equal(tokenizer(cases["captions"][:50]), np.array(cases["input_ids"][:50]))
    converter = model.preprocessor.image_converter
    assert converter.resize == "crop" and converter.image_size == 32
    with open(os.path.join(FIXTURE, "preprocessor_config.json")) as f:
        np.testing.assert_allclose(converter.mean, json.load(f)["image_mean"])


def test_raw_jpeg_through_the_preprocessor_matches_the_reference(model, expected, unit, raw_bytes):
    images = model.preprocessor({"image_bytes": raw_bytes})["images"]
    cosine = (model.image_model(images).numpy() * unit(expected["raw_image_embeds"])).sum(-1)
    assert cosine[0] >= 0.99, cosine


def test_raw_transparent_png_matches_the_reference(model, expected, unit, raw_bytes):
    images = model.preprocessor({"image_bytes": raw_bytes})["images"]
    cosine = (model.image_model(images).numpy() * unit(expected["raw_image_embeds"])).sum(-1)
    assert cosine[1] >= 0.99, cosine


def test_keras_file_round_trip(model, expected, round_trip):
    batch = {"images": expected["pixel_values"].transpose(0, 2, 3, 1), "token_ids": expected["input_ids"][:2].astype("int32")}
    loaded = round_trip(model, batch, TEXTS)
    assert float(loaded.logit_scale()["logit_scale"]) == float(model.logit_scale()["logit_scale"])


def test_export_takes_raw_bytes_and_strings(model, exported):
    exported(model, TEXTS)


def test_mixed_bfloat16_import(expected, unit):
    clip = load_hf_clip(FIXTURE, dtype="mixed_bfloat16")
    texts = clip.text_model(expected["input_ids"].astype("int32")).numpy()
    assert (texts * unit(expected["text_embeds"])).sum(-1).min() > 0.98


# --- errors -------------------------------------------------------------------


def test_pickle_checkpoints_are_refused_with_how_to_convert(check_pickle_refused):
    check_pickle_refused(load_hf_clip, FIXTURE, r"pytorch_model\.bin is a pickle checkpoint.*save_file.*safe_serialization")


def test_a_missing_tensor_and_a_wrong_shape_name_the_file_the_tensor_and_both_shapes(check_tensor_errors):
    missing, projection = "text_model.encoder.layers.1.mlp.fc2.weight", ("visual_projection.weight", 8)
    check_tensor_errors(load_hf_clip, FIXTURE, missing, projection, r"\(16, 8\), the model needs \(16, 32\)")


def test_other_architectures_and_missing_files(checkpoint_copy, check_folder_errors):
    siglip = {"architectures": ["SiglipModel"], "model_type": "siglip"}
    message = r"config\.json: architectures=\['SiglipModel'\].*not a CLIP checkpoint"
    check_folder_errors(load_hf_clip, checkpoint_copy(FIXTURE), siglip, message)
    folder = checkpoint_copy(FIXTURE)
    os.remove(folder / "merges.txt")
    os.remove(folder / "tokenizer.json") if (folder / "tokenizer.json").exists() else None
    with pytest.raises(ValueError, match="no tokenizer"):
        load_hf_clip(folder)


def test_legacy_eos_token_id_and_tokenizer_json(checkpoint_copy, expected, unit):
    folder = checkpoint_copy(FIXTURE)
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
    assert np.abs(texts - unit(expected["text_embeds"])).max() < 1e-4
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


def test_eos_token_id_outside_the_vocabulary_is_named(checkpoint_copy):
    folder = checkpoint_copy(FIXTURE)
    config = json.loads((folder / "config.json").read_text())
    config["text_config"]["eos_token_id"] = 49407
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"config\.json: text_config\.eos_token_id 49407 is not below vocab_size"):
        load_hf_clip(folder)
