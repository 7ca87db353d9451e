import json

import pytest

from mmkeras.data import FlickrCaptions


def _files(image_dir):
    tokens = (
        "good.jpg#0\tA dog runs .\n"
        "good.jpg#1\tA brown dog .\n"
        "gray.jpg#0\tA gray picture .\n"
        "no tab on this line\n"
        "good.png#0\t   \n"
        "good.gif#0\tA gif \xff.\n"
    )
    (image_dir / "Flickr8k.token.txt").write_bytes(tokens.encode("latin-1"))
    split = {"images": [
        {"filename": "good.jpg", "split": "train", "sentences": [{"raw": "json caption"}]},
        {"filename": "gray.jpg", "split": "test", "sentences": [{"raw": "gray json"}]},
        {"filename": "good.gif", "split": "restval", "sentences": [{"raw": "gif json"}]},
    ]}
    (image_dir / "dataset_flickr8k.json").write_text(json.dumps(split))
    return str(image_dir / "Flickr8k.token.txt"), str(image_dir / "dataset_flickr8k.json")


def test_token_file_alone(image_dir):
    tokens, _ = _files(image_dir)
    source = FlickrCaptions(tokens)
    records = list(source)
    assert [(r["id"], r["texts"]) for r in records] == [
        ("good.jpg", ["A dog runs .", "A brown dog ."]),
        ("gray.jpg", ["A gray picture ."]),
        ("good.gif", ["A gif \ufffd."]),
    ]
    assert dict(source.report.skipped) == {"empty caption": 1}
    assert dict(source.report.repaired) == {
        "malformed line dropped": 1, "grayscale image": 1, "invalid utf-8 replaced": 1,
    }


def test_karpathy_split(image_dir):
    tokens, split_json = _files(image_dir)
    train = list(FlickrCaptions(tokens, str(image_dir), split_json=split_json, split="train"))
    assert [r["id"] for r in train] == ["good.jpg", "good.gif"]  # train includes restval
    test = list(FlickrCaptions(tokens, split_json=split_json, split="test"))
    assert [(r["id"], r["texts"]) for r in test] == [("gray.jpg", ["A gray picture ."])]
    from_json = list(FlickrCaptions(None, str(image_dir), split_json=split_json, split="all"))
    assert [r["texts"] for r in from_json] == [["json caption"], ["gray json"], ["gif json"]]
    with pytest.raises(ValueError, match="split"):
        FlickrCaptions(tokens, split="dev")
