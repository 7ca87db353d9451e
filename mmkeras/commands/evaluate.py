"""`mmkeras eval RUN_DIR [--set eval.FIELD=VALUE]`: re-run the evaluation of a finished run, print
the results table and write metrics.json and report.html."""

NAME = "eval"
HELP = "re-run the evaluation of a finished run directory (optionally with other eval.* settings)"


def add_arguments(parser):
    parser.add_argument("run_dir")
    parser.add_argument(
        "--set", action="append", default=[], metavar="eval.FIELD=VALUE",
        help="evaluate with another eval setting, e.g. --set eval.num_beams=6 (repeatable); the "
        "results go to metrics-num_beams=6.json (and samples-..., report-...html), beside what training wrote",
    )


def run(args):
    from mmkeras.config import parse_override, resolve_config
    from mmkeras.report.run_report import write_run_report
    from mmkeras.tasks import task_for_config
    from mmkeras.tasks.run_directory import RunDirectory

    overrides = dict(parse_override(text) for text in args.set)
    for key in overrides:
        if not key.startswith("eval."):
            raise ValueError(
                f"`mmkeras eval --set` changes only `eval.*` fields (the model is already trained), got {key!r}."
            )
    config = resolve_config(RunDirectory(args.run_dir, create=False).read_json("config.json"), overrides)
    task = task_for_config(config, args.run_dir)
    task.evaluation_suffix = evaluation_suffix(overrides, config)
    model = task.load_model()
    metrics = task.evaluate(model)
    task.write_evaluation_file("metrics", metrics)
    table, report = write_run_report(task, model, metrics)
    print(table)
    print(f"Metrics: {task.run_dir.file(f'metrics{task.evaluation_suffix}.json')}. Report: {report}")
    return 0


def evaluation_suffix(overrides, config):
    """The file-name suffix of an evaluation with `overrides` (e.g. `-num_beams=6-length_penalty=0.5`).

    Each value is spelled as the resolved `config` holds it, so `eval.length_penalty=0` and
    `eval.length_penalty=0.0` name the same files.
    """
    return "".join(f"-{field}={config['eval'][field]}" for field in (key[len("eval."):] for key in overrides))
