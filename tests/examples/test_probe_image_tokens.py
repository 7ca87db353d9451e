"""`examples/probe_image_tokens.py`: linear probes of a Shapes captioner's image tokens."""

import json

import numpy as np
import pytest


def test_the_probe_finds_a_linearly_encoded_label_and_not_a_missing_one(example_module):
    probe = example_module("probe_image_tokens.py").linear_probe_accuracy
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, size=3000)
    encoded = np.eye(5)[labels] * 3 + rng.normal(size=(3000, 5))  # label in the features, plus noise
    noise = rng.normal(size=(3000, 5))
    assert probe(encoded[:2000], labels[:2000], encoded[2000:], labels[2000:], 5) > 0.9
    assert probe(noise[:2000], labels[:2000], noise[2000:], labels[2000:], 5) < 0.3  # chance is 0.2


def test_smoke_mode_probes_a_tiny_run(run_example, tmp_path):
    proc = run_example("probe_image_tokens.py", "--smoke", "--output", str(tmp_path / "run"), "--train-scenes", 96)
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(report) == {"shape", "colour", "cell", "occupied"}
    assert all(0.0 <= value <= 1.0 for value in report.values())


def test_runs_it_cannot_read_are_refused(example_module, tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"task": "matching", "data": {"dataset": "shapes"}}))
    with pytest.raises(ValueError, match="is not a Shapes captioning run"):
        example_module("probe_image_tokens.py").probe_run(str(tmp_path))
