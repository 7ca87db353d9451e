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
