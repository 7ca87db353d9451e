"""`examples/caption_coco_tfds.py --smoke`: Shapes served as TFDS coco_captions (mock data), trained and scored."""

import json
import math
import os
import subprocess
import sys

from mmkeras.testing.distributed import child_environment

SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                      "examples", "caption_coco_tfds.py")


def test_smoke_mode_trains_a_captioner_on_mock_tfds(tmp_path):
    proc = subprocess.run(
        [sys.executable, SCRIPT, "--smoke", "--data-dir", str(tmp_path / "tfds"), "--output", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=300, env=child_environment({"CUDA_VISIBLE_DEVICES": "-1"}),
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    lines = proc.stdout.strip().splitlines()
    report = json.loads(lines[-1])
    assert lines[-2] == "kept 24 records; skipped 0 records"
    assert report["num_train_records"] + report["num_held_out_records"] == 24
    assert len(report["loss"]) == 1 and math.isfinite(report["loss"][0])
    assert report["bleu_4"] >= 0.0 and report["cider_d"] >= 0.0
    assert (tmp_path / "run" / "data" / "dataset_info.json").exists()
    assert (tmp_path / "run" / "tokenizer.json").exists() and (tmp_path / "run" / "model.keras").exists()
