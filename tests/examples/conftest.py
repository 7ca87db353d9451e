"""Runs an `examples/` script in a fresh CPU-only process, as a user would."""

import importlib.util
import os
import subprocess
import sys

import pytest

from mmkeras.testing.distributed import child_environment

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "examples")


@pytest.fixture
def run_example():
    """`run_example("script.py", *args)` -> the finished process (its exit status must be 0)."""

    def run(script, *args):
        proc = subprocess.run(
            [sys.executable, os.path.join(EXAMPLES, script), *map(str, args)],
            capture_output=True, text=True, timeout=300, env=child_environment({"CUDA_VISIBLE_DEVICES": "-1"}),
        )
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
        return proc

    return run


@pytest.fixture
def example_module():
    """`example_module("script.py")` -> the script imported as a module (its functions, without running it)."""

    def load(script):
        spec = importlib.util.spec_from_file_location(script[: -len(".py")], os.path.join(EXAMPLES, script))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load
