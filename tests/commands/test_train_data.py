"""`mmkeras train PRESET --data KIND:PATH`: real-layout files with broken records, end to end, and its errors."""

import html
import json

import numpy as np
import pytest
import tensorflow as tf

from mmkeras.cli import main
from mmkeras.data import Shapes
from mmkeras.report.html_report import read_html_report

_TOWER = {"num_layers": 1, "hidden_dim": 16, "mlp_dim": 32, "num_heads": 2}
_TINY_SETTINGS = {
    "data.image_size": 32, "image_encoder.patch_size": 16, "data.vocabulary_size": 60, "eval.batch_size": 16,
    **{f"{tower}.{k}": v for tower in ("image_encoder", "text_encoder") for k, v in _TOWER.items()},
    "model.embed_dim": 16,
}


def tiny_args(drop=(), settings=None):
    """The flags of a tiny one-epoch CPU run: `--set` of `_TINY_SETTINGS` but the fields starting with
    one of `drop`, and of `settings` (`{"section.field": value}`)."""
    chosen = {k: v for k, v in _TINY_SETTINGS.items() if not k.startswith(tuple(drop))}
    chosen.update(settings or {})
    flags = [a for k, v in chosen.items() for a in ("--set", f"{k}={v}")]
    return flags + ["--epochs", "1", "--global-batch", "8", "--no-jit", "--strategy", "cpu"]


TINY = tiny_args()


def test_train_on_coco_layout_with_broken_files_then_eval(tmp_path, capsys):
    paths = Shapes(image_size=32, num_train=30, num_val=1, num_test=1).write(str(tmp_path / "coco"), "train")
    images = sorted((tmp_path / "coco" / "images" / "train").iterdir())
    images[0].write_bytes(images[0].read_bytes()[:200])   # truncated JPEG
    images[1].unlink()                                    # missing file
    run = tmp_path / "run"
    args = ["train", "shapes-clip-tiny", "--data", f"coco:{paths['captions_json']}", "--images", paths["image_dir"],
            "--val-fraction", "0.25", "--output", str(run), "--quiet"] + TINY
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "skipped 2 records: 1 corrupt image, 1 missing image" in out
    metrics = json.loads((run / "metrics.json").read_text())
    for key in ("i2t_r1", "i2t_r5", "i2t_r10", "t2i_r1", "t2i_r5", "t2i_r10"):
        assert 0.0 <= metrics[key] <= 1.0
    assert metrics["num_train_records"] + metrics["num_held_out_records"] == 28
    assert metrics["num_test_captions"] == 5 * metrics["num_test_images"] == 5 * metrics["num_held_out_records"]
    assert metrics["num_skipped_records"] == 2
    report = json.loads((run / "skip_report.json").read_text())
    assert report["conversion"]["skipped"] == {"corrupt image": 1, "missing image": 1}
    config = json.loads((run / "config.json").read_text())
    assert config["data"]["dataset"] == "coco" and config["data"]["val_fraction"] == 0.25
    serving = tf.saved_model.load(str(run / "export"))
    emb = serving.signatures["embed_text"](text=tf.constant(["a red circle"]))["embeddings"].numpy()
    np.testing.assert_allclose(np.linalg.norm(emb, axis=-1), 1.0, atol=1e-5)
    # The results table beside chance, the data counts, and report.html with retrieval grids and curves.
    assert '"i2t_r1":' not in out
    words = " ".join(out.split())
    assert f"t2i R@5 {metrics['t2i_r5']:.3f} chance {5 / metrics['num_test_images']:.3f}" in words
    assert "skipped records 2" in words and f"Report: {run / 'report.html'}" in out
    page = read_html_report((run / "report.html").read_text())
    assert page["sections"] == ["results", "retrieval", "curves"] and len(page["images"]) == 4 + 1
    # `mmkeras eval` rebuilds the real-data task from config.json and reuses the converted shards.
    assert main(["eval", str(run)]) == 0
    assert json.loads((run / "metrics.json").read_text())["t2i_r5"] == metrics["t2i_r5"]
    assert "Report:" in capsys.readouterr().out


def _csv_run(tmp_path, preset, tiny):
    """`mmkeras train preset` arguments on a CSV manifest of 30 Shapes images (a quarter held out), with
    the `tiny` flags and no export; returns the run directory and the arguments."""
    paths = Shapes(image_size=32, num_train=30, num_val=1, num_test=1).write(str(tmp_path / "csv"), "train")
    run = tmp_path / "run"
    return run, ["train", preset, "--data", f"csv:{paths['csv']}", "--val-fraction", "0.25", "--output", str(run),
                 "--quiet", "--no-export"] + tiny


def test_fusion_on_csv_labels_reports_accuracy_beside_the_majority_class(tmp_path, capsys):
    run, args = _csv_run(tmp_path, "shapes-fusion-late-tiny", tiny_args(drop=["model."]))
    assert main(args) == 0
    out = capsys.readouterr().out
    metrics = json.loads((run / "metrics.json").read_text())
    majority = metrics["baseline_majority_accuracy"]
    assert f"accuracy {metrics['accuracy']:.3f} majority class {majority:.3f}" in " ".join(out.split())
    page = read_html_report((run / "report.html").read_text())
    assert page["sections"] == ["results", "fusion", "curves"] and len(page["images"]) == 2
    matrix = tf.io.decode_png(page["images"][0])  # the confusion matrix of the label head
    assert matrix.shape[-1] == 3 and (run / "plots" / "confusion_shapes-fusion-late-tiny_label.png").exists()
    assert {r["metric"] for r in page["rows"]} >= {"accuracy", "macro_f1", "num_held_out_records"}


def test_captioning_on_csv_shows_generated_and_reference_captions(tmp_path, capsys):
    decoder = {f"model.{k}": v for k, v in _TOWER.items()}
    tiny = tiny_args(drop=["text_encoder.", "model."], settings={"eval.max_length": 6, "eval.num_beams": 2, **decoder})
    run, args = _csv_run(tmp_path, "shapes-captioner-tiny", tiny)
    assert main(args) == 0
    out = capsys.readouterr().out
    metrics = json.loads((run / "metrics.json").read_text())
    assert f"CIDEr-D {metrics['cider_d']:.3f} \u2014" in " ".join(out.split())  # no baseline on real captions
    text = (run / "report.html").read_text()
    page = read_html_report(text)
    assert page["sections"] == ["results", "captions", "curves"]
    samples = json.loads((run / "samples.json").read_text())
    assert len(page["images"]) == min(8, len(samples)) + 1
    for sample in samples[:8]:
        assert html.escape(f"generated: {sample['generated']}") in text
        assert html.escape(f"reference: {sample['references'][0]}") in text


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--data", "webdataset:/x"], "`--data` must be KIND:PATH with KIND one of coco, flickr"),
        (["--data", "coco:"], "`--data` must be KIND:PATH"),
        (["--images", "/x"], "--images only apply with `--data KIND:PATH`"),
        (["--data", "coco:/nowhere/captions.json"], "`data.path` '/nowhere/captions.json' does not exist"),
        (["--data", "csv:/nowhere.csv", "--val-fraction", "0"], "`data.val_fraction` must be in (0, 1)"),
    ],
)
def test_data_errors_are_one_line(tmp_path, capsys, extra, message):
    assert main(["train", "shapes-captioner-tiny", "--output", str(tmp_path / "run")] + extra) == 2
    assert message in capsys.readouterr().err
