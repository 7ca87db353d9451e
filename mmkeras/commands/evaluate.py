"""`mmkeras eval RUN_DIR [--set eval.FIELD=VALUE]`: re-run the evaluation of a finished run."""

import json

NAME = "eval"
HELP = "re-run the evaluation of a finished run directory (optionally with other eval.* settings)"


def add_arguments(parser):
    parser.add_argument("run_dir")
    parser.add_argument(
        "--set", action="append", default=[], metavar="eval.FIELD=VALUE",
        help="evaluate with another eval setting, e.g. --set eval.num_beams=6 (repeatable); the "
        "results go to metrics-num_beams=6.json (and samples-...), beside what training wrote",
    )


def run(args):
    from mmkeras.config import parse_override, resolve_config
    from mmkeras.tasks import task_for_config
    from mmkeras.tasks.run_directory import RunDirectory

    overrides = dict(parse_override(text) for text in args.set)
    for key in overrides:
        if not key.startswith("eval."):
            raise ValueError(
                f"`mmkeras eval --set` changes only `eval.*` fields (the model is already trained), got {key!r}."
            )
    config = RunDirectory(args.run_dir).read_json("config.json")
    task = task_for_config(resolve_config(config, overrides), args.run_dir)
    task.evaluation_suffix = "".join(f"-{key[len('eval.'):]}={value}" for key, value in overrides.items())
    metrics = task.evaluate(task.load_model())
    task.write_evaluation_file("metrics", metrics)
    print(json.dumps(metrics, indent=2, sort_keys=True))
    return 0
