import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from mmkeras.preprocessing import SubwordTokenizer
from mmkeras.testing.layer_checks import run_layer_checks

CORPUS = [
    "a red circle is left of a blue square",
    "the green triangle is above the small red circle",
    "two blue squares and one yellow triangle",
    "a large purple circle below a tiny green square",
    "the yellow square is right of the purple triangle",
    "héllo wörld 你好 😀 naïve café",
    "a red circle, a blue square.",
] * 5


@pytest.fixture(scope="module")
def tokenizer():
    return SubwordTokenizer.train(CORPUS, vocabulary_size=300, sequence_length=16)


def as_text(strings):
    return [s.decode("utf-8") for s in np.asarray(strings).tolist()]


def test_special_tokens_have_fixed_ids(tokenizer):
    vocab = tokenizer.get_vocabulary()
    assert vocab[:4] == ["[PAD]", "[UNK]", "[BOS]", "[EOS]"]
    assert (tokenizer.pad_id, tokenizer.unk_id, tokenizer.bos_id, tokenizer.eos_id) == (0, 1, 2, 3)
    assert tokenizer.vocabulary_size() == len(vocab) <= 300
    assert [tokenizer.id_to_token(i) for i in range(4)] == vocab[:4]
    assert tokenizer.token_to_id("[EOS]") == 3
    assert any(token.startswith("##") for token in vocab)


def test_round_trip_of_in_vocabulary_text(tokenizer):
    texts = [
        "The Red circle is LEFT of a blue square",
        "two yellow triangles",
        "héllo 你好 😀",
        "a purple square above the green circle",
    ]
    ids = tokenizer(tf.constant(texts))
    assert ids.dtype == tf.int32 and ids.shape == (4, 16)
    assert 1 not in ids.numpy()  # nothing unknown
    back = as_text(tokenizer.detokenize(ids))
    # Lowercased; CJK ideographs are split into single-character words.
    assert back == [t.lower() for t in texts[:2]] + ["héllo 你 好 😀", texts[3]]
    # Punctuation is split off, so it comes back as separate words.
    assert as_text(tokenizer.detokenize(tokenizer(["A red, blue."]))) == ["a red , blue ."]


def test_layout_padding_and_truncation(tokenizer):
    ids = tokenizer(tf.constant(["a red circle", "", " ".join(["red circle"] * 40)])).numpy()
    short, empty, long = ids
    n = int(np.sum(short > 3))
    assert short[0] == 2 and short[n + 1] == 3 and np.all(short[n + 2 :] == 0)
    np.testing.assert_array_equal(empty, [2, 3] + [0] * 14)
    assert long[0] == 2 and long[-1] == 3 and np.all(long[1:-1] > 3)
    assert as_text(tokenizer.detokenize(long[None]))[0].startswith("red circle red")
    no_specials = SubwordTokenizer(
        tokenizer.get_vocabulary(), sequence_length=4, add_bos=False, add_eos=False
    )
    np.testing.assert_array_equal(
        no_specials(["a red circle"]).numpy()[0][: n if n < 4 else 4], short[1 : 1 + min(n, 4)]
    )
    only_eos = SubwordTokenizer(tokenizer.get_vocabulary(), sequence_length=3, add_bos=False)
    out = only_eos([" ".join(["red"] * 10), ""]).numpy()
    assert out[0, -1] == 3 and out[0, 0] != 2
    np.testing.assert_array_equal(out[1], [3, 0, 0])


def test_scalar_column_and_python_inputs(tokenizer):
    single = tokenizer("a red circle")
    assert single.shape == (16,)
    np.testing.assert_array_equal(tokenizer([["a red circle"], ["x"]])[0], single)
    np.testing.assert_array_equal(tokenizer(np.array(["a red circle"]))[0], single)
    assert as_text([tokenizer.detokenize(single).numpy()]) == ["a red circle"]


def test_robust_to_empty_long_unicode_and_invalid_utf8(tokenizer):
    texts = [
        b"",
        b"\xff\xfe\x80 red \xc3",  # invalid UTF-8 bytes
        "red\u0000circle\u200b\tblue\n".encode(),
        "𝕳𝖊𝖑𝖑𝖔 مرحبا שלום Привет".encode(),
        ("x" * 5000 + " red").encode(),
        " ".join(["circle"] * 20000).encode(),
    ]
    ids = tokenizer(tf.constant(texts)).numpy()
    assert ids.shape == (6, 16)
    assert np.all(ids[:, 0] == 2) and np.all((ids == 3).sum(axis=1) == 1)
    back = as_text(tokenizer.detokenize(ids))
    assert back[0] == "" and back[2] == "red circle blue" and back[4] == "[UNK] red"
    assert back[1].startswith("[UNK] red")


def test_detokenize_stops_at_eos_and_drops_pad_and_bos(tokenizer):
    red, circle = tokenizer("red circle").numpy()[1:3]
    ids = np.array(
        [[2, red, circle, 3, red, 0], [red, 0, 2, circle, 0, 0], [2, 3, red, red, red, red]],
        "int32",
    )
    assert as_text(tokenizer.detokenize(ids)) == ["red circle", "red circle", ""]
    ragged = tf.ragged.constant([[2, red, 3], [circle]])
    assert as_text(tokenizer.detokenize(ragged)) == ["red", "circle"]
    assert as_text(tokenizer.detokenize(np.array([[red, 10**6, -5]]))) == ["red [UNK] [UNK]"]
    graph = tf.function(lambda x: tokenizer.detokenize(tokenizer(x)))
    assert as_text(graph(tf.constant(["A red circle"]))) == ["a red circle"]


def test_layer_checks(tmp_path, tokenizer):
    # String inputs cannot be XLA-compiled or built by the generic `.keras`
    # check; the `.keras` round trip of a model is tested below.
    run_layer_checks(
        SubwordTokenizer,
        tokenizer.get_config(),
        {"inputs": np.array([b"a red circle", b"", b"blue"], dtype=object)},
        str(tmp_path),
        expected_output_shape=(3, 16),
        check_jit=False,
        check_keras_file=False,
    )


def test_keras_model_round_trip(tmp_path, tokenizer):
    inputs = keras.Input(shape=(), dtype="string")
    token_ids = tokenizer(inputs)
    outputs = keras.layers.Embedding(tokenizer.vocabulary_size(), 4)(token_ids)
    model = keras.Model(inputs, outputs)
    path = str(tmp_path / "tok.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    text = tf.constant(["a green triangle", "héllo"])
    np.testing.assert_allclose(np.asarray(restored(text)), np.asarray(model(text)))
    restored_tokenizer = restored.layers[1]
    assert isinstance(restored_tokenizer, SubwordTokenizer)
    assert restored_tokenizer.get_vocabulary() == tokenizer.get_vocabulary()


def test_works_in_tf_data_and_trains_from_a_dataset(tokenizer):
    ds = tf.data.Dataset.from_tensor_slices(CORPUS[:5]).batch(2).map(tokenizer)
    batches = [b.numpy() for b in ds]
    np.testing.assert_array_equal(np.concatenate(batches), tokenizer(CORPUS[:5]).numpy())
    small = SubwordTokenizer.train(
        tf.data.Dataset.from_tensor_slices(["zebra zebra yak", "yak"]),
        vocabulary_size=40,
        sequence_length=16,
    )
    assert small.get_vocabulary()[:4] == ["[PAD]", "[UNK]", "[BOS]", "[EOS]"]
    assert as_text(small.detokenize(small(["Zebra yak"]))) == ["zebra yak"]


def test_bad_arguments_raise_value_errors(tokenizer):
    vocab = tokenizer.get_vocabulary()
    with pytest.raises(ValueError, match="vocabulary"):
        SubwordTokenizer(["[UNK]", "[PAD]", "[BOS]", "[EOS]", "a"])
    with pytest.raises(ValueError, match="vocabulary"):
        SubwordTokenizer(vocab + ["a"])
    with pytest.raises(ValueError, match="sequence_length"):
        SubwordTokenizer(vocab, sequence_length=2)
    with pytest.raises(ValueError, match="vocabulary_size"):
        SubwordTokenizer.train(CORPUS, vocabulary_size=3)
    with pytest.raises(ValueError, match="corpus"):
        SubwordTokenizer.train("a single string", vocabulary_size=50)
    with pytest.raises(ValueError, match="corpus"):
        SubwordTokenizer.train([], vocabulary_size=50)
    with pytest.raises(ValueError, match="corpus"):
        SubwordTokenizer.train([1, 2], vocabulary_size=50)
    with pytest.raises(ValueError, match="id"):
        tokenizer.id_to_token(len(vocab))
    with pytest.raises(ValueError, match="inputs"):
        tokenizer(tf.constant([["a", "b"]]))
    with pytest.raises(ValueError, match="max_text_bytes"):
        SubwordTokenizer(vocab, max_text_bytes=3)


def test_texts_are_cut_to_max_text_bytes_at_a_character_boundary(tokenizer):
    assert tokenizer.get_config()["max_text_bytes"] == 65536

    def cut(max_text_bytes):
        return SubwordTokenizer.from_config({**tokenizer.get_config(), "max_text_bytes": max_text_bytes})

    texts = ["a red circle", "a €€ circle", "red", "", b"red \xff\xff\xff\xff circle"]
    # "a €" is 5 bytes: 6 or 7 bytes keep it whole and never half of the next "€".
    expected = ["a red ", "a €", "red", "", b"red \xff\xff"]
    np.testing.assert_array_equal(cut(6)(texts), tokenizer(expected))
    np.testing.assert_array_equal(cut(7)(texts), tokenizer(["a red c", "a €", "red", "", b"red \xff\xff\xff"]))
    big = "two blue squares " * 20_000  # 340 KB
    np.testing.assert_array_equal(tokenizer([big, "red"]), tokenizer([big[:65536], "red"]))
    graph = tf.function(lambda t: cut(6)(t))
    np.testing.assert_array_equal(graph(tf.constant(texts)), tokenizer(expected))


def test_saved_model_parity_in_fresh_process_without_mmkeras_or_keras_hub(
    tmp_path, tokenizer, serve_in_fresh_process
):
    # 1. A plain tf.Module whose functions call the tokenizer; the tokenizer is
    #    deliberately NOT attached to the module (nothing needs tracking).
    module = tf.Module()
    module.tokenize = tf.function(
        lambda t: tokenizer(t), input_signature=[tf.TensorSpec([None], tf.string)]
    )
    module.detokenize = tf.function(
        lambda i: tokenizer.detokenize(i), input_signature=[tf.TensorSpec([None, None], tf.int32)]
    )
    module_dir = str(tmp_path / "module")
    tf.saved_model.save(module, module_dir)
    # 2. A Keras model with a string input exported with `model.export` (the
    #    keras-hub #1629 scenario).
    inputs = keras.Input(shape=(), dtype="string")
    model = keras.Model(
        inputs, keras.layers.Embedding(tokenizer.vocabulary_size(), 3)(tokenizer(inputs))
    )
    model_dir = str(tmp_path / "model")
    model.export(model_dir, format="tf_saved_model", verbose=False)

    texts = ["A red circle", "", "héllo 你好 😀", "x" * 300, "two blue squares " * 10]
    (tmp_path / "texts.json").write_text(json.dumps(texts))
    imports = ", ".join(("json", "tensorflow as tf") + SubwordTokenizer.serving_imports)
    script = (
        f"import {imports}\n"
        f"texts = tf.constant(json.load(open({str(tmp_path / 'texts.json')!r})))\n"
        f"m = tf.saved_model.load({module_dir!r})\n"
        "ids = m.tokenize(texts)\n"
        f"k = tf.saved_model.load({model_dir!r})\n"
        "print(json.dumps({'ids': ids.numpy().tolist(),\n"
        "                  'text': [t.decode() for t in m.detokenize(ids).numpy().tolist()],\n"
        "                  'embedded': k.serve(texts).numpy().tolist()}))\n"
    )
    report = serve_in_fresh_process(script, timeout=180)
    ids = tokenizer(tf.constant(texts))
    np.testing.assert_array_equal(report["ids"], ids.numpy())
    assert report["text"] == as_text(tokenizer.detokenize(ids))
    np.testing.assert_allclose(report["embedded"], np.asarray(model(tf.constant(texts))), atol=1e-6)
