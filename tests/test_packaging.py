"""setup.cfg lists every package, and the presets ship as package data."""

import configparser
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_every_package_is_listed_in_setup_cfg():
    parser = configparser.ConfigParser()
    parser.read(os.path.join(ROOT, "setup.cfg"))
    listed = set(parser["options"]["packages"].split())
    found = {
        os.path.relpath(dirpath, ROOT).replace(os.sep, ".")
        for dirpath, _, files in os.walk(os.path.join(ROOT, "mmkeras"))
        if "__init__.py" in files
    }
    assert found | {"mmkeras.presets"} == listed


def test_non_editable_wheel_ships_the_presets(tmp_path):
    import subprocess
    import sys
    import zipfile

    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", ROOT, "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    (wheel,) = tmp_path.glob("mmkeras-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "mmkeras/presets/shapes-clip-tiny.json" in names
    assert "mmkeras/presets/shapes-clip-tiny.md" in names
    assert "mmkeras/layers/transformer_encoder_block.py" in names
