import json
import os

import numpy as np
import pytest
import tensorflow as tf

from mmkeras.models.dual_encoder import DualEncoder
from mmkeras.pretrained import load_hf_siglip
from mmkeras.pretrained.load_checkpoint import load_checkpoint
from mmkeras.preprocessing import SentencePieceTokenizer

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "fixtures", "pretrained", "hf_siglip")
TEXTS = ["a photo of a dog", "Two CATS, sleeping!", ""]


@pytest.fixture(scope="module")
def model():
    return load_hf_siglip(FIXTURE)


def test_embeddings_logit_scale_and_bias_equal_the_reference(model, expected, check_embeddings):
    assert isinstance(model, DualEncoder) and model.loss_name == "siglip"
    check_embeddings(model, expected, "image_embeds", "text_embeds")
    np.testing.assert_allclose(float(model.logit_scale()["logit_bias"]), expected["logit_bias"], rtol=1e-6)


def test_the_preprocessor_is_the_checkpoint_s(model):
    with open(os.path.join(FIXTURE, "tokenizer_cases.json"), encoding="utf-8") as f:
        cases = json.load(f)
    tokenizer = model.preprocessor.tokenizer
    assert isinstance(tokenizer, SentencePieceTokenizer) and tokenizer.sequence_length == cases["max_length"]
    np.testing.assert_array_equal(tokenizer(cases["captions"]), np.array(cases["input_ids"]))
    converter = model.preprocessor.image_converter
    assert converter.resize == "stretch" and converter.image_size == 32 and converter.transparency == "white"
    with open(os.path.join(FIXTURE, "preprocessor_config.json")) as f:
        np.testing.assert_allclose(converter.std, json.load(f)["image_std"])


def test_raw_images_through_the_preprocessor_match_the_reference(model, expected, unit, raw_bytes):
    images = model.preprocessor({"image_bytes": raw_bytes})["images"]  # a JPEG and a transparent PNG
    cosine = (model.image_model(images).numpy() * unit(expected["raw_image_embeds"])).sum(-1)
    assert cosine.min() >= 0.99, cosine


def test_keras_file_round_trip(model, expected, round_trip):
    batch = {"images": expected["pixel_values"].transpose(0, 2, 3, 1), "token_ids": expected["input_ids"][:2].astype("int32")}
    loaded = round_trip(model, batch, TEXTS)
    for key, value in model.logit_scale().items():
        assert float(loaded.logit_scale()[key]) == float(value)


def test_export_takes_raw_bytes_and_strings(model, exported):
    serving, texts, _ = exported(model, TEXTS)  # strings and raw images give the model's embeddings
    text_bytes = serving.signatures["embed_text"](text=tf.constant([t.encode() for t in TEXTS]))["embeddings"].numpy()
    np.testing.assert_array_equal(text_bytes, texts)


def test_load_checkpoint_dispatches_hf_siglip(expected, unit):
    model = load_checkpoint(f"hf:{FIXTURE}", name="from_source")
    assert isinstance(model, DualEncoder) and model.name == "from_source"
    texts = model.text_model(expected["input_ids"].astype("int32")).numpy()
    assert np.abs(texts - unit(expected["text_embeds"])).max() < 1e-4


# --- errors -------------------------------------------------------------------


def test_pickle_checkpoints_are_refused_with_how_to_convert(check_pickle_refused):
    check_pickle_refused(load_hf_siglip, FIXTURE, r"pytorch_model\.bin is a pickle checkpoint.*save_file.*safe_serialization")


def test_missing_and_misshapen_tensors_are_named(check_tensor_errors):
    missing, head = "vision_model.head.attention.in_proj_weight", "text_model.head.weight"
    check_tensor_errors(load_hf_siglip, FIXTURE, missing, (head, 8), r"\(32, 8\).*shape \(32, 32\)")


def test_missing_files_and_other_architectures(checkpoint_copy, check_folder_errors):
    folder = checkpoint_copy(FIXTURE)
    os.remove(folder / "spiece.model")
    with pytest.raises(ValueError, match=r"spiece\.model is missing"):
        load_hf_siglip(folder)
    clip = {"architectures": ["CLIPModel"], "model_type": "clip"}
    message = r"config\.json: .*model_type='clip' is not a 'siglip' checkpoint"
    check_folder_errors(load_hf_siglip, folder, clip, message)


@pytest.mark.parametrize(
    ("section", "field", "value", "message"),
    [
        ("vision_config", "hidden_act", "quick_gelu", r"vision_config\.hidden_act 'quick_gelu' is not supported"),
        ("vision_config", "vision_use_head", False, r"vision_config\.vision_use_head is false"),
        ("vision_config", "layer_norm_eps", 1e-5, r"vision_config\.layer_norm_eps 1e-05 is not supported"),
        ("text_config", "num_attention_heads", 5, r"text_config\.hidden_size 32 is not a multiple"),
        ("text_config", "vocab_size", "500", r"text_config\.vocab_size must be a positive int"),
    ],
)
def test_unsupported_config_fields_are_named(checkpoint_copy, section, field, value, message):
    folder = checkpoint_copy(FIXTURE)
    config = json.loads((folder / "config.json").read_text())
    config[section][field] = value
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"config\.json: " + message):
        load_hf_siglip(folder)


def test_a_preprocessor_size_other_than_the_tower_s_is_named(checkpoint_copy, check_refused_fields):
    settings, message = checkpoint_copy(FIXTURE) / "preprocessor_config.json", r"preprocessor_config\.json: size .* image_size 32"
    check_refused_fields(load_hf_siglip, settings, message, size={"height": 48, "width": 48})


def test_mixed_bfloat16_import(expected, unit):
    siglip = load_hf_siglip(FIXTURE, dtype="mixed_bfloat16")
    texts = siglip.text_model(expected["input_ids"].astype("int32")).numpy()
    images = siglip.image_model(expected["pixel_values"].transpose(0, 2, 3, 1)).numpy()
    assert (texts * unit(expected["text_embeds"])).sum(-1).min() > 0.98
    assert (images * unit(expected["image_embeds"])).sum(-1).min() > 0.98


FINE_TUNE = """
from mmkeras.testing.distributed import split_cpu, print_results
split_cpu(2)
import numpy as np, tensorflow as tf, keras
from mmkeras.pretrained import load_hf_siglip
fixture = {fixture!r}
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    model = load_hf_siglip(fixture)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
# Raw image bytes and strings through the model's own preprocessing, as a fine-tuning pipeline feeds them.
photos = [open(f"{{fixture}}/raw/{{name}}", "rb").read() for name in ("0.jpg", "1.png")]
captions = ["a red dog on the grass", "Two cats!", "a blue car", "waves at the beach"]
data = model.preprocessor({{"image_bytes": tf.constant(photos * 2), "text": tf.constant(captions)}})
start = model.image_model(data["images"]).numpy()
loss = model.fit(tf.data.Dataset.from_tensors(data).repeat(3), epochs=1, verbose=0).history["loss"][-1]
variables = model.trainable_variables
print_results(dict(
    replicas=strategy.num_replicas_in_sync,
    in_scope=all(strategy.extended.variable_created_in_scope(v.value) for v in variables),
    loss=float(loss),
    moved=float(np.abs(model.image_model(data["images"]).numpy() - start).max()),
))
"""


def test_fine_tunes_from_raw_inputs_under_mirrored_strategy_on_two_cpus():
    from mmkeras.testing.distributed import run_python

    results = run_python(["-c", FINE_TUNE.format(fixture=os.path.abspath(FIXTURE))], timeout=300)
    assert results["replicas"] == 2 and results["in_scope"]
    assert np.isfinite(results["loss"]) and results["moved"] > 1e-4
