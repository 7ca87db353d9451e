import json

import pytest

from mmkeras.data import Manifest


def test_csv_groups_rows_resolves_paths_and_counts_broken_rows(image_dir):
    (image_dir / "sub").mkdir()
    (image_dir / "sub" / "g.png").write_bytes((image_dir / "good.png").read_bytes())
    rows = (
        "image_path,text,label\n"
        "good.jpg,a dog,3\n"
        "sub/g.png,a cat,cat\n"
        "good.jpg,\"a dog, again\",3\n"
        ",no image,1\n"
        "truncated.png,cut,1\n"
        "missing.jpg,gone,2\n"
        f"{image_dir / 'rgba.png'},absolute path,\n"
        "good.gif,\n"
    )
    path = image_dir / "manifest.csv"
    path.write_bytes(rows.encode("utf-8") + b"photo.webp,caf\xe9\n")
    source = Manifest(str(path))
    records = list(source)
    assert [(r["id"], r["texts"], r["label"]) for r in records] == [
        ("good.jpg", ["a dog", "a dog, again"], 3),
        ("sub/g.png", ["a cat"], "cat"),
        (str(image_dir / "rgba.png"), ["absolute path"], None),
        ("photo.webp", ["caf\ufffd"], None),
    ]
    assert dict(source.report.skipped) == {
        "missing image path": 1, "corrupt image": 1, "missing image": 1, "empty caption": 1,
    }
    assert source.report.repaired["invalid utf-8 replaced"] == 1


def test_jsonl_with_lists_ids_and_bad_lines(image_dir):
    lines = [
        json.dumps({"image_path": "good.jpg", "text": ["one", "two"], "label": 1, "id": "a"}),
        "{broken json",
        json.dumps({"image": "good.png", "caption": "three"}),
        json.dumps({"image_path": "good.jpg", "text": "four", "id": "a"}),
        json.dumps({"image_path": "good.gif", "text": "five", "id": "a"}),  # another image: a duplicate id
        json.dumps(["not", "an", "object"]),
    ]
    path = image_dir / "m.jsonl"
    path.write_text("\n".join(lines) + "\n")
    source = Manifest(str(path))
    records = list(source)
    assert [(r["id"], r["texts"]) for r in records] == [("a", ["one", "two", "four"]), ("good.png", ["three"])]
    assert dict(source.report.skipped) == {"malformed line": 2, "duplicate id": 1}


def test_bad_manifests(tmp_path):
    (tmp_path / "m.csv").write_text("path,text\nx.jpg,a\n")
    with pytest.raises(ValueError, match="image column"):
        list(Manifest(str(tmp_path / "m.csv")))
    with pytest.raises(ValueError, match="format"):
        Manifest(str(tmp_path / "m.csv"), format="xml")
