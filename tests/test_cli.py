import os
import subprocess
import sys

from mmkeras.cli import main


def test_help_and_list(capsys):
    assert main(["list"]) == 0
    assert "shapes-clip-tiny" in capsys.readouterr().out
    out = subprocess.run([sys.executable, "-m", "mmkeras.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "train" in out.stdout and "eval" in out.stdout


def test_clear_errors(capsys, tmp_path):
    assert main(["train", "no-such-preset", "--output", str(tmp_path)]) == 2
    assert "valid presets" in capsys.readouterr().err
    assert main(["train", "shapes-clip-tiny", "--output", str(tmp_path), "--set", "train.epoch=1"]) == 2
    assert "train.epoch" in capsys.readouterr().err
    assert main(["eval", str(tmp_path / "not-a-run")]) == 2
    assert "run directory" in capsys.readouterr().err


def _allocator_choice_seen_by_the_command(env_value):
    """In a fresh process: run `mmkeras list` and report the allocator choice its command runs with.

    The CLI's job is to set `TF_CPU_ALLOCATOR_USE_BFC` before any command runs (TensorFlow reads
    it at its first allocation, which no command has made yet), keeping a value the user set. The
    allocator's own behaviour differs between hosts and TensorFlow builds, so it is not checked.
    """
    env = {k: v for k, v in os.environ.items() if k != "TF_CPU_ALLOCATOR_USE_BFC"}
    if env_value is not None:
        env["TF_CPU_ALLOCATOR_USE_BFC"] = env_value
    script = (
        "import contextlib, io, os\n"
        "from mmkeras.cli import main\n"
        "from mmkeras.commands import list_presets\n"
        "seen, run = [], list_presets.run\n"
        "list_presets.run = lambda args: seen.append(os.environ.get('TF_CPU_ALLOCATOR_USE_BFC', '<unset>')) or run(args)\n"
        "with contextlib.redirect_stdout(io.StringIO()): status = main(['list'])\n"
        "print(status, seen[0])\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip().splitlines()[-1]


def test_the_cli_makes_tensorflow_reuse_cpu_buffers_unless_the_user_chose():
    assert _allocator_choice_seen_by_the_command(None) == "0 true"
    assert _allocator_choice_seen_by_the_command("false") == "0 false"
