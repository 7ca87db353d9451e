"""`mmkeras train`, SIGKILLed mid-run and restarted, ends with the same weights as an uninterrupted run.

The run takes 3 steps per execution over epochs of 8 batches: Keras then runs
its epochs into the next one's batches, and the resumed run's first `fit`
(the rest of the interrupted epoch) ends mid-chunk. Only the exact batches of
each stretch of training may be trained on, once each.
"""

import json
import os
import signal
import subprocess
import sys
import time

import keras

import mmkeras  # noqa: F401 - registers the model classes for loading
import numpy as np

ARGS = ["train", "shapes-clip-tiny", "--quiet", "--no-eval", "--no-export", "--no-jit", "--epochs", "2", "--global-batch", "32",
        "--set", "data.num_train=256", "--set", "data.num_test=16", "--set", "data.num_val=8",
        "--set", "train.checkpoint_every=4", "--set", "train.deterministic=true", "--steps-per-execution", "3",
        # Small towers: the test is about resuming, not about the model.
        "--set", "data.image_size=32", "--set", "image_encoder.num_layers=1", "--set", "text_encoder.num_layers=1",
        "--set", "train.tower_pretraining_steps=0"]


def _command(run_dir):
    return [sys.executable, "-m", "mmkeras.cli", *ARGS, "--output", str(run_dir)]


def _env():
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def test_resume_after_sigkill_matches_an_uninterrupted_run(tmp_path):
    reference, interrupted = tmp_path / "reference", tmp_path / "interrupted"
    done = subprocess.run(_command(reference), capture_output=True, text=True, timeout=900, env=_env())
    assert done.returncode == 0, done.stderr[-3000:]
    # --no-eval --no-export: training only (the test is about resuming)
    assert (reference / "model.keras").exists()
    assert not (reference / "metrics.json").exists() and not (reference / "export").exists()
    assert "(model.keras)" in done.stdout
    assert "ran out of data" not in done.stderr  # the stream ending is the plan, not a shortage
    assert "UserWarning" not in done.stderr, done.stderr[-2000:]  # nor does `fit` warn about shuffling a dataset
    # Checkpoints as the 3-step chunks cross multiples of 4; the last chunk is cut short at 16.
    assert "ckpt-16" in (reference / "checkpoints" / "checkpoint").read_text()
    assert not list((reference / "checkpoints").glob("ckpt-18*"))

    process = subprocess.Popen(_command(interrupted), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env())
    deadline = time.time() + 600
    state = interrupted / "checkpoints" / "checkpoint"  # updated last, once ckpt-6 is complete
    while not (state.exists() and "ckpt-6" in state.read_text()):
        assert process.poll() is None, "the run ended before its first checkpoint"
        assert time.time() < deadline, "no checkpoint within 10 minutes"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    assert not (interrupted / "model.keras").exists(), "killed after the end of training"

    resumed = subprocess.run(_command(interrupted), capture_output=True, text=True, timeout=900, env=_env())
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from step" in resumed.stdout
    # The history holds both epochs: the one before the kill and the one after.
    history = json.loads((interrupted / "history.json").read_text())
    assert len(history["loss"]) == 2 and all(np.isfinite(history["loss"]))

    expected = keras.saving.load_model(reference / "model.keras").get_weights()
    actual = keras.saving.load_model(interrupted / "model.keras").get_weights()
    for a, e in zip(actual, expected):
        np.testing.assert_allclose(a, e, atol=1e-6, rtol=0)
