import pytest

from mmkeras.data import RecordCleaner
from mmkeras.data.record_cleaner import clean_text


@pytest.mark.parametrize("validate_images", ["full", "check"])
def test_broken_images_are_skipped_or_repaired_and_counted(image_dir, image_set, validate_images):
    GOOD, REPAIRED, SKIPPED = image_set.good, image_set.repaired, image_set.skipped
    raws = [
        {"id": name, "image_path": str(image_dir / name), "texts": ["a caption"]}
        for name in image_set.files
    ]
    raws.append({"id": "missing.jpg", "image_path": str(image_dir / "missing.jpg"), "texts": ["x"]})
    cleaner = RecordCleaner(validate_images=validate_images, num_threads=2)
    kept = cleaner.clean(raws)
    assert [r["id"] for r in kept] == list(GOOD) + list(REPAIRED)
    report = cleaner.report
    expected = {}
    for reason in list(SKIPPED.values()) + ["missing image"]:
        expected[reason] = expected.get(reason, 0) + 1
    assert dict(report.skipped) == expected
    assert dict(report.repaired) == {reason: 1 for reason in REPAIRED.values()}
    assert report.kept == len(GOOD) + len(REPAIRED)
    webp = next(r for r in kept if r["id"] == "photo.webp")
    assert webp["image"][:8] == b"\x89PNG\r\n\x1a\n"  # re-encoded
    assert sorted(report.examples["corrupt image"]) == ["corrupt.jpg", "truncated.jpg", "truncated.png"]


def test_texts_ids_and_labels(image_set):
    png = image_set.files["good.png"]
    cleaner = RecordCleaner(validate_images="check", num_threads=1)
    kept = cleaner.clean([
        {"id": 7, "image": png, "texts": [b"caf\xe9 \x00 noir", "  two   words ", "", None], "label": "cat"},
        {"id": 8, "image": png, "texts": ["", "   "]},
        {"id": 7, "image": png, "texts": ["duplicate"]},
        {"id": "x", "skip": "malformed line"},
    ])
    assert [r["id"] for r in kept] == ["7"]
    assert kept[0]["texts"] == ["caf\ufffd noir", "two words"] and kept[0]["label"] == "cat"
    assert dict(cleaner.report.skipped) == {"empty caption": 1, "duplicate id": 1, "malformed line": 1}
    assert dict(cleaner.report.repaired) == {"invalid utf-8 replaced": 1, "empty caption dropped": 1}
    assert clean_text("bad \udcff byte") == ("bad \ufffd byte", "invalid utf-8 replaced")
    assert RecordCleaner(require_texts=False).clean([{"id": 1, "image": png, "texts": []}])[0]["texts"] == []


def test_bad_arguments(image_set):
    with pytest.raises(ValueError, match="validate_images"):
        RecordCleaner(validate_images="deep")
    with pytest.raises(ValueError, match="label"):
        RecordCleaner().clean([{"id": 1, "image": image_set.files["good.png"], "texts": ["a"], "label": 1.5}])


def _png_declaring(height, width):
    """A PNG header declaring `height` x `width` with almost no pixel data (never decoded)."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 99)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("validate_images", ["full", "check"])
def test_images_over_max_pixels_are_skipped_before_decoding(image_set, validate_images):
    png = image_set.files["good.png"]  # 12 x 10
    jpeg = image_set.files["good.jpg"]
    raws = [
        {"id": "bomb", "image": _png_declaring(20000, 20000), "texts": ["a"]},
        {"id": "png", "image": png, "texts": ["b"]},
        {"id": "jpeg", "image": jpeg, "texts": ["c"]},
    ]
    cleaner = RecordCleaner(validate_images=validate_images, num_threads=1)
    assert [r["id"] for r in cleaner.clean(raws)] == ["png", "jpeg"]
    assert dict(cleaner.report.skipped) == {"too many pixels": 1}
    small = RecordCleaner(validate_images=validate_images, num_threads=1, max_pixels=100)
    assert small.clean([dict(r, id=r["id"] + "2") for r in raws]) == []
    assert dict(small.report.skipped) == {"too many pixels": 3}
    assert RecordCleaner(max_pixels=120).clean(raws[1:2])[0]["id"] == "png"
    with pytest.raises(ValueError, match="max_pixels"):
        RecordCleaner(max_pixels=0)
