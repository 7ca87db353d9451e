import base64
import os

import numpy as np
import pytest
import tensorflow as tf

from mmkeras.preprocessing import MultimodalPreprocessor
from mmkeras.preprocessing import SentencePieceTokenizer

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "fixtures", "pretrained", "hf_siglip")
MODEL = os.path.join(FIXTURE, "spiece.model")
TEXTS = ["A Photo of 2 cats!", "", "东京 café 👍", "a\x00b"]


@pytest.fixture(scope="module")
def tokenizer(cases):
    return SentencePieceTokenizer.from_file(MODEL, sequence_length=cases["max_length"])


def test_ids_equal_the_reference_tokenizer_on_every_case(tokenizer, cases, check_reference_ids):
    check_reference_ids(tokenizer, cases)


def test_end_token_truncation_and_padding(tokenizer):
    end, pad, length = tokenizer.end_id, tokenizer.pad_id, tokenizer.sequence_length
    assert (end, pad, tokenizer.unknown_id, tokenizer.vocabulary_size()) == (1, 1, 2, 500)
    empty, punctuation, long = tokenizer(["", " ?! ", "a dog " * 40]).numpy()
    assert empty.tolist() == punctuation.tolist() == [end] * length  # nothing left: </s>, then </s> padding
    assert long[-1] == end and end not in long[:-1].tolist()  # cut to length - 1 pieces, </s> kept
    np.testing.assert_array_equal(tokenizer("A DOG."), tokenizer(["a dog"])[0])  # a scalar gives one row
    assert tokenizer(tf.constant([["a dog"]])).shape == (1, length)


def test_nul_reads_as_an_unknown_piece_as_in_the_reference(tokenizer):
    # sentencepiece: encode("<unk>▁" + text)[6:] gives these for "a\x00b" and "\x00 a".
    nul_inside, nul_first = tokenizer(["a\x00b", "\x00 a"]).numpy()
    assert nul_inside[:4].tolist() == [6, 2, 35, 1] and nul_first[:4].tolist() == [3, 2, 6, 1]


def test_python_lower_case_and_whitespace_as_in_the_reference(tokenizer):
    # The reference's ids (sentencepiece on the canonical text): `İ` lower-cases to `i` and U+0307 (an unknown
    # piece); `▁`, U+3000 and U+001F are whitespace; the digits keep the reference's segmentation.
    cases = {
        "İSTANBUL at NIGHT": [3, 498, 2, 4, 10, 95, 35, 284, 17, 66],
        "a▁dog\u3000\x1fruns": [6, 117, 132],
        "A dog's 12/31/1999": [6, 256, 218, 265, 273, 269, 269, 330, 289],
    }
    for text, row in zip(cases, tokenizer(list(cases)).numpy().tolist()):
        assert row == cases[text] + [1] * (16 - len(cases[text])), text


def test_without_canonicalization_the_text_is_encoded_as_written(tokenizer):
    plain = SentencePieceTokenizer.from_config({**tokenizer.get_config(), "canonicalize": False, "lowercase": False})
    with_punctuation, cased = plain(["a dog.", "A dog"]).numpy()
    assert with_punctuation.tolist() != tokenizer(["a dog."]).numpy()[0].tolist()
    assert cased.tolist() != tokenizer(["A dog"]).numpy()[0].tolist()
    no_end = SentencePieceTokenizer.from_config({**tokenizer.get_config(), "end_token": None})
    assert no_end(["a"]).numpy()[0].tolist() == [6] + [1] * 15


def test_config_and_keras_file_round_trip(tokenizer, check_round_trip):
    config = check_round_trip(tokenizer, TEXTS)
    with open(MODEL, "rb") as f:
        assert base64.b64decode(config["config"]["proto"]) == f.read()  # self-contained: no asset files


def test_in_tf_data_tf_function_and_the_multimodal_preprocessor(tokenizer, check_in_graphs):
    expected = check_in_graphs(tokenizer, TEXTS)
    preprocessor = MultimodalPreprocessor(tokenizer)
    np.testing.assert_array_equal(preprocessor({"text": tf.constant(TEXTS)})["token_ids"], expected)


def test_huge_text_costs_little(tokenizer, check_huge_text):
    check_huge_text(tokenizer)


def test_bad_arguments(tmp_path):
    with open(MODEL, "rb") as f:
        proto = f.read()
    with pytest.raises(ValueError, match="pad_token.*not a piece"):
        SentencePieceTokenizer(proto, pad_token="[PAD]")
    with pytest.raises(ValueError, match="sequence_length"):
        SentencePieceTokenizer(proto, sequence_length=1)
    with pytest.raises(ValueError, match="max_text_bytes"):
        SentencePieceTokenizer(proto, max_text_bytes=2)
    with pytest.raises(ValueError, match="not base64.*from_file"):
        SentencePieceTokenizer(MODEL)
    with pytest.raises(ValueError, match="not a valid SentencePiece model"):
        SentencePieceTokenizer(b"not a model")
    with pytest.raises(ValueError, match="not found: .*nothing.model"):
        SentencePieceTokenizer.from_file(tmp_path / "nothing.model")
    (tmp_path / "broken.model").write_bytes(b"\x00\x01")
    with pytest.raises(ValueError, match=r"broken\.model: `proto` is not a valid SentencePiece model"):
        SentencePieceTokenizer.from_file(tmp_path / "broken.model")


def test_exported_tokenizer_loads_without_mmkeras(tokenizer, check_export):
    check_export(tokenizer, TEXTS)
