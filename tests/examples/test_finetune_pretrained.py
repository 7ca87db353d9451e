"""`examples/finetune_pretrained.py --smoke`: a tiny local keras-hub preset as the image tower, fine-tuned on COCO-layout files."""

import json
import math
import os


def test_smoke_mode_finetunes_a_keras_hub_image_tower(run_example, tmp_path):
    proc = run_example("finetune_pretrained.py", "--smoke", "--family", "matching", "--output", str(tmp_path / "run"))
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["family"] == "matching" and report["image_tower"] == "keras_hub"
    assert len(report["loss"]) == 1 and math.isfinite(report["loss"][0])
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["image_encoder"]["type"] == "keras_hub" and os.path.isdir(config["image_encoder"]["preset"])
    assert config["data"]["dataset"] == "coco" and (tmp_path / "run" / "model.keras").exists()
