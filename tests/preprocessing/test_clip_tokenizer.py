import json
import os
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from mmkeras.preprocessing import ClipTokenizer

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "fixtures", "pretrained", "hf_clip")


@pytest.fixture(scope="module")
def cases():
    with open(os.path.join(FIXTURE, "tokenizer_cases.json"), encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="module")
def tokenizer(cases):
    return ClipTokenizer.from_files(
        os.path.join(FIXTURE, "vocab.json"), os.path.join(FIXTURE, "merges.txt"), sequence_length=cases["max_length"]
    )


def test_ids_equal_the_reference_tokenizer_on_every_case(tokenizer, cases):
    assert len(cases["captions"]) >= 1000
    ids = tokenizer(cases["captions"]).numpy()
    expected = np.array(cases["input_ids"])
    wrong = [cases["captions"][i] for i in np.where((ids != expected).any(axis=1))[0]]
    assert not wrong, f"{len(wrong)} captions differ, e.g. {wrong[:3]}"
    assert ids.dtype == np.int32 and ids.shape == expected.shape


def test_special_tokens_truncation_and_padding(tokenizer):
    start, end, length = tokenizer.start_id, tokenizer.end_id, tokenizer.sequence_length
    empty, long, special = tokenizer(["", "a dog " * 40, "a <|endoftext|> b"]).numpy()
    assert empty.tolist() == [start] + [end] * (length - 1)  # the fixture pads with <|endoftext|>
    assert long[0] == start and long[-1] == end and end not in long[1:-1].tolist()  # cut, end token kept
    assert special[2] == end and special[3] != end and special[4] == end  # the written token is its id
    assert tokenizer("a dog").shape == (length,)  # a scalar gives one row
    assert tokenizer(tf.constant([["a dog"]])).shape == (1, length)


def test_pad_token_of_the_checkpoint(tokenizer):
    config = {**tokenizer.get_config(), "pad_token": "!</w>"}
    bang = ClipTokenizer.from_config(config)
    ids = bang(["a dog"]).numpy()[0]
    assert ids[-1] == bang.vocabulary["!</w>"] != tokenizer.end_id
    np.testing.assert_array_equal(ids[ids != ids[-1]], tokenizer(["a dog"]).numpy()[0][: len(ids[ids != ids[-1]])])


def test_config_and_keras_file_round_trip(tokenizer, tmp_path):
    config = json.loads(json.dumps(keras.saving.serialize_keras_object(tokenizer)))
    assert config["config"]["vocabulary"] == tokenizer.vocabulary  # self-contained: no asset files
    again = keras.saving.deserialize_keras_object(config)
    texts = ["A Photo of 2 cats!", "", "东京 café 👍"]
    np.testing.assert_array_equal(again(texts), tokenizer(texts))
    inputs = keras.Input((), dtype="string")
    model = keras.Model(inputs, tokenizer(inputs))
    model.save(tmp_path / "tokenizer.keras")
    loaded = keras.saving.load_model(tmp_path / "tokenizer.keras")
    np.testing.assert_array_equal(loaded(tf.constant(texts)), tokenizer(texts))


def test_in_tf_data_and_tf_function(tokenizer):
    texts = ["a red circle", "TWO blue squares", ""]
    expected = tokenizer(texts).numpy()
    mapped = np.concatenate(list(tf.data.Dataset.from_tensor_slices(texts).batch(2).map(tokenizer)))
    np.testing.assert_array_equal(mapped, expected)
    np.testing.assert_array_equal(tf.function(tokenizer)(tf.constant(texts)), expected)


def test_huge_text_costs_little(tokenizer):
    caption = "a small brown dog runs on the grass "
    start = time.perf_counter()
    ids = tokenizer([caption * 3000, "x" * 200_000]).numpy()
    assert time.perf_counter() - start < 30  # about 3 s: the 64 KB word is byte-pair encoded whole
    np.testing.assert_array_equal(ids[0], tokenizer([caption * 3]).numpy()[0])
    short = ClipTokenizer.from_config({**tokenizer.get_config(), "max_text_bytes": 8})
    np.testing.assert_array_equal(short([caption]), tokenizer([caption[:8]]))


def test_bad_arguments(tokenizer, tmp_path):
    vocabulary, merges = tokenizer.vocabulary, tokenizer.merges
    with pytest.raises(ValueError, match="<|startoftext|>"):
        ClipTokenizer({k: v for k, v in vocabulary.items() if k != "<|startoftext|>"}, merges)
    with pytest.raises(ValueError, match=r"merges\[1\]"):
        ClipTokenizer(vocabulary, [merges[0], "qqq zzz"])
    with pytest.raises(ValueError, match="pad_token"):
        ClipTokenizer(vocabulary, merges, pad_token="[PAD]")
    with pytest.raises(ValueError, match="sequence_length"):
        ClipTokenizer(vocabulary, merges, sequence_length=1)
    with pytest.raises(ValueError, match="max_text_bytes"):
        ClipTokenizer(vocabulary, merges, max_text_bytes=2)
    with pytest.raises(ValueError, match="not found: .*nothing.json"):
        ClipTokenizer.from_files(str(tmp_path / "nothing.json"), os.path.join(FIXTURE, "merges.txt"))


def test_exported_tokenizer_loads_without_mmkeras(tokenizer, tmp_path, serve_in_fresh_process):
    module = tf.Module()
    module.tokenize = tf.function(lambda text: tokenizer(text), input_signature=[tf.TensorSpec([None], tf.string)])
    tf.saved_model.save(module, str(tmp_path / "export"))
    texts = ["A Photo of 2 cats!", "", "<|endoftext|> x"]
    script = (
        "import tensorflow as tf, tensorflow_text\n"
        f"ids = tf.saved_model.load('export').tokenize(tf.constant({texts!r}))\n"
        "print(__import__('json').dumps(ids.numpy().tolist()))\n"
    )
    assert serve_in_fresh_process(script, timeout=120) == tokenizer(texts).numpy().tolist()


def test_nul_and_control_characters_are_symbols_as_in_the_reference(tokenizer):
    # The reference's tokens (transformers 5.25) for texts TensorFlow's regex ops would cut at the NUL.
    cases = {
        "a\x00b": ["a</w>", "Ā</w>", "b</w>"],
        "\x01\x00\x01": ["ā", "Ā", "ā</w>"],
        "!\x01\x00?": ["!", "ā", "Ā", "?</w>"],
        "\x00\x00's": ["Ā", "Ā", "'</w>", "s</w>"],
        "x\x01\x01\x01\x02y": ["x</w>", "ā", "ā", "ā", "Ă</w>", "y</w>"],
    }
    ids = tokenizer(list(cases)).numpy()
    for row, tokens in zip(ids, cases.values()):
        assert row[1 : len(tokens) + 1].tolist() == [tokenizer.vocabulary[t] for t in tokens]
        assert row[len(tokens) + 1] == tokenizer.end_id
