"""`MultiWorkerMirroredStrategy` over two local worker processes equals one process.

Two worker processes on 127.0.0.1 (free ports, `TF_CONFIG` per process) train
the tiny Shapes CLIP dual encoder of `multi_worker_train.py` through
`mmkeras.tasks` (`train.strategy=multi_worker`): each worker holds half of every
global batch and the CLIP loss gathers the embeddings of both workers, so the
negatives cross the workers. A third process trains the same config on one
device. The test checks that

- the final weights and the loss equal the single-process run (1e-5);
- every model / optimizer / metric variable `Task.train` made is a distributed
  variable (built inside `strategy.scope()`);
- only the chief writes the run directory and its checkpoints; the other
  worker writes to a scratch directory that is emptied after each save;
- a fresh `Task` on the finished run restores the chief's newest checkpoint on
  both workers;
- `train.steps_per_execution` > 1 trains, one step per call on the workers.

Every process is killed on timeout or failure.
"""

import json
import os
import subprocess
import sys
import time

import numpy as np

from mmkeras.testing.distributed import child_environment, free_ports, tf_config

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "multi_worker_train.py")
TIMEOUT = 240


def _start(role, run_dir, results_dir, log_path, extra_env):
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [sys.executable, SCRIPT, role, str(run_dir), str(results_dir)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=child_environment(extra_env),
    )
    return proc, log


def _wait_all(procs, timeout):
    deadline = time.monotonic() + timeout
    for name, (proc, _) in procs.items():
        remaining = max(deadline - time.monotonic(), 1.0)
        try:
            proc.wait(timeout=remaining)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{name} ran past {timeout} s") from None
        if proc.returncode != 0:
            # A failed worker leaves its peer blocked in a collective: stop now.
            raise AssertionError(f"{name} exited with {proc.returncode}")


def _weights(path, prefix):
    data = np.load(path)
    count = len([k for k in data.files if k.startswith(prefix)])
    return [data[f"{prefix}{i}"] for i in range(count)]


def test_multi_worker_training_equals_single_process(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    ports = free_ports(2)
    procs = {}
    try:
        for index in range(2):
            env = {"TF_CONFIG": tf_config(ports, index), "CUDA_VISIBLE_DEVICES": "-1"}
            procs[f"worker{index}"] = _start(
                "worker", tmp_path / "multi", results, tmp_path / f"worker{index}.log", env
            )
        procs["single"] = _start(
            "single", tmp_path / "single", results, tmp_path / "single.log",
            {"TF_CONFIG": None, "CUDA_VISIBLE_DEVICES": "-1"},
        )
        try:
            _wait_all(procs, TIMEOUT)
        except AssertionError as error:
            logs = "\n".join(
                f"--- {name} ---\n{(tmp_path / f'{name}.log').read_text()[-3000:]}" for name in procs
            )
            raise AssertionError(f"{error}\n{logs}") from None
    finally:
        for proc, log in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
            log.close()

    info = {name: json.loads((results / f"{name}.json").read_text()) for name in procs}
    final = {name: _weights(results / f"{name}.npz", "final_") for name in procs}
    chief, other, single = info["worker0"], info["worker1"], info["single"]
    assert chief["strategy"] in ("MultiWorkerMirroredStrategy", "CollectiveAllReduceStrategy")
    assert chief["replicas"] == 2
    assert single["replicas"] == 1
    # `train.steps_per_execution`=3: one step per call on the workers, three on one device.
    assert chief["steps_per_execution"] == other["steps_per_execution"] == 1 and single["steps_per_execution"] == 3

    # Every variable built inside the strategy scope.
    for name in ("worker0", "worker1"):
        assert info[name]["num_variables"] > 20
        assert info[name]["outside_scope"] == [], info[name]["outside_scope"]

    # Only the chief writes the run directory.
    assert chief["is_chief"] and chief["writes_to_run_dir"]
    assert not other["is_chief"] and not other["writes_to_run_dir"]
    assert not other["scratch_checkpoints_left"]
    run_dir = tmp_path / "multi"
    assert {"checkpoints", "config.json", "model.keras"} <= {p.name for p in run_dir.iterdir()}
    with open(run_dir / "checkpoints" / "checkpoint") as f:
        state = f.read()
    assert 'model_checkpoint_path: "ckpt-3"' in state and "ckpt-1" not in state  # keep=2

    # Both workers restored the chief's last checkpoint into a fresh Task.
    for name in ("worker0", "worker1"):
        for a, b in zip(final[name], _weights(results / f"{name}.npz", "restored_")):
            np.testing.assert_array_equal(a, b)

    # Same training as one process on the same global batch (checked last).
    diffs = [float(np.max(np.abs(a - b))) for a, b in zip(final["worker0"], final["single"])]
    moved = max(
        float(np.max(np.abs(a - b)))
        for a, b in zip(final["single"], _weights(results / "single.npz", "restored_"))
    )
    assert moved == 0.0  # restored == final for the single run too
    for a, b in zip(final["worker0"], final["worker1"]):
        np.testing.assert_array_equal(a, b)
    loss_diff = abs(chief["history"]["loss"][0] - single["history"]["loss"][0])
    print(f"max |w_multi_worker - w_single| = {max(diffs):.3g}, |loss difference| = {loss_diff:.3g}")
    assert max(diffs) <= 1e-5 and loss_diff <= 1e-5, (max(diffs), loss_diff)
