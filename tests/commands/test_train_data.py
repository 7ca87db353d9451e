"""`mmkeras train PRESET --data KIND:PATH`: real-layout files with broken records, end to end, and its errors."""

import json

import numpy as np
import pytest
import tensorflow as tf

from mmkeras.cli import main
from mmkeras.data import Shapes

TINY = ["--set", "data.image_size=32", "--set", "image_encoder.patch_size=16",
        "--set", "data.vocabulary_size=60", "--set", "eval.batch_size=16"]
for _tower in ("image_encoder", "text_encoder"):
    TINY += ["--set", f"{_tower}.num_layers=1", "--set", f"{_tower}.hidden_dim=16", "--set", f"{_tower}.mlp_dim=32",
             "--set", f"{_tower}.num_heads=2"]
TINY += ["--set", "model.embed_dim=16", "--epochs", "1", "--global-batch", "8", "--no-jit", "--strategy", "cpu"]


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
    # `mmkeras eval` rebuilds the real-data task from config.json and reuses the converted shards.
    assert main(["eval", str(run)]) == 0
    assert json.loads((run / "metrics.json").read_text())["t2i_r5"] == metrics["t2i_r5"]


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
