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


def test_captions_over_the_byte_limit_skip_their_row_in_csv_and_jsonl(image_dir):
    huge = "x" * 200_000  # over Python's CSV field limit too
    rows = f"image_path,text\ngood.jpg,a dog\ngood.png,{huge}\ngood.png,a cat\ngood.gif,{'é' * 40}\n"
    (image_dir / "m.csv").write_text(rows, encoding="utf-8")
    lines = [
        json.dumps({"image_path": "good.jpg", "text": ["a dog", "y" * 100]}),
        json.dumps({"image_path": "good.png", "text": "a cat"}),
        json.dumps({"image_path": "good.gif", "text": "é" * 40}),
    ]
    (image_dir / "m.jsonl").write_text("\n".join(lines) + "\n")
    for name in ("m.csv", "m.jsonl"):
        source = Manifest(str(image_dir / name), max_text_bytes=64)
        records = [(r["id"], r["texts"]) for r in source]
        if name == "m.csv":
            assert records == [("good.jpg", ["a dog"]), ("good.png", ["a cat"])]
        else:
            assert records == [("good.png", ["a cat"])]
        assert dict(source.report.skipped) == {"text too long": 2}, name
    default = Manifest(str(image_dir / "m.csv"))
    assert [r["id"] for r in default] == ["good.jpg", "good.png", "good.gif"]
    assert dict(default.report.skipped) == {"text too long": 1}
    with pytest.raises(ValueError, match="max_text_bytes"):
        Manifest(str(image_dir / "m.csv"), max_text_bytes=0)
