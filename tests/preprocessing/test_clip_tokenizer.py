import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from mmkeras.preprocessing import ClipTokenizer

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "fixtures", "pretrained", "hf_clip")


@pytest.fixture(scope="module")
def tokenizer(cases):
    return ClipTokenizer.from_files(
        os.path.join(FIXTURE, "vocab.json"), os.path.join(FIXTURE, "merges.txt"), sequence_length=cases["max_length"]
    )


def test_ids_equal_the_reference_tokenizer_on_every_case(tokenizer, cases, check_reference_ids):
    check_reference_ids(tokenizer, cases)


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


def test_config_and_keras_file_round_trip(tokenizer, check_round_trip):
    config = check_round_trip(tokenizer, ["A Photo of 2 cats!", "", "东京 café 👍"])
    assert config["config"]["vocabulary"] == tokenizer.vocabulary  # self-contained: no asset files


def test_in_tf_data_and_tf_function(tokenizer, check_in_graphs):
    check_in_graphs(tokenizer, ["a red circle", "TWO blue squares", ""])


def test_huge_text_costs_little(tokenizer, check_huge_text):
    check_huge_text(tokenizer)


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


def test_exported_tokenizer_loads_without_mmkeras(tokenizer, check_export):
    check_export(tokenizer, ["A Photo of 2 cats!", "", "<|endoftext|> x"])


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


# --- cleaning="open_clip" -----------------------------------------------------
# The ids of open_clip's SimpleTokenizer (its code from open_clip 4.2.0.dev0 run without torch, ftfy 6.3.1; it gives
# the fixture's open_clip 3.3.0 ids) on the fixture's vocabulary and merges (the same as open_clip/bpe_simple_vocab.txt.gz), context 16, padding zeros left out.
# On the other captions of tokenizer_cases.json they are the Hugging Face ids with zeros after the end token.
OPEN_CLIP_IDS_WHERE_HF_DIFFERS = {
    51: [1212, 261, 283, 648, 326, 285, 257, 1213],
    57: [1212, 665, 75, 75, 820, 67, 640, 1213],
    76: [1212, 735, 884, 69, 1049, 528, 1213],
    83: [1212, 66, 635, 75, 540, 625, 1213],
    119: [1212, 320, 66, 536, 593, 320, 815, 806, 271, 269, 276, 67, 129, 378, 1213],
    145: [1212, 268, 320, 1090, 69, 528, 536, 275, 330, 930, 568, 653, 579, 262, 1213],
    152: [1212, 568, 653, 579, 262, 320, 609, 82, 344, 1079, 875, 571, 645, 324, 67, 1213],
    210: [1212, 320, 736, 66, 625, 669, 76, 814, 962, 518, 257, 554, 903, 67, 129, 1213],
    291: [1212, 550, 68, 534, 745, 773, 533, 82, 534, 1178, 519, 569, 801, 518, 67, 1213],
    318: [1212, 518, 600, 972, 528, 257, 666, 78, 775, 257, 553, 67, 542, 320, 82, 1213],
    321: [1212, 320, 270, 736, 273, 77, 323, 811, 69, 328, 554, 70, 527, 726, 841, 1213],
    342: [1212, 320, 66, 536, 69, 328, 554, 70, 527, 726, 530, 518, 126, 360, 700, 1213],
    369: [1212, 320, 86, 574, 1181, 65, 524, 634, 525, 702, 328, 554, 70, 527, 726, 1213],
    408: [1212, 320, 1090, 69, 528, 69, 328, 554, 70, 527, 726, 841, 961, 593, 320, 1213],
    420: [1212, 518, 74, 529, 540, 576, 1097, 127, 107, 563, 83, 863, 512, 69, 328, 1213],
    428: [1212, 320, 1090, 69, 528, 257, 666, 78, 775, 257, 533, 765, 512, 694, 518, 1213],
    437: [1212, 320, 66, 536, 1056, 662, 526, 846, 518, 568, 653, 579, 262, 64, 582, 1213],
    450: [1212, 320, 1202, 344, 595, 69, 328, 554, 70, 527, 726, 82, 529, 694, 525, 1213],
    484: [1212, 320, 921, 323, 257, 666, 78, 775, 257, 530, 518, 559, 530, 1213],
    518: [1212, 320, 833, 725, 537, 573, 802, 1125, 539, 596, 322, 272, 273, 274, 320, 1213],
    527: [1212, 320, 272, 978, 526, 572, 65, 322, 272, 273, 274, 647, 536, 1213],
    536: [1212, 317, 518, 983, 325, 1056, 662, 526, 521, 70, 67, 129, 378, 320, 701, 1213],
    545: [1212, 320, 701, 544, 323, 684, 67, 129, 378, 272, 271, 271, 260, 69, 1049, 1213],
    557: [1212, 320, 66, 536, 67, 129, 378, 67, 565, 519, 518, 268, 278, 978, 127, 1213],
    566: [1212, 320, 833, 725, 537, 257, 666, 78, 775, 257, 573, 802, 283, 322, 285, 1213],
    574: [1212, 267, 518, 896, 786, 573, 989, 287, 904, 528, 568, 653, 579, 262, 978, 1213],
    594: [1212, 596, 322, 272, 273, 274, 320, 1077, 331, 593, 558, 238, 370, 82, 127, 1213],
    598: [1212, 518, 896, 786, 265, 533, 765, 512, 694, 568, 653, 579, 262, 1097, 127, 1213],
    604: [1212, 64, 596, 322, 272, 273, 274, 1202, 344, 533, 765, 512, 694, 518, 1097, 1213],
    616: [1212, 320, 1077, 331, 593, 75, 846, 560, 742, 527, 596, 322, 272, 273, 274, 1213],
    649: [1212, 518, 66, 696, 609, 338, 1056, 662, 526, 846, 320, 83, 615, 257, 666, 1213],
    657: [1212, 966, 334, 639, 70, 338, 1203, 1003, 1111, 991, 518, 568, 653, 579, 262, 1213],
    663: [1212, 257, 666, 78, 775, 257, 518, 266, 605, 65, 923, 522, 656, 536, 930, 1213],
    685: [1212, 320, 701, 544, 323, 539, 69, 1049, 612, 525, 596, 322, 272, 273, 274, 1213],
    705: [1212, 518, 689, 576, 699, 330, 536, 968, 567, 83, 69, 328, 554, 70, 527, 1213],
    732: [1212, 320, 1090, 69, 528, 67, 129, 378, 533, 522, 672, 519, 1131, 531, 320, 1213],
    734: [1212, 518, 983, 325, 748, 284, 533, 765, 512, 694, 518, 689, 524, 596, 322, 1213],
    743: [1212, 320, 271, 278, 281, 274, 271, 833, 725, 537, 573, 802, 1125, 568, 653, 1213],
    756: [1212, 320, 978, 615, 647, 536, 257, 666, 78, 775, 257, 1056, 662, 526, 846, 1213],
    760: [1212, 320, 66, 536, 268, 278, 527, 596, 322, 272, 273, 274, 968, 1167, 1213],
    817: [1212, 518, 66, 696, 609, 338, 669, 76, 814, 962, 69, 328, 554, 70, 527, 1213],
    830: [1212, 568, 653, 579, 262, 518, 983, 325, 274, 343, 678, 1213],
    838: [1212, 320, 709, 520, 335, 539, 1047, 841, 961, 67, 129, 378, 593, 265, 518, 1213],
    848: [1212, 320, 709, 520, 335, 539, 1047, 257, 666, 78, 775, 257, 67, 565, 519, 1213],
    920: [1212, 518, 896, 786, 869, 529, 82, 69, 328, 554, 70, 527, 726, 571, 1145, 1213],
    943: [1212, 568, 653, 579, 262, 263, 88, 542, 264, 966, 334, 260, 639, 70, 338, 1213],
    952: [1212, 518, 553, 667, 257, 666, 78, 775, 257, 67, 565, 653, 161, 234, 245, 1213],
    956: [1212, 320, 1090, 69, 517, 596, 322, 272, 273, 274, 82, 86, 732, 338, 530, 1213],
    969: [1212, 518, 553, 667, 568, 653, 579, 262, 530, 518, 272, 324, 272, 271, 559, 1213],
    981: [1212, 678, 320, 978, 615, 647, 527, 69, 328, 554, 70, 527, 726, 66, 554, 1213],
}
# ftfy's fixes, HTML character references (as ftfy, then html.unescape), whitespace, the final sigma, NUL and
# open_clip's special tokens.
OPEN_CLIP_CASES = {
    '&amp;amp;amp; x': [1212, 261, 343, 1213],
    '<b>&amp;amp;</b>': [1212, 283, 321, 29, 5, 27, 270, 321, 285, 1213],
    '&AMP; &QUOT;hi&QUOT;': [1212, 261, 257, 71, 328, 257, 1213],
    'AT&amp T': [1212, 536, 261, 339, 1213],
    '&#39;s &#x27;t &#34;q&#34;': [1212, 568, 713, 257, 336, 257, 1213],
    '&nbsp;a&nbsp;b': [1212, 320, 321, 1213],
    '\x85 ellipsis': [1212, 959, 544, 554, 79, 82, 533, 1213],
    '\x93quoted\x94': [1212, 257, 666, 78, 775, 257, 1213],
    'ŉ ĳ ǅ': [1212, 262, 333, 72, 329, 67, 129, 378, 1213],
    'ΟΔΟΣ ΣΟΦΟΣ': [1212, 138, 123, 138, 112, 138, 123, 139, 480, 139, 225, 138, 123, 139, 228, 1213],
    'ΑΣ, ΒΣ.': [1212, 138, 109, 139, 480, 267, 138, 110, 139, 480, 269, 1213],
    '\x1b[31mred\x1b[0m': [1212, 736, 1213],
    'zero\u200bwidth': [1212, 89, 517, 334, 728, 489, 820, 67, 640, 1213],
    'bom\ufeffx': [1212, 65, 547, 343, 1213],
    '<START_OF_TEXT> x <end_of_text> y': [1212, 1212, 343, 1213, 344, 1213],
    '!<end_of_text>': [1212, 0, 283, 806, 318, 539, 318, 600, 1052, 285, 1213],
    'a<end_of_text>b': [1212, 320, 1213, 321, 1213],
    '<|endoftext|>!': [1212, 27, 347, 524, 639, 69, 600, 1052, 91, 29, 256, 1213],
    'İstanbul': [1212, 328, 136, 485, 522, 514, 609, 331, 1213],
    '\u3000full\u3000space': [1212, 665, 865, 588, 804, 1213],
    'ｈａｌｆ ｶﾀｶﾅ': [1212, 71, 526, 325, 159, 224, 104, 159, 224, 123, 159, 224, 104, 159, 225, 1213],
    'x\x00y\x01z': [1212, 87, 88, 345, 1213],
    'tab\tsep\x0bvt\x1cfs': [1212, 648, 321, 567, 79, 85, 83, 69, 338, 1213],
    '&lt;3 &gt;': [1212, 283, 274, 285, 1213],
    '&eacute;t&eacute;': [1212, 127, 102, 83, 127, 358, 1213],
    '&#8220;x&#8221;': [1212, 257, 343, 257, 1213],
    '&#128; &#x9d; &hellip; &frac34;': [1212, 158, 224, 361, 126, 507, 959, 126, 378, 1213],
    '&notit; &ampx &#0; &#xD800; &#99999999;': [1212, 126, 361, 585, 282, 261, 343, 171, 123, 377, 171, 123, 377, 171, 123, 1213],
    '&times&divide; &EACUTE;': [1212, 127, 245, 127, 371, 127, 358, 1213],
    '<i>&amp;amp;&#8217;</i>': [1212, 283, 328, 29, 5, 728, 247, 27, 270, 328, 285, 1213],
    '&Tab;a&NewLine;b&#12a;': [1212, 320, 321, 320, 282, 1213],
    'l’été “déjà”': [1212, 331, 262, 127, 102, 83, 127, 358, 257, 67, 127, 102, 73, 127, 510, 1213],
}
# Where cleaning="open_clip" approximates open_clip (ClipTokenizer's docstring): mojibake repair, "'" before a long
# s, and a sigma before a letter Python counts as cased beyond Lu, Ll and Lt. open_clip's ids; ClipTokenizer's differ.
OPEN_CLIP_APPROXIMATED = {
    'Ã©tÃ©': [1212, 127, 102, 83, 127, 358, 1213],
    "'ſ long s": [1212, 6, 129, 379, 75, 846, 338, 1213],
    'ΑΣª': [1212, 138, 109, 139, 225, 126, 359, 1213],
}


def _padded(ids, length):
    return list(ids) + [0] * (length - len(ids))


@pytest.fixture(scope="module")
def open_clip_tokenizer(cases):
    return ClipTokenizer.from_files(
        os.path.join(FIXTURE, "vocab.json"), os.path.join(FIXTURE, "merges.txt"), sequence_length=cases["max_length"],
        pad_token="!", cleaning="open_clip",
    )


def test_open_clip_cleaning_gives_open_clip_ids_on_every_case(open_clip_tokenizer, cases):
    length, end = cases["max_length"], open_clip_tokenizer.end_id
    expected = []
    for i, row in enumerate(cases["input_ids"]):
        ids = OPEN_CLIP_IDS_WHERE_HF_DIFFERS.get(i, row[: row.index(end) + 1])
        expected.append(_padded(ids, length))
    ids = open_clip_tokenizer(cases["captions"]).numpy()
    wrong = [cases["captions"][i] for i in np.where((ids != np.array(expected)).any(axis=1))[0]]
    assert not wrong, f"{len(wrong)} captions differ, e.g. {wrong[:3]}"
    assert len(OPEN_CLIP_IDS_WHERE_HF_DIFFERS) == 50  # ligatures, full-width letters, curly quotes, entities, ...


def test_open_clip_cleaning_of_entities_controls_and_special_tokens(open_clip_tokenizer):
    length = open_clip_tokenizer.sequence_length
    ids = open_clip_tokenizer(list(OPEN_CLIP_CASES)).numpy().tolist()
    assert ids == [_padded(row, length) for row in OPEN_CLIP_CASES.values()]
    ids = open_clip_tokenizer(list(OPEN_CLIP_APPROXIMATED)).numpy().tolist()
    for text, got, reference in zip(OPEN_CLIP_APPROXIMATED, ids, OPEN_CLIP_APPROXIMATED.values()):
        assert got != _padded(reference, length), text  # documented approximations; update the docstring if fixed


def test_open_clip_cleaning_config_and_default(open_clip_tokenizer, tokenizer, tmp_path):
    assert tokenizer.get_config()["cleaning"] is None
    assert open_clip_tokenizer.pad_id == 0
    again = keras.saving.deserialize_keras_object(
        json.loads(json.dumps(keras.saving.serialize_keras_object(open_clip_tokenizer)))
    )
    texts = ["ﬁne ＡＢＣ “x” &amp;", "", "<end_of_text> a"]
    np.testing.assert_array_equal(again(texts), open_clip_tokenizer(texts))
    old = {k: v for k, v in tokenizer.get_config().items() if k != "cleaning"}  # configs saved before the option
    np.testing.assert_array_equal(ClipTokenizer.from_config(old)(texts), tokenizer(texts))
    with pytest.raises(ValueError, match="`cleaning` must be one of"):
        ClipTokenizer(tokenizer.vocabulary, tokenizer.merges, cleaning="ftfy")
