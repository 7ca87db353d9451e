"""The command line and the task shared by the benchmarks that time one `shapes-fusion-early-tiny` model."""

import argparse
import tempfile

from mmkeras import zoo
from mmkeras.commands.demo import demo_config
from mmkeras.tasks import task_for_config

NAME = "shapes-fusion-early-tiny"


def early_fusion_task(description):
    """Parses `--quick` / `--repeats`; returns `(args, task)` for the preset (or the demo's `--quick`) model."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="the demo's --quick model")
    parser.add_argument("--repeats", type=int, default=4)
    args = parser.parse_args()
    config = demo_config(NAME, quick=True) if args.quick else zoo.config(NAME)
    return args, task_for_config(config, tempfile.mkdtemp(prefix="mmkeras-bench-run-"))
