"""`examples/train_tpu.py --smoke` trains a few CPU steps through the public API."""

import json
import math
import os
import subprocess
import sys

from mmkeras.testing.distributed import child_environment

SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                      "examples", "train_tpu.py")


def test_smoke_mode_trains_on_cpu(tmp_path):
    proc = subprocess.run(
        [sys.executable, SCRIPT, "--family", "matching", "--smoke", "--output", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=300, env=child_environment({"CUDA_VISIBLE_DEVICES": "-1"}),
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["family"] == "matching" and len(report["loss"]) == 1 and math.isfinite(report["loss"][0])
    assert "1 replica(s), 8 examples per replica" in proc.stdout
    assert (tmp_path / "run" / "model.keras").exists()
