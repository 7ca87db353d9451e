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
