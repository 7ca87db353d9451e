"""Run-directory integrity: one trainer per run, resumes only with the run's own config, whole
histories, artifacts replaced atomically, clear one-line errors for unusable run directories."""

import errno
import json
import os
import socket
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from mmkeras.cli import main
from mmkeras.tasks.run_directory import LOCK_FILE, RunDirectory
from mmkeras.training.resumable_checkpoint import ResumableCheckpoint

# Two steps per epoch on the smallest towers.
TINY = ["--quiet", "--no-eval", "--no-export", "--no-jit", "--epochs", "1", "--global-batch", "8",
        "--set", "data.num_train=16", "--set", "data.num_test=8", "--set", "data.num_val=4",
        "--set", "data.image_size=32", "--set", "image_encoder.num_layers=1", "--set", "text_encoder.num_layers=1",
        "--set", "train.graph_optimization=false", "--set", "train.tower_pretraining_steps=0"]


def _train(run, *extra):
    return main(["train", "shapes-clip-tiny", *TINY, "--output", str(run), *extra])


def _error_line(capsys):
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished one-epoch run (tests that use it leave it as they found it)."""
    run = tmp_path_factory.mktemp("finished") / "run"
    assert _train(run) == 0
    return run


def test_a_second_trainer_fails_at_once_naming_the_process_that_holds_the_run(tmp_path, capsys):
    run = tmp_path / "run"
    hold = "import sys\nfrom mmkeras.tasks.run_directory import RunDirectory\n" \
           "with RunDirectory(sys.argv[1]).lock():\n    sys.stdin.read()\n"
    holder = subprocess.Popen([sys.executable, "-c", hold, str(run)], stdin=subprocess.PIPE,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    try:
        deadline = time.time() + 120
        while not (run / LOCK_FILE).exists():
            assert holder.poll() is None, "the lock holder exited"
            assert time.time() < deadline, "no lock within 2 minutes"
            time.sleep(0.05)
        start = time.time()
        assert _train(run) == 2
        err = _error_line(capsys)
        assert f"process {holder.pid}" in err and str(run) in err
        assert time.time() - start < 60 and not (run / "config.json").exists()
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    assert not (run / LOCK_FILE).exists()

    # A lock left by a process that died (on this host) is taken over.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait(timeout=60)
    (run / LOCK_FILE).write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname()}))
    with RunDirectory(run).lock():
        assert json.loads((run / LOCK_FILE).read_text())["pid"] == os.getpid()
    assert not (run / LOCK_FILE).exists()


def test_the_lock_is_exclusive_within_a_process_too(tmp_path):
    run = RunDirectory(tmp_path)
    with run.lock():
        with pytest.raises(ValueError, match=rf"in use by process {os.getpid()}"):
            with run.lock():
                pass
    with run.lock():  # released
        pass


def test_a_run_resumes_only_with_its_own_config_keeps_its_history_and_starts_afresh_on_request(tmp_path, capsys):
    run = tmp_path / "run"
    assert _train(run) == 0
    first = json.loads((run / "history.json").read_text())
    assert len(first["loss"]) == 1
    checkpoints = {p.name: p.read_bytes() for p in (run / "checkpoints").iterdir()}
    config = (run / "config.json").read_text()
    capsys.readouterr()

    # Another config: refused, naming the differing field; nothing is touched.
    assert _train(run, "--set", "image_encoder.hidden_dim=64", "--set", "train.learning_rate=0.01") == 2
    out, err = capsys.readouterr()
    assert "image_encoder.hidden_dim" in err and "train.learning_rate" in err and "--overwrite" in err
    assert "corrupt or partial" not in out
    assert {p.name: p.read_bytes() for p in (run / "checkpoints").iterdir()} == checkpoints
    assert (run / "config.json").read_text() == config

    # Training longer resumes, and the history keeps the first epoch.
    assert _train(run, "--epochs", "2") == 0
    assert "resuming from step 2" in capsys.readouterr().out
    history = json.loads((run / "history.json").read_text())
    assert len(history["loss"]) == 2 and history["loss"][0] == first["loss"][0]

    # Rerunning a finished run keeps its history.
    assert _train(run, "--epochs", "2") == 0
    assert json.loads((run / "history.json").read_text()) == history
    capsys.readouterr()

    # --overwrite starts afresh with the new config.
    assert _train(run, "--overwrite", "--set", "image_encoder.hidden_dim=64") == 0
    assert "resuming" not in capsys.readouterr().out
    assert json.loads((run / "config.json").read_text())["image_encoder"]["hidden_dim"] == 64
    assert len(json.loads((run / "history.json").read_text())["loss"]) == 1
    assert sorted(p.name for p in (run / "checkpoints").glob("*.index")) == ["ckpt-2.index"]


def test_a_failed_model_save_keeps_the_previous_model(finished_run, monkeypatch, capsys):
    before = (finished_run / "model.keras").read_bytes()

    def save_until_the_disk_is_full(self, filepath, *args, **kwargs):
        with open(filepath, "wb") as f:
            f.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(keras.Model, "save", save_until_the_disk_is_full)
    assert _train(finished_run) == 2
    assert "model.keras" in _error_line(capsys)
    assert (finished_run / "model.keras").read_bytes() == before
    assert sorted(p.name for p in finished_run.iterdir() if "tmp" in p.name) == []


def test_a_failed_json_write_keeps_the_previous_file(tmp_path, monkeypatch):
    run = RunDirectory(tmp_path)
    run.write_json("history.json", {"loss": [1.0]})

    def dump_until_the_disk_is_full(data, f, **kwargs):
        f.write("{")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(json, "dump", dump_until_the_disk_is_full)
    with pytest.raises(OSError, match="history.json"):
        run.write_json("history.json", {"loss": [2.0]})
    monkeypatch.undo()
    assert run.read_json("history.json") == {"loss": [1.0]}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.json"]


def test_leftover_temporary_checkpoint_directories_are_removed_at_restore(tmp_path):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    model.fit(np.ones((4, 2)), np.ones((4, 1)), batch_size=2, verbose=0,
              callbacks=[ResumableCheckpoint(str(tmp_path), every_n_steps=1)])
    leftover = tmp_path / "ckpt-3_temp"
    leftover.mkdir()
    (leftover / "part-00000-of-00001.data-00000-of-00001").write_bytes(b"half")
    assert ResumableCheckpoint(str(tmp_path)).restore(model) == 2
    assert not leftover.exists() and (tmp_path / "ckpt-2.index").exists()


def test_an_unusable_output_is_a_one_line_error_naming_it(tmp_path, capsys, monkeypatch):
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory")
    assert _train(a_file) == 2
    assert str(a_file) in _error_line(capsys)

    # A read-only file system (or an immutable directory): creating any file in it fails.
    read_only = tmp_path / "read-only"
    read_only.mkdir()
    real_open = os.open

    def refusing_open(path, *args, **kwargs):
        if str(path).startswith(str(read_only)):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", refusing_open)
    assert _train(read_only) == 2
    line = _error_line(capsys)
    assert str(read_only) in line and "Read-only file system" in line


def test_divergence_is_a_one_line_error_naming_the_last_good_checkpoint(tmp_path, capsys):
    run = tmp_path / "run"
    diverging = ["--set", "train.learning_rate=1e30", "--set", "train.warmup_fraction=0",
                 "--set", "train.checkpoint_every=1", "--steps-per-execution", "1"]  # a checkpoint after step 1
    assert _train(run, *diverging) == 2
    err = _error_line(capsys)
    assert "diverged" in err
    named = [p for p in (run / "checkpoints").glob("ckpt-*.index") if str(p)[: -len(".index")] in err]
    assert len(named) == 1, err


def test_eval_of_a_missing_run_creates_nothing(tmp_path, capsys):
    typo = tmp_path / "typo"
    assert main(["eval", str(typo)]) == 2
    assert "run directory" in _error_line(capsys)
    assert not typo.exists()
