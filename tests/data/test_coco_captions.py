import json

import pytest

from mmkeras.data import CocoCaptions


def test_coco_layout_with_broken_entries(image_dir, caplog):
    coco = {
        "images": [
            {"id": 1, "file_name": "good.jpg"},
            {"id": 2, "file_name": "cmyk.jpg"},
            {"id": 3, "file_name": "truncated.jpg"},
            {"id": 4, "file_name": "good.png"},  # no captions
            {"id": 5, "file_name": "gone.jpg"},
            {"id": 1, "file_name": "good.png"},  # duplicated id
            {"file_name": "good.gif"},  # no id
        ],
        "annotations": [
            {"image_id": 1, "caption": "A dog."},
            {"image_id": 2, "caption": "A cat."},
            {"image_id": 1, "caption": "A brown dog."},
            {"image_id": 3, "caption": "Cut."},
            {"image_id": 99, "caption": "Orphan."},
        ],
    }
    path = image_dir / "captions_train2017.json"
    path.write_text(json.dumps(coco))
    source = CocoCaptions(str(path), str(image_dir))
    with caplog.at_level("INFO", logger="mmkeras.data"):
        records = list(source)
    assert [(r["id"], r["texts"]) for r in records] == [("1", ["A dog.", "A brown dog."]), ("2", ["A cat."])]
    assert records[0]["image"] == (image_dir / "good.jpg").read_bytes()
    assert dict(source.report.skipped) == {
        "corrupt image": 1, "empty caption": 1, "missing image": 1, "duplicate id": 1, "malformed entry": 1,
    }
    assert dict(source.report.repaired) == {"cmyk image": 1, "orphan caption dropped": 1}
    assert "skipped 5 records: 1 corrupt image, 1 duplicate id" in caplog.text
    # images_dir defaults to the JSON's folder; a second pass gives a fresh report
    assert len(list(CocoCaptions(str(path)))) == 2


def test_bad_annotation_files(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="annotations"):
        list(CocoCaptions(str(tmp_path / "bad.json")))
    with pytest.raises(ValueError, match="annotations"):
        list(CocoCaptions(str(tmp_path / "missing.json")))
