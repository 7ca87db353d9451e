import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from mmkeras.encoders.keras_hub_encoder import KerasHubEncoder
from mmkeras.models import dual_encoder
from mmkeras.preprocessing.multimodal_preprocessor import MultimodalPreprocessor
from mmkeras.preprocessing.wordpiece_tokenizer import WordPieceTokenizer
from mmkeras.pretrained.hf_bert import load_hf_bert
from mmkeras.pretrained.hf_vit import load_hf_vit

PRETRAINED = os.path.join(os.path.dirname(__file__), "..", "fixtures", "pretrained")
FIXTURE = os.path.join(PRETRAINED, "hf_bert")
PHOTOS = os.path.join(PRETRAINED, "hf_vit")  # the dual encoder's raw photos
TEXTS = ["a photo of a dog", "Two CATS, sleeping!", ""]


@pytest.fixture(scope="module")
def imported():
    return {pooling: load_hf_bert(FIXTURE, pooling=pooling) for pooling in ("cls", "pooler")}


@pytest.fixture(scope="module")
def cases():
    with open(os.path.join(FIXTURE, "tokenizer_cases.json"), encoding="utf-8") as f:
        return json.load(f)


@pytest.mark.parametrize("pooling", ["cls", "pooler"])
def test_outputs_equal_the_reference(imported, expected, pooling):
    tower, _ = imported[pooling]
    assert isinstance(tower, KerasHubEncoder) and tower.output_dim == 32
    assert not expected["token_type_ids"].any()  # one text: token types 0, as the tower feeds
    out = tower(expected["input_ids"].astype("int32"))
    np.testing.assert_array_equal(out["padding_mask"], expected["attention_mask"].astype(bool))
    assert np.abs(out["sequence"].numpy() - expected["last_hidden_state"]).max() < 1e-4
    reference = expected["pooler_output"] if pooling == "pooler" else expected["last_hidden_state"][:, 0]
    assert np.abs(out["pooled"].numpy() - reference).max() < 1e-4


def test_tokenizer_gives_the_reference_ids_on_every_caption(imported, cases):
    _, tokenizer = imported["cls"]
    assert isinstance(tokenizer, WordPieceTokenizer) and tokenizer.sequence_length == cases["max_length"] == 32
    np.testing.assert_array_equal(tokenizer(cases["captions"]), np.array(cases["input_ids"]))


def test_tokenizer_matches_the_tokenizers_library_on_random_texts(imported):
    # Where the Rust `tokenizers` package is installed: 2,000 random texts of control characters, Unicode
    # whitespace, accents, sigma, dotted I, CJK, emoji, punctuation and words over 100 characters.
    tokenizers = pytest.importorskip("tokenizers.implementations")
    reference = tokenizers.BertWordPieceTokenizer(os.path.join(FIXTURE, "vocab.txt"), lowercase=True)
    reference.enable_truncation(32)
    reference.enable_padding(length=32, pad_id=0)
    rng = np.random.default_rng(0)
    alphabet = list(
        "abcxyzABCXYZΣσςİıßẞéÉ\u0300\u0301 \t\n\r\x0b\x0c\x85\u2028\u2029\u200b\u200d\ufeff\x00\x01\x7f\ufffd"
        ".,!?'\"-_()@#$%^&*+=<>/\\|~`;:0123456789一猫東京한국😀👍🏿\u3000\u00a0\u2009ǅ\u0345\U000E0001\ue000"
    ) + ["a" * 101, "b" * 100, "é" * 60]
    texts = ["".join(rng.choice(alphabet, size=rng.integers(0, 40))) for _ in range(2000)]
    expected = np.array([encoding.ids for encoding in reference.encode_batch(texts)])
    _, tokenizer = imported["cls"]
    np.testing.assert_array_equal(tokenizer(texts), expected)


def test_tokenizer_edges(imported):
    _, tokenizer = imported["cls"]
    assert tokenizer("a dog").shape == (32,)
    np.testing.assert_array_equal(tokenizer(tf.constant([["a dog"]])), tokenizer(["a dog"]))
    huge = tokenizer(["dog " * 2_000_000]).numpy()  # cut to max_text_bytes, then to the first 30 words
    assert huge[0, 0] == tokenizer.start_id and huge[0, -1] == tokenizer.end_id
    long_word = tokenizer(["a" * 101, "a" * 100]).numpy()
    assert long_word[0, 1] == tokenizer.unknown_id and long_word[1, 1] != tokenizer.unknown_id
    dataset = tf.data.Dataset.from_tensor_slices(TEXTS).batch(3).map(tokenizer)
    np.testing.assert_array_equal(next(iter(dataset)), tokenizer(TEXTS))
    restored = WordPieceTokenizer.from_config(tokenizer.get_config())
    np.testing.assert_array_equal(restored(TEXTS), tokenizer(TEXTS))
    with pytest.raises(ValueError, match="shape"):
        tokenizer(tf.constant([["a", "b"]]))


def test_tokenizer_arguments_are_checked():
    with pytest.raises(ValueError, match="pad_token"):
        WordPieceTokenizer(["[UNK]", "[CLS]", "[SEP]"])
    with pytest.raises(ValueError, match="twice"):
        WordPieceTokenizer(["a", "a"])
    with pytest.raises(ValueError, match="sequence_length"):
        WordPieceTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]"], sequence_length=1)
    with pytest.raises(ValueError, match="not found"):
        WordPieceTokenizer.from_file("no_vocab.txt")


def test_sequence_length(expected):
    tower, tokenizer = load_hf_bert(FIXTURE, sequence_length=8)
    assert tokenizer.sequence_length == 8
    ids = tokenizer(["a photo of a dog on the grass near a tree"]).numpy()
    assert ids.shape == (1, 8) and ids[0, -1] == tokenizer.end_id
    with pytest.raises(ValueError, match="max_position_embeddings=32"):
        load_hf_bert(FIXTURE, sequence_length=33)


# --- a dual encoder of the two imported towers --------------------------------


@pytest.fixture(scope="module")
def model(imported):
    vit, converter = load_hf_vit(os.path.join(PRETRAINED, "hf_vit"))
    bert, tokenizer = imported["cls"]
    return dual_encoder(
        image_encoder=vit, text_encoder=bert, embed_dim=16, preprocessor=MultimodalPreprocessor(tokenizer, converter)
    )


def test_dual_encoder_keras_round_trip(model, round_trip, raw_bytes):
    inputs = model.preprocessor({"image_bytes": raw_bytes, "text": tf.constant(TEXTS)})
    assert inputs["token_ids"].shape == (3, 32) and inputs["images"].shape == (2, 32, 32, 3)
    batch = {"images": inputs["images"], "token_ids": inputs["token_ids"][:2]}
    loaded = round_trip(model, batch, TEXTS)
    np.testing.assert_array_equal(loaded.preprocessor.tokenizer(TEXTS), inputs["token_ids"])


def test_dual_encoder_export_takes_raw_bytes_and_strings(model, exported, tmp_path):
    _, texts, _ = exported(model, TEXTS)  # strings and raw images give the model's embeddings
    # Plain TensorFlow and tensorflow_text load it, without mmkeras.
    script = (
        "import sys, numpy as np, tensorflow as tf, tensorflow_text\n"
        "serving = tf.saved_model.load(sys.argv[1])\n"
        "out = serving.signatures['embed_text'](text=tf.constant(sys.argv[3:]))['embeddings'].numpy()\n"
        "np.save(sys.argv[2], out)\n"
        "assert 'mmkeras' not in sys.modules\n"
    )
    result = str(tmp_path / "texts.npy")
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "export"), result, *TEXTS], check=True, timeout=300)
    np.testing.assert_allclose(np.load(result), texts, atol=1e-6)


def test_dual_encoder_fine_tunes(model, expected):
    assert "pooled_dense" not in {v.path.split("/")[0] for v in model.text_encoder.trainable_variables}
    before = [v.numpy().copy() for v in model.text_encoder.trainable_variables]
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    inputs = {"images": np.tile(expected_pixels(), (2, 1, 1, 1)), "token_ids": expected["input_ids"][:2].astype("int32")}
    inputs["token_ids"] = np.concatenate([inputs["token_ids"]] * 2)
    history = model.fit(inputs, epochs=1, batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    after = model.text_encoder.trainable_variables
    # An attention key bias adds the same q·b to every logit of a query, which the softmax ignores: its
    # gradient is zero but for float noise, so whether it moves depends on rounding (it did not, in one run).
    moved = {v.path: not np.array_equal(a, v.numpy()) for a, v in zip(before, after)}
    assert all(changed for path, changed in moved.items() if not path.endswith("key/bias"))
    assert sum(moved.values()) >= len(moved) - 2  # two layers' key biases at most


def expected_pixels():
    return np.load(os.path.join(PRETRAINED, "hf_vit", "expected.npz"))["pixel_values"].transpose(0, 2, 3, 1)


# --- errors -------------------------------------------------------------------


def test_bert_prefixed_names_and_tokenizer_json(expected, checkpoint_copy, rewrite_tensors):
    folder = checkpoint_copy(FIXTURE)
    rewrite_tensors(folder, lambda t: t.update({f"bert.{k}": t.pop(k) for k in list(t)}))
    vocabulary = (folder / "vocab.txt").read_text(encoding="utf-8").split("\n")[:-1]
    model = {"type": "WordPiece", "vocab": {token: i for i, token in enumerate(vocabulary)}}
    (folder / "tokenizer.json").write_text(json.dumps({"model": model}))
    os.remove(folder / "vocab.txt")
    tower, tokenizer = load_hf_bert(folder, pooling="pooler")
    out = tower(expected["input_ids"].astype("int32"))
    assert np.abs(out["pooled"].numpy() - expected["pooler_output"]).max() < 1e-4
    np.testing.assert_array_equal(tokenizer(TEXTS), load_hf_bert(FIXTURE)[1](TEXTS))


def test_pickle_checkpoints_are_refused_with_how_to_convert(check_pickle_refused):
    check_pickle_refused(load_hf_bert, FIXTURE, r"pytorch_model\.bin is a pickle checkpoint.*save_file", file_too=False)


def test_missing_and_misshapen_tensors_are_named(check_tensor_errors):
    missing, words = "encoder.layer.0.attention.self.value.bias", "embeddings.word_embeddings.weight"
    check_tensor_errors(load_hf_bert, FIXTURE, missing, (words, 16), r"\(318, 16\).*\(318, 32\)")


def test_other_architectures_and_missing_files(checkpoint_copy, check_folder_errors, check_refused_fields):
    roberta = r"config\.json: architectures=\['BertModel'\] model_type='roberta'.*not a 'bert'"
    check_folder_errors(load_hf_bert, checkpoint_copy(FIXTURE), {"model_type": "roberta"}, roberta)
    folder = checkpoint_copy(FIXTURE)
    swish = r"config\.json: hidden_act 'swish' is not supported"
    check_refused_fields(load_hf_bert, folder / "config.json", swish, hidden_act="swish")
    os.remove(folder / "vocab.txt")
    with pytest.raises(ValueError, match="no tokenizer: vocab.txt"):
        load_hf_bert(folder)
