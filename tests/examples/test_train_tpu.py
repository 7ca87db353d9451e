"""`examples/train_tpu.py --smoke` trains a few CPU steps through the public API."""

import json
import math


def test_smoke_mode_trains_on_cpu(run_example, tmp_path):
    proc = run_example("train_tpu.py", "--family", "matching", "--smoke", "--output", str(tmp_path / "run"))
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["family"] == "matching" and len(report["loss"]) == 1 and math.isfinite(report["loss"][0])
    assert "1 replica(s), 8 examples per replica" in proc.stdout
    assert (tmp_path / "run" / "model.keras").exists()
