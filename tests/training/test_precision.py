"""`train.precision="auto"`: what a run chooses on each kind of device, and that it says so."""

import keras
import pytest

from mmkeras import zoo
from mmkeras.training import precision
from mmkeras.training.precision import resolve_precision

TINY = {"data.num_train": 16, "data.num_val": 8, "data.num_test": 8, "data.image_size": 32,
        "image_encoder.num_layers": 1, "text_encoder.num_layers": 1, "train.global_batch_size": 8,
        "train.epochs": 1, "train.precision": "auto", "train.steps_per_execution": 1,
        "train.tower_pretraining_steps": 0}


@pytest.fixture
def restore_policy():
    yield
    keras.config.set_dtype_policy("float32")


def test_auto_chooses_by_device():
    assert resolve_precision("auto", gpus=[], flags={"amx_bf16", "avx512f"})[:2] == ("mixed_bfloat16", False)
    assert resolve_precision("auto", jit_compile=False, gpus=[], flags=set())[:2] == ("float32", False)
    policy, jit, reason = resolve_precision("auto", gpus=[("NVIDIA H100", (9, 0))])
    assert (policy, jit) == ("mixed_bfloat16", True) and "H100" in reason and "9.0" in reason
    assert resolve_precision("auto", jit_compile=False, gpus=[("V100", (7, 0))])[:2] == ("float32", False)
    # An explicit precision is kept, with the configured XLA setting.
    assert resolve_precision("mixed_float16", gpus=[("V100", (7, 0))])[:2] == ("mixed_float16", True)


def test_this_machines_cpu_flags_are_read():
    flags = precision.cpu_flags()
    assert isinstance(flags, frozenset)
    with open("/proc/cpuinfo") as f:
        assert bool(flags) == any(line.startswith("flags") for line in f)


@pytest.mark.parametrize("flags, policy, jit, compute", [
    ({"avx512_bf16"}, "mixed_bfloat16", False, "bfloat16"),
    ({"avx2"}, "float32", True, "float32"),
])
def test_a_run_uses_and_prints_the_choice(tmp_path, capsys, monkeypatch, restore_policy, flags, policy, jit, compute):
    from mmkeras.tasks import task_for_config

    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset(flags))
    monkeypatch.setattr(precision, "_visible_gpus", lambda: [])
    task = task_for_config(zoo.config("shapes-clip-tiny", **TINY), str(tmp_path))
    assert (task.precision, task.jit_compile) == (policy, jit)
    model = task.train(verbose=1)
    out = capsys.readouterr().out
    assert f"mmkeras: precision {policy}, {'with' if jit else 'without'} XLA (auto: CPU" in out
    assert model.image_encoder.compute_dtype == compute and model.jit_compile is jit
    assert task.run_dir.read_json("config.json")["train"]["precision"] == "auto"  # resumes on any device
