"""The `mmkeras` command line: list presets, train, evaluate, use exports."""

import argparse
import json
import sys


def _parser():
    parser = argparse.ArgumentParser(
        prog="mmkeras",
        description="mmkeras: multimodal model zoo for TensorFlow and Keras 3 "
        "(captioning, image-text matching, fusion classifiers).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    sub.add_parser("list", help="list the zoo presets")

    info = sub.add_parser("info", help="print a preset's model card and resolved config")
    info.add_argument("preset")

    train = sub.add_parser("train", help="train a preset, evaluate it, write metrics.json and export it")
    train.add_argument("preset", help="a preset name (see `mmkeras list`)")
    train.add_argument("--output", required=True, help="run directory (local path or gs://)")
    train.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                       help="override a config field, e.g. --set train.epochs=2 (repeatable)")
    train.add_argument("--epochs", type=int, help="shortcut for --set train.epochs=N")
    train.add_argument("--strategy", help="auto, cpu, gpu, mirrored, multi_worker or tpu")
    train.add_argument("--tpu", help="TPU name or address (with --strategy tpu)")
    train.add_argument("--precision", help="float32, mixed_bfloat16 or mixed_float16")
    train.add_argument("--global-batch", type=int, help="global batch size (split over replicas)")
    train.add_argument("--steps-per-execution", type=int)
    train.add_argument("--accumulate", type=int, help="gradient accumulation over N micro-batches")
    train.add_argument("--no-jit", action="store_true", help="disable XLA compilation")
    train.add_argument("--quiet", action="store_true", help="no progress bar")

    evaluate = sub.add_parser("eval", help="re-run the evaluation of a finished run directory")
    evaluate.add_argument("run_dir")

    caption = sub.add_parser("caption", help="caption images with an exported captioner SavedModel")
    caption.add_argument("export_dir", help="a captioner export (RUN_DIR/export)")
    caption.add_argument("images", nargs="+", help="image files (JPEG, PNG, GIF, BMP)")
    return parser


def _overrides(args):
    from mmkeras.config import parse_override

    overrides = dict(parse_override(text) for text in args.set)
    shortcuts = {
        "train.epochs": args.epochs,
        "train.strategy": args.strategy,
        "train.tpu": args.tpu,
        "train.precision": args.precision,
        "train.global_batch_size": args.global_batch,
        "train.steps_per_execution": args.steps_per_execution,
        "train.accumulate": args.accumulate,
        "train.jit_compile": False if args.no_jit else None,
    }
    overrides.update({k: v for k, v in shortcuts.items() if v is not None})
    return overrides


def main(argv=None):
    """Entry point of the `mmkeras` console script.

    Args:
        argv: argument list (defaults to `sys.argv[1:]`).

    Example:

    >>> main(["list"])  # doctest: +ELLIPSIS
    captioner-resnet50 ...
    0
    """
    args = _parser().parse_args(argv)
    if args.command is None:
        _parser().print_help()
        return 0
    try:
        return _run(args)
    except ValueError as error:
        print(f"mmkeras {args.command}: error: {error}", file=sys.stderr)
        return 2


def _run(args):
    from mmkeras import zoo

    if args.command == "list":
        for name in zoo.list():
            preset = zoo.get(name)
            print(f"{name:28s} {preset['task']:11s} {preset.get('description', '')}")
        return 0
    if args.command == "info":
        print(zoo.card(args.preset))
        print(json.dumps(zoo.config(args.preset), indent=2))
        return 0
    from mmkeras.tasks import task_for_config

    if args.command == "train":
        config = zoo.config(args.preset, **_overrides(args))
        task = task_for_config(config, args.output)
        metrics = task.run(verbose=0 if args.quiet else "auto")
        print(json.dumps(metrics, indent=2, sort_keys=True))
        print(f"Run directory: {args.output} (metrics.json, model.keras, export/)")
        return 0
    if args.command == "eval":
        from mmkeras.tasks.run_directory import RunDirectory

        config = RunDirectory(args.run_dir).read_json("config.json")
        task = task_for_config(config, args.run_dir)
        metrics = task.evaluate(task.load_model())
        task.run_dir.write_json("metrics.json", metrics)
        print(json.dumps(metrics, indent=2, sort_keys=True))
        return 0
    if args.command == "caption":
        return _caption(args.export_dir, args.images)
    raise ValueError(f"unknown command {args.command!r}")


def load_export(export_dir, signature):
    """Loads a SavedModel and returns one of its signatures, with clear errors."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401 - registers the tokenizer's ops

    if not tf.io.gfile.exists(f"{export_dir}/saved_model.pb"):
        raise ValueError(f"{export_dir!r} is not a SavedModel directory (no saved_model.pb).")
    serving = tf.saved_model.load(export_dir)
    if signature not in serving.signatures:
        raise ValueError(
            f"{export_dir!r} has no `{signature}` signature (it has: {', '.join(sorted(serving.signatures))}); "
            "is it the right kind of export?"
        )
    return serving.signatures[signature]


def _read_files(paths):
    import tensorflow as tf

    for path in paths:
        if not tf.io.gfile.exists(path):
            raise ValueError(f"image file not found: {path}")
    return [tf.io.gfile.GFile(path, "rb").read() for path in paths]


def _caption(export_dir, paths):
    import tensorflow as tf

    caption = load_export(export_dir, "caption")
    for path, data in zip(paths, _read_files(paths)):
        try:
            out = caption(image_bytes=tf.constant([data]))
        except tf.errors.InvalidArgumentError as error:
            raise ValueError(f"cannot read {path} as an image: {error.message.splitlines()[0]}") from None
        text = out["captions"].numpy()[0].decode("utf-8")
        print(f"{path}\t{text}\t(score {float(out['scores'].numpy()[0]):.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
