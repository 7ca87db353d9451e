"""`mmkeras train PRESET [--data KIND:PATH] --output DIR`: train, evaluate, write metrics.json and
report.html, print the results table, export."""

import time

NAME = "train"
HELP = "train a preset, evaluate it, write metrics.json and report.html and export it"


def add_arguments(parser):
    parser.add_argument("preset", help="a preset name (see `mmkeras list`)")
    parser.add_argument(
        "--output", required=True,
        help="run directory (local path or gs://); rerunning into it resumes the run, with the same config",
    )
    parser.add_argument(
        "--overwrite", action="store_true",
        help="start afresh: first remove the run already in --output (its config, checkpoints, model, "
        "history, metrics, logs and export; converted data is kept)",
    )
    parser.add_argument(
        "--data", metavar="KIND:PATH",
        help="train on real data instead of Shapes: coco:JSON, flickr:TOKEN_FILE, csv:FILE, jsonl:FILE, "
        "folder:DIR or tfds:NAME (converted once into shards in the run directory)",
    )
    parser.add_argument("--images", help="images folder (coco, flickr, csv, jsonl; default: the file's folder)")
    parser.add_argument("--val-fraction", type=float,
                        help="held-out fraction when the source has no val split (default 0.1)")
    parser.add_argument("--split-json", help="Karpathy split JSON (flickr): its train and val splits are used")
    parser.add_argument("--data-dir", help="TFDS data folder (tfds; never downloads)")
    parser.add_argument("--init", metavar="RUN_DIR",
                        help="start from the model of a run directory (`mmkeras import` of a pretrained checkpoint, "
                        "or an earlier run): matching trains it, captioning puts a new decoder on its image tower, "
                        "fusion the preset's fusion on its towers; from a captioner's run, matching and fusion take "
                        "its image tower with a new text tower; the preprocessing of the towers taken comes along")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                        help="override a config field, e.g. --set train.epochs=2 (repeatable)")
    parser.add_argument("--epochs", type=int, help="shortcut for --set train.epochs=N")
    parser.add_argument("--strategy", help="auto, cpu, gpu, mirrored, multi_worker or tpu")
    parser.add_argument("--tpu", help="TPU name or address (with --strategy tpu)")
    parser.add_argument("--precision", help="auto (the default: bf16 where the device has bf16 units), float32, "
                        "mixed_bfloat16 or mixed_float16")
    parser.add_argument("--global-batch", type=int, help="global batch size (split over replicas)")
    parser.add_argument("--steps-per-execution", type=int)
    parser.add_argument("--accumulate", type=int, help="gradient accumulation over N micro-batches")
    parser.add_argument("--no-jit", action="store_true", help="disable XLA compilation")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--no-eval", action="store_true", help="train only: no evaluation, no metrics.json")
    parser.add_argument("--no-export", action="store_true", help="no SavedModel export")


def overrides(args):
    """The config overrides that `--set` and the shortcut flags ask for."""
    from mmkeras.config import parse_override

    result = dict(parse_override(text) for text in args.set)
    result.update(data_overrides(args))
    shortcuts = {
        "train.epochs": args.epochs,
        "train.strategy": args.strategy,
        "train.tpu": args.tpu,
        "train.precision": args.precision,
        "train.global_batch_size": args.global_batch,
        "train.steps_per_execution": args.steps_per_execution,
        "train.accumulate": args.accumulate,
        "train.jit_compile": False if args.no_jit else None,
        "train.init": args.init,
    }
    result.update({k: v for k, v in shortcuts.items() if v is not None})
    return result


def data_overrides(args):
    """The `data.*` overrides of `--data KIND:PATH` and its companion flags."""
    from mmkeras.data.open_source import RECORD_KINDS

    companions = {
        "data.images": args.images,
        "data.val_fraction": args.val_fraction,
        "data.split_json": args.split_json,
        "data.data_dir": args.data_dir,
    }
    given = {k: v for k, v in companions.items() if v is not None}
    if args.data is None:
        if given:
            flags = ", ".join("--" + k.split(".")[1].replace("_", "-") for k in given)
            raise ValueError(f"{flags} only apply with `--data KIND:PATH`.")
        return {}
    kind, _, path = args.data.partition(":")
    if kind == "shapes" and not path:
        return {"data.dataset": "shapes"}
    if kind not in RECORD_KINDS or not path:
        raise ValueError(
            f"`--data` must be KIND:PATH with KIND one of {', '.join(RECORD_KINDS)} "
            f"(or `shapes`), got {args.data!r}."
        )
    return {"data.dataset": kind, "data.path": path, **given}


def run(args):
    from mmkeras import zoo
    from mmkeras.report.run_report import write_run_report
    from mmkeras.tasks import task_for_config

    config = zoo.config(args.preset, **overrides(args))
    task = task_for_config(config, args.output)
    start = time.perf_counter()
    metrics = task.run(verbose=0 if args.quiet else "auto", evaluate=not args.no_eval, export=not args.no_export,
                       overwrite=args.overwrite)
    if metrics:
        export_dir = None if args.no_export else task.run_dir.export
        table, report = write_run_report(task, task.model, metrics, seconds=round(time.perf_counter() - start, 1),
                                         export_dir=export_dir)
        print()
        print(table)
        print(f"Report: {report}")
    written = ["metrics.json", "report.html"] * bool(metrics) + ["model.keras"] + ["export/"] * (not args.no_export)
    print(f"Run directory: {args.output} ({', '.join(written)})")
    return 0
