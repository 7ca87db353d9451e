import json
import os
import subprocess
import sys

from mmkeras import cli
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



def _fresh_cli(argv, level=None):
    """In a fresh process: `main(argv)`, then its exit status, stdout and stderr, which of TensorFlow,
    Keras and keras-hub it imported, and TF_CPP_MIN_LOG_LEVEL (`level` is the user's value)."""
    script = (
        "import contextlib, io, json, os, sys\n"
        "from mmkeras.cli import main\n"
        "out, err = io.StringIO(), io.StringIO()\n"
        "with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):\n"
        "    try:\n"
        f"        status = main({argv!r})\n"
        "    except SystemExit as stop:  # --help\n"
        "        status = stop.code\n"
        "print(json.dumps({'status': status, 'stdout': out.getvalue(), 'stderr': err.getvalue(),\n"
        "                  'imported': [m for m in ('tensorflow', 'keras', 'keras_hub') if m in sys.modules],\n"
        "                  'level': os.environ.get('TF_CPP_MIN_LOG_LEVEL')}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    if level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = level
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0 and not done.stderr, done.stderr[-2000:]
    return json.loads(done.stdout.splitlines()[-1])


def test_help_and_list_load_no_tensorflow_and_print_nothing_on_stderr():
    for argv, expected in ((["--help"], "COMMAND"), (["train", "--help"], "--output"), (["list"], "shapes-clip-tiny"),
                           (["info", "shapes-clip-tiny"], '"global_batch_size": 64')):
        result = _fresh_cli(argv)
        assert result["status"] == 0 and expected in result["stdout"], (argv, result)
        assert result["stderr"] == "" and result["imported"] == [], (argv, result)


def test_other_commands_keep_tensorflow_quiet_unless_verbose():
    quiet = _fresh_cli(["eval", "/nonexistent-run"])
    assert quiet["status"] == 2 and "tensorflow" in quiet["imported"]
    # One line, the error; none of TensorFlow's start-up lines.
    assert quiet["stderr"].count("\n") == 1 and quiet["stderr"].startswith("mmkeras eval: error:"), quiet
    assert quiet["level"] == cli.QUIET_ENVIRONMENT["TF_CPP_MIN_LOG_LEVEL"]
    assert _fresh_cli(["--verbose", "list"])["level"] is None
    assert _fresh_cli(["list", "--verbose"])["level"] is None
    assert _fresh_cli(["list"], level="1")["level"] == "1"  # the user's choice is kept


def _load_a_fake_tensorflow(tmp_path, body):
    """In a fresh process: `quiet_tensorflow()` loading a `tensorflow` module that writes
    "loading" on stderr (file descriptor 2), then runs `body`; returns the finished process."""
    (tmp_path / "tensorflow.py").write_text(f"import os\nos.write(2, b'loading\\n')\n{body}\n")
    script = (
        f"import sys; sys.path.insert(0, {str(tmp_path)!r})\n"
        "from mmkeras.cli import quiet_tensorflow\n"
        "quiet_tensorflow()\n"
        "print('tensorflow' in sys.modules)\n"
    )
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)


def test_tensorflow_loads_silently_but_a_failed_load_shows_its_output(tmp_path):
    loaded = _load_a_fake_tensorflow(tmp_path, "")
    assert (loaded.returncode, loaded.stdout, loaded.stderr) == (0, "True\n", "")
    failed = _load_a_fake_tensorflow(tmp_path, "raise ImportError('no TensorFlow here')")
    assert failed.returncode == 1 and failed.stderr.startswith("loading\n") and "no TensorFlow here" in failed.stderr


def test_runs_as_a_module():
    done = subprocess.run([sys.executable, "-m", "mmkeras.cli", "list"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "shapes-clip-tiny" in done.stdout and done.stderr == ""
