"""`mmkeras eval RUN_DIR`: re-run the evaluation of a finished run."""

import json

NAME = "eval"
HELP = "re-run the evaluation of a finished run directory"


def add_arguments(parser):
    parser.add_argument("run_dir")


def run(args):
    from mmkeras.tasks import task_for_config
    from mmkeras.tasks.run_directory import RunDirectory

    config = RunDirectory(args.run_dir).read_json("config.json")
    task = task_for_config(config, args.run_dir)
    metrics = task.evaluate(task.load_model())
    task.run_dir.write_json("metrics.json", metrics)
    print(json.dumps(metrics, indent=2, sort_keys=True))
    return 0
