"""`examples/caption_coco_tfds.py --smoke`: Shapes served as TFDS coco_captions (mock data), trained and scored."""

import json
import math


def test_smoke_mode_trains_a_captioner_on_mock_tfds(run_example, tmp_path):
    proc = run_example("caption_coco_tfds.py", "--smoke", "--data-dir", str(tmp_path / "tfds"), "--output", str(tmp_path / "run"))
    lines = proc.stdout.strip().splitlines()
    report = json.loads(lines[-1])
    assert lines[-2] == "kept 24 records; skipped 0 records"
    assert report["num_train_records"] + report["num_held_out_records"] == 24
    assert len(report["loss"]) == 1 and math.isfinite(report["loss"][0])
    assert report["bleu_4"] >= 0.0 and report["cider_d"] >= 0.0
    assert (tmp_path / "run" / "data" / "dataset_info.json").exists()
    assert (tmp_path / "run" / "tokenizer.json").exists() and (tmp_path / "run" / "model.keras").exists()
