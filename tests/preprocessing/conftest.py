"""Runs a serving script in a fresh Python process, as a deployment without mmkeras would."""

import json
import os
import subprocess
import sys

import pytest

# What a serving process must be able to do without.
NOT_NEEDED = ("mmkeras", "keras_hub")


@pytest.fixture
def serve_in_fresh_process(tmp_path):
    """`serve_in_fresh_process(script, timeout)` -> the JSON object the script prints last.

    The script runs in `tmp_path`; it must exit 0 and must not import mmkeras or keras_hub.
    """

    def run(script, timeout):
        probe = f"\nimport json, sys\nprint(json.dumps([m for m in {NOT_NEEDED!r} if m in sys.modules]))\n"
        result = subprocess.run(
            [sys.executable, "-c", script + probe],
            capture_output=True,
            text=True,
            cwd=str(tmp_path),
            timeout=timeout,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        )
        assert result.returncode == 0, result.stderr[-2000:]
        *_, report, imported = result.stdout.strip().splitlines()
        assert json.loads(imported) == [], f"the serving process imported {imported}"
        return json.loads(report)

    return run
