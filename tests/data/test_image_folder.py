import pytest

from mmkeras.data import ImageFolder


def test_classes_from_sub_folders_with_broken_files(tmp_path, image_set):
    files = image_set.files
    layout = {
        "cat/a.jpg": files["good.jpg"], "cat/b.jpg": files["truncated.jpg"], "cat/.hidden": b"x",
        "dog/c.png": files["gray.jpg"], "dog/d.txt": files["notes.txt"],
        "sea_lion/e.gif": files["good.gif"], "readme.txt": b"ignored",
    }
    for name, data in layout.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(data)
    folder = ImageFolder(str(tmp_path))
    assert folder.class_names == ["cat", "dog", "sea_lion"]
    records = list(folder)
    assert [(r["id"], r["label"], r["texts"]) for r in records] == [
        ("cat/a.jpg", "cat", ["cat"]), ("dog/c.png", "dog", ["dog"]), ("sea_lion/e.gif", "sea_lion", ["sea lion"]),
    ]
    assert dict(folder.report.skipped) == {"corrupt image": 1, "unsupported image format": 1}
    assert [r["texts"] for r in ImageFolder(str(tmp_path), template=None)] == [[], [], []]
    with pytest.raises(ValueError, match="root"):
        ImageFolder(str(tmp_path / "nope"))
