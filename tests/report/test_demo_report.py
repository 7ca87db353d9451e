"""DemoReport on small fake runs: the table, the report's sections, figures and numbers."""

import json
import re

import numpy as np
import pytest
import tensorflow as tf

from mmkeras.data.shapes import ANSWER_VOCABULARY
from mmkeras.report.demo_report import NO_REFERENCE, SECTIONS, DemoReport
from mmkeras.report.html_report import read_html_report

MATCHING = {"i2t_r1": 0.21, "i2t_r5": 0.52, "i2t_r10": 0.71, "t2i_r1": 0.05, "t2i_r5": 0.2, "t2i_r10": 0.33,
            "num_test_images": 50, "num_test_captions": 250}
CAPTIONING = {"bleu_4": 0.31, "cider_d": 0.9, "baseline_nearest_bleu_4": 0.2, "baseline_nearest_cider_d": 0.5,
              "caption_accuracy": 0.7, "baseline_nearest_caption_accuracy": 0.2, "shape_caption_accuracy": 0.3,
              "baseline_nearest_shape_caption_accuracy": 0.1}


def _fusion(accuracy):
    per_class = {name: {"support": 10 if name == "yes" else 2} for name in ANSWER_VOCABULARY}
    return {"answer_accuracy": accuracy, "match_accuracy": 0.61, "match_auroc": 0.66,
            "answer_accuracy_count": 0.4, "answer_accuracy_image_missing": 0.3, "answer": {"per_class": per_class},
            "match": {"per_class": {"no": {"support": 30}, "yes": {"support": 30}}}}


def _report():
    rng = np.random.default_rng(0)
    image = lambda: rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)  # noqa: E731
    report = DemoReport(subtitle="fake")
    report.add_run("clip", "matching", MATCHING, history={"loss": [3.0, 2.0]}, seconds=1.5, export_dir="x/export")
    report.add_run("cap", "captioning", CAPTIONING, history={"loss": [4.0, 3.0], "masked_token_accuracy": [0.1, 0.2]})
    report.add_run("early", "fusion", _fusion(0.45), history={"loss": [2.0], "answer_loss": [1.5], "match_loss": [0.7]})
    report.add_run("late", "fusion", _fusion(0.35))  # no history: no curve
    report.add_caption_samples("cap", [{"image": image(), "generated": "a red <b>circle</b>",
                                        "references": ["one red circle", "a red disk"], "true": False}])
    report.add_retrieval("clip", [{"query": "two stars", "images": np.stack([image() for _ in range(3)]),
                                   "scores": [0.9, 0.8, 0.1], "correct": [False, True, False], "rank": 2,
                                   "true": [True, True, False]}])
    for name in ("early", "late"):
        report.add_confusion(name, {"head": "answer", "labels": list(ANSWER_VOCABULARY),
                                    "matrix": rng.integers(0, 5, (24, 24))})
    return report


def test_results_rows_and_table():
    report = _report()
    rows = report.rows()
    assert [r["key"] for r in rows] == (
        ["i2t_r1", "i2t_r5", "i2t_r10", "t2i_r1", "t2i_r5", "t2i_r10"]
        + ["bleu_4", "cider_d", "caption_accuracy", "shape_caption_accuracy"]
        + ["answer_accuracy", "match_accuracy"] * 2
    )
    by_key = {(r["model"], r["key"]): r for r in rows}
    assert by_key["clip", "t2i_r5"]["reference_value"] == pytest.approx(0.1)
    assert by_key["clip", "i2t_r1"]["reference_value"] == pytest.approx(5 / 250)
    assert by_key["cap", "cider_d"]["reference"] == "nearest-neighbour 0.500"
    assert by_key["cap", "shape_caption_accuracy"]["reference"] == "nearest-neighbour 0.100"
    # Real-data captioners have no caption accuracy (no grammar to judge by): those rows are left out.
    real = DemoReport()
    real.add_run("coco", "captioning", {k: v for k, v in CAPTIONING.items() if "accuracy" not in k})
    assert [r["key"] for r in real.rows()] == ["bleu_4", "cider_d"]
    assert by_key["early", "answer_accuracy"]["reference_value"] == pytest.approx(10 / (10 + 23 * 2))
    assert by_key["late", "match_accuracy"]["reference_value"] == pytest.approx(0.5)
    table = report.table()
    assert table.splitlines()[0].split() == ["model", "metric", "value", "reference"]
    assert "early  QA accuracy        0.450  majority class 0.179, image masked 0.300" in table
    assert "late   matching accuracy  0.610  majority class 0.500\n" in table + "\n"


def test_shapes_matching_rows_quote_the_bag_of_attributes_and_the_ceiling():
    references = {"bayes_oracle": {"t2i_r5": 0.581, "t2i_sr5": 1.0, "i2t_r5": 0.966},
                  "bag_of_attributes": {"t2i_r5": 0.171, "t2i_sr5": 0.685}}
    report = DemoReport(kinds=("matching",))
    report.add_run("clip", "matching", {**MATCHING, "t2i_sr5": 0.69, "chance_t2i_sr5": 0.252, "references": references})
    by_key = {r["key"]: r["reference"] for r in report.rows()}
    assert by_key["t2i_r5"] == "chance 0.100, bag of attributes 0.171, ceiling 0.581"
    assert by_key["t2i_sr5"] == "chance 0.252, bag of attributes 0.685, ceiling 1.000"
    assert by_key["i2t_r5"].endswith(", ceiling 0.966") and "bag" not in by_key["i2t_r5"]
    assert by_key["t2i_r1"] == "chance 0.020"  # rankers without the figure add nothing


def test_the_retrieval_section_shows_recall_by_caption_kind_beside_the_rankers(tmp_path):
    by_kind = {"position": {"r5": 0.24, "t2i_sr1": 0.3, "num_queries": 1264},
               "inventory": {"r5": 0.91, "t2i_sr1": 0.8, "num_queries": 670}}
    references = {"bayes_oracle": {"t2i_by_text_kind": {"position": {"r5": 0.799}, "inventory": {"r5": 0.963}}},
                  "bag_of_attributes": {"t2i_by_text_kind": {"position": {"r5": 0.135}, "inventory": {"r5": 0.482}}}}
    report = DemoReport(kinds=("matching",))
    report.add_run("clip", "matching", {**MATCHING, "t2i_by_text_kind": by_kind, "references": references})
    report.add_retrieval("clip", [{"query": "a red star", "images": np.zeros((2, 8, 8, 3), np.uint8),
                                   "scores": [0.9, 0.8], "correct": [True, False], "rank": 1}])
    text = open(report.write(tmp_path)).read()
    for cells in (["position", "1264", "0.240", "0.300", "0.135", "0.799"],
                  ["inventory", "670", "0.910", "0.800", "0.482", "0.963"]):
        assert re.search(r"\s*</t[dh]>\s*<t[dh][^>]*>\s*".join(map(re.escape, cells)), text), cells
    assert "bag of attributes R@5" in text and "ceiling R@5" in text


def test_write_report_and_plots(tmp_path):
    path = _report().write(tmp_path)
    assert path == str(tmp_path / "report.html")
    page = read_html_report(open(path).read())
    assert page["sections"] == list(SECTIONS)
    # 1 caption card + 1 retrieval grid + 2 confusion matrices + 3 curves (late has no history).
    assert len(page["images"]) == 7
    for png in page["images"]:
        assert tf.io.decode_png(png).shape[-1] == 3
    values = {(r["model"], r["metric"]): float(r["value"]) for r in page["rows"] if "model" in r}
    assert values["clip", "t2i_r10"] == MATCHING["t2i_r10"] and values["cap", "bleu_4"] == CAPTIONING["bleu_4"]
    assert values["late", "answer_accuracy"] == 0.35
    assert {r["metric"] for r in page["rows"] if "model" not in r} >= {"answer_accuracy", "match_auroc"}
    text = open(path).read()
    assert "generated (false): a red &lt;b&gt;circle&lt;/b&gt;" in text and "ranks 2 of 50" in text
    plots = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert plots == ["confusion_early_answer.png", "confusion_late_answer.png", "curves_cap.png",
                     "curves_clip.png", "curves_early.png", "retrieval_clip.png"]
    for plot in plots:
        assert tf.io.decode_png((tmp_path / "plots" / plot).read_bytes()).shape[-1] == 3
    json.dumps(_report().rows())  # the rows are plain data


def test_empty_report_still_has_every_section(tmp_path):
    page = read_html_report(open(DemoReport().write(tmp_path)).read())
    assert page["sections"] == list(SECTIONS) and page["images"] == []


def test_bad_inputs_name_the_argument():
    report = DemoReport()
    with pytest.raises(ValueError, match="task"):
        report.add_run("x", "detection", {})
    report.add_run("x", "fusion", {})
    with pytest.raises(ValueError, match="name"):
        report.add_run("x", "fusion", {})
    with pytest.raises(ValueError, match="metrics"):
        report.add_run("y", "fusion", None)
    with pytest.raises(ValueError, match="matrix"):
        report.add_confusion("x", {"head": "answer", "labels": ["a", "b"], "matrix": np.zeros((3, 3))})


def test_real_data_rows_quote_chance_baselines_and_data_counts():
    counts = {"num_train_records": 898, "num_held_out_records": 102, "num_skipped_records": 3}
    report = DemoReport(kinds=("fusion",))
    report.add_run("clip", "matching", {**MATCHING, "num_test_images": 100, "num_test_captions": 100, **counts})
    report.add_run("cap", "captioning", {"bleu_4": 0.12, "cider_d": 0.3, "num_test_images": 102, **counts})
    report.add_run("memes", "fusion", {"accuracy": 0.7, "macro_f1": 0.6, "auroc": 0.75, "accuracy_image_missing": 0.55,
                                       "baseline_majority_accuracy": 0.64, "label": {"per_class": {}}, **counts})
    rows = {(r["model"], r["key"]): r for r in report.rows()}
    # One caption per image: i2t and t2i chance are both K / N.
    assert rows["clip", "i2t_r5"]["reference"] == rows["clip", "t2i_r5"]["reference"] == "chance 0.050"
    # No baseline on real captions: a dash, not a number.
    assert rows["cap", "bleu_4"]["reference"] == NO_REFERENCE and rows["cap", "bleu_4"]["reference_value"] is None
    assert rows["memes", "accuracy"]["reference"] == "majority class 0.640, image masked 0.550"
    assert rows["memes", "macro_f1"]["reference"] == NO_REFERENCE
    assert rows["memes", "auroc"]["reference_value"] == 0.5
    assert [r["key"] for r in report.rows() if r["model"] == "memes"] == [
        "accuracy", "macro_f1", "auroc", "num_train_records", "num_held_out_records", "num_skipped_records"]
    table = report.table()
    assert "memes  held-out records  102\n" in table + "\n" and "cap    CIDEr-D           0.300  \u2014" in table
    # A report of some kinds only holds their sections.
    assert read_html_report(report.html().render())["sections"] == ["results", "fusion", "curves"]
    with pytest.raises(ValueError, match="kinds"):
        DemoReport(kinds=("detection",))


def test_write_with_a_suffix_names_the_page_and_the_plots(tmp_path):
    report = DemoReport(kinds=("matching",))
    report.add_run("clip", "matching", MATCHING, history={"loss": [3.0, 2.0], "val_loss": [3.1, None]})
    assert report.write(tmp_path, suffix="-batch_size=8") == str(tmp_path / "report-batch_size=8.html")
    assert [p.name for p in (tmp_path / "plots-batch_size=8").iterdir()] == ["curves_clip.png"]
