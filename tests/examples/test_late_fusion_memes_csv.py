"""`examples/late_fusion_memes_csv.py --smoke`: a Hateful-Memes-style JSONL from Shapes, late fusion trained and scored."""

import json


def test_smoke_mode_trains_late_fusion_on_memes_jsonl(run_example, tmp_path):
    proc = run_example("late_fusion_memes_csv.py", "--smoke", "--output", str(tmp_path / "run"))
    lines = proc.stdout.strip().splitlines()
    metrics = json.loads(lines[-1])
    assert lines[-2] == "kept 80 records; skipped 0 records"
    assert metrics["num_train_records"] + metrics["num_held_out_records"] == 80
    for key in ("accuracy", "macro_f1", "auroc", "accuracy_image_missing", "accuracy_text_missing"):
        assert 0.0 <= metrics[key] <= 1.0
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["model"]["heads"] == {"label": {"type": "binary", "labels": ["0", "1"]}}
    assert config["model"]["fusion"] == "late" and config["data"]["dataset"] == "jsonl"
