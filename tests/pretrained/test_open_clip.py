import json
import os
import re

import numpy as np
import pytest
import tensorflow as tf

from mmkeras.models.dual_encoder import DualEncoder
from mmkeras.pretrained import load_open_clip

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "fixtures", "pretrained", "open_clip")
CHECKPOINT = "open_clip_model.safetensors"
# The fixture's three captions (tests/fixtures/make_pretrained_fixtures.py), then texts open_clip cleans.
CAPTIONS = [
    "a photo of a cat",
    "A Dog runs on the beach, at sunset!",
    "an extremely long caption about two small brown dogs playing with a red ball "
    "in the green park near the old river while children watch them",
]
TEXTS = ["a photo of a dog", "Two CATS, ﬁne “quotes” &amp; ＡＢＣ!", ""]


@pytest.fixture(scope="module")
def model():
    return load_open_clip(FIXTURE)


@pytest.mark.parametrize("pooled_only", [True, False])
def test_embeddings_equal_the_reference(expected, pooled_only, model, check_embeddings):
    clip = model if pooled_only else load_open_clip(FIXTURE, pooled_only=False)
    assert isinstance(clip, DualEncoder) and clip.name == "open_clip"
    check_embeddings(clip, expected, "encode_image", "encode_text")


def test_the_towers_are_the_checkpoint_s(model):
    image, text = model.image_encoder.get_config(), model.text_encoder.get_config()
    assert (image["image_size"], image["patch_size"], image["hidden_dim"], image["num_heads"]) == (32, 8, 32, 4)
    assert image["activation"] == text["activation"] == "gelu_exact"  # quick_gelu false: exact GELU
    assert text["causal"] and text["pooling"] == "last" and text["sequence_length"] == 16
    assert text["end_token_id"] == 1213 == model.preprocessor.tokenizer.end_id  # the largest id: argmax pooling


def test_quick_gelu_from_model_cfg(checkpoint_copy):
    folder = checkpoint_copy(FIXTURE)
    config = json.loads((folder / "open_clip_config.json").read_text())
    config["model_cfg"]["quick_gelu"] = True
    (folder / "open_clip_config.json").write_text(json.dumps(config))
    clip = load_open_clip(folder, name="quick")
    assert clip.image_encoder.get_config()["activation"] == clip.text_encoder.get_config()["activation"] == "quick_gelu"


def test_the_preprocessor_is_the_checkpoint_s(model, expected):
    tokenizer = model.preprocessor.tokenizer
    np.testing.assert_array_equal(tokenizer(CAPTIONS), expected["input_ids"])  # pads with 0, eot kept when cut
    assert tokenizer.cleaning == "open_clip" and tokenizer.pad_id == 0
    converter = model.preprocessor.image_converter
    assert converter.resize == "crop" and converter.image_size == 32
    with open(os.path.join(FIXTURE, "open_clip_config.json")) as f:
        preprocess_cfg = json.load(f)["preprocess_cfg"]
    np.testing.assert_allclose(converter.mean, preprocess_cfg["mean"])
    np.testing.assert_allclose(converter.std, preprocess_cfg["std"])


def test_raw_images_through_the_preprocessor_match_the_reference(model, expected, unit, raw_bytes):
    # open_clip drops the PNG's alpha (convert("RGB")), as ImagePreprocessor does: both images match.
    images = model.preprocessor({"image_bytes": raw_bytes})["images"]
    cosine = (model.image_model(images).numpy() * unit(expected["raw_image_embeds"])).sum(-1)
    assert cosine.min() >= 0.99, cosine


def test_keras_file_round_trip(model, expected, round_trip):
    batch = {"images": expected["pixel_values"].transpose(0, 2, 3, 1), "token_ids": expected["input_ids"][:2].astype("int32")}
    loaded = round_trip(model, batch, TEXTS)
    assert loaded.preprocessor.tokenizer.cleaning == "open_clip"
    assert float(loaded.logit_scale()["logit_scale"]) == float(model.logit_scale()["logit_scale"])


def test_export_takes_raw_bytes_and_strings(model, exported):
    serving, _, inputs = exported(model, TEXTS)  # strings and raw images give the model's embeddings
    expected_texts = model.text_model(inputs["token_ids"]).numpy()
    as_bytes = serving.signatures["embed_text"](text=tf.constant([t.encode("utf-8") for t in TEXTS]))["embeddings"]
    np.testing.assert_allclose(as_bytes.numpy(), expected_texts, atol=1e-5)


def test_mixed_bfloat16_import(expected, unit):
    clip = load_open_clip(FIXTURE, dtype="mixed_bfloat16")
    texts = clip.text_model(expected["input_ids"].astype("int32")).numpy()
    assert (texts * unit(expected["encode_text"])).sum(-1).min() > 0.98


# --- errors -------------------------------------------------------------------


def _set_config(folder, change):
    config = json.loads((folder / "open_clip_config.json").read_text())
    change(config)
    (folder / "open_clip_config.json").write_text(json.dumps(config))


def test_missing_files_are_named(tmp_path, checkpoint_copy):
    with pytest.raises(ValueError, match="not found"):
        load_open_clip(tmp_path / "nowhere")
    folder = checkpoint_copy(FIXTURE)
    os.remove(folder / "bpe_simple_vocab.txt.gz")
    with pytest.raises(ValueError, match=r"has no BPE file \(bpe_simple_vocab\*\.txt\.gz\): put open_clip's bpe_simple_vocab_16e6\.txt\.gz there"):
        load_open_clip(folder)
    os.remove(folder / "open_clip_config.json")
    with pytest.raises(ValueError, match=r"open_clip_config\.json is missing"):
        load_open_clip(folder)
    folder = checkpoint_copy(FIXTURE)
    os.remove(folder / CHECKPOINT)
    with pytest.raises(ValueError, match=rf"{CHECKPOINT} is missing \(the model's state dict\)"):
        load_open_clip(folder)


@pytest.mark.parametrize("name", ["open_clip_pytorch_model.bin", "model.pt"])
def test_pickle_checkpoints_are_refused_with_how_to_convert(checkpoint_copy, name):
    folder = checkpoint_copy(FIXTURE)
    os.remove(folder / CHECKPOINT)
    (folder / name).write_bytes(b"pickle")
    for source in (folder, folder / name):
        with pytest.raises(ValueError, match=re.escape(name) + " is a pickle checkpoint.*save_file"):
            load_open_clip(source)


def test_a_missing_tensor_and_a_wrong_shape_name_the_file_the_tensor_and_both_shapes(check_tensor_errors):
    missing = "transformer.resblocks.1.attn.in_proj_weight"
    check_tensor_errors(load_open_clip, FIXTURE, missing, ("visual.proj", 8), r"\(32, 8\), the model needs \(32, 16\)", CHECKPOINT)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda c: c["model_cfg"]["vision_cfg"].update(layers=[3, 4, 6, 3]), r"vision_cfg\.layers is \[3, 4, 6, 3\] \(a ResNet"),
        (lambda c: c["model_cfg"]["vision_cfg"].update(timm_model_name="vit_base"), r"vision_cfg\.timm_model_name is 'vit_base'"),
        (lambda c: c["model_cfg"]["text_cfg"].update(hf_model_name="bert"), r"text_cfg\.hf_model_name is 'bert'"),
        (lambda c: c["model_cfg"]["vision_cfg"].update(ls_init_value=0.1), r"vision_cfg\.ls_init_value is 0\.1"),
        (lambda c: c["model_cfg"].update(custom_text=True), r"model_cfg\.custom_text is True"),
        (lambda c: c["model_cfg"]["vision_cfg"].update(head_width=7), r"vision_cfg\.width 32 is not a multiple of head_width 7"),
        (lambda c: c["model_cfg"]["text_cfg"].update(vocab_size=1000), r"text_cfg\.vocab_size is 1000, but .*bpe_simple_vocab\.txt\.gz gives 1214 token ids"),
        (lambda c: c["preprocess_cfg"].update(resize_mode="fit"), r"preprocess_cfg\.resize_mode 'fit' is not supported"),
        (lambda c: c["preprocess_cfg"].update(size=224), r"preprocess_cfg\.size 224 is not the image tower's image_size 32"),
        (lambda c: c.pop("model_cfg"), r"'model_cfg' is missing"),
    ],
)
def test_configs_this_importer_cannot_build_name_the_field(checkpoint_copy, change, message):
    folder = checkpoint_copy(FIXTURE)
    _set_config(folder, change)
    with pytest.raises(ValueError, match=r"open_clip_config\.json: .*" + message):
        load_open_clip(folder)
