import pytest

from mmkeras.data import SkipReport


def test_counts_summary_and_round_trip(caplog):
    report = SkipReport()
    for reason, record_id in [("corrupt image", "a"), ("empty caption", "b"), ("corrupt image", "c")]:
        report.skip(reason, record_id)
    report.repair("cmyk image", "d")
    report.keep(4)
    assert report.num_skipped == 3 and report.num_repaired == 1
    assert report.summary() == (
        "kept 4 records; skipped 3 records: 2 corrupt image, 1 empty caption; repaired 1: 1 cmyk image"
    )
    with caplog.at_level("INFO", logger="mmkeras.data"):
        report.log("coco")
    assert "coco: kept 4 records; skipped 3 records: 2 corrupt image" in caplog.text
    again = SkipReport.from_dict(report.as_dict())
    assert again.summary() == report.summary() and again.examples["corrupt image"] == ["a", "c"]
    assert again.merge(report).skipped["corrupt image"] == 4
    assert SkipReport().summary() == "kept 0 records; skipped 0 records"


def test_check_images_found_points_at_the_images_folder():
    SkipReport().check_images_found("empty")  # nothing read, nothing missing: fine
    SkipReport(kept=1, skipped={"missing image": 5}).check_images_found("coco")  # some images were found
    with pytest.raises(ValueError, match=r"^coco: no record kept: every image is missing .*--images"):
        SkipReport(skipped={"missing image": 5}).check_images_found("coco")
    with pytest.raises(ValueError, match="2 images are missing .*1 corrupt image"):
        SkipReport(skipped={"missing image": 2, "corrupt image": 1}).check_images_found()
