"""`mmkeras demo --output DIR [--quick]`: the four Shapes showcase models, trained, evaluated,
exported and summarised in one results table and a self-contained HTML report."""

import os
import sys
import time

from mmkeras.durations import format_duration

NAME = "demo"
HELP = "train, evaluate and export the Shapes matching, captioning and fusion models; write an HTML report"

# Early and cross-attention fusion: the two that see how a text and an image interact (late fusion
# cannot, so its matching stays at the image-masked level; see docs/benchmarks.md).
FUSION_MODELS = ("shapes-fusion-early-tiny", "shapes-fusion-cross-attention-tiny")
MODELS = ("shapes-clip-tiny", "shapes-captioner-tiny", *FUSION_MODELS)

# The image tower is trained once, by the captioner (captions say what is where), and shared across the
# families: each of these models starts from the image tower of the captioner's run (`train.init`), with a
# new text tower of its own. The captioner is therefore trained first.
STARTS_FROM = {name: "shapes-captioner-tiny" for name in ("shapes-clip-tiny", *FUSION_MODELS)}
# The fusion models fine-tune the captioner's tower, not locked as the presets lock their own pretrained one:
# locked, early fusion fell from QA 0.617 / matching 0.663 to 0.583 / 0.598 in the demo (cross-attention
# 0.679 / 0.714, 0.675 / 0.721).
# The demo's fusion scores below come from 2 text and 2 fusion layers (the presets' layer counts differ by type).
_FUSION_ON_CAPTIONER_TOWER = {"train.tower_pretraining_steps": 0, "model.freeze_image_encoder": False,
                              "model.heads.cells": None, "text_encoder.num_layers": 2,
                              "model.fusion_kwargs.num_layers": 2}
# In the demo's short budget on the captioner's tower, the presets' cells head, co-attention and mean readout
# cost more than they give (cross-attention QA / matching 0.560 / 0.640 with them, 0.621 / 0.657 with one-way
# attention, 0.679 / 0.714 without the cells head either; early 0.557 / 0.646 against 0.617 / 0.663), and
# co-attention 43 s: the demo's fusion models go without them.
_DEMO_FUSION = {
    "shapes-fusion-early-tiny": {"model.fusion_kwargs.pooling": "cls"},
    "shapes-fusion-cross-attention-tiny": {"model.fusion_kwargs.co_attention": False},
}

# Reduced budgets (config overrides) so that the whole demo fits in ~10 minutes on 2 idle CPU cores.
BUDGETS = {
    # CLIP: 30,000 scenes x 7 epochs (3,281 steps, 44% of the preset's 7,488); its tower, the captioner's, is
    # already pretrained, so no second tower pretraining.
    "shapes-clip-tiny": {"data.num_train": 30000, "data.num_val": 8, "data.num_test": 500, "train.epochs": 7,
                         "train.tower_pretraining_steps": 0},
    # The captioner: its 1,000 tower pretraining steps, then 6 of the preset's 10 epochs (1,122 steps of 1,870).
    "shapes-captioner-tiny": {"data.num_train": 12000, "data.num_val": 8, "data.num_test": 200, "train.epochs": 6},
    # Fusion: two epochs of 6,000 scenes (2,000 steps of 6 scenes x 11 texts), 40% of the presets' budget.
    **{name: {"data.num_train": 6000, "data.num_val": 8, "data.num_test": 150, "train.epochs": 2,
              **_FUSION_ON_CAPTIONER_TOWER, **_DEMO_FUSION[name]} for name in FUSION_MODELS},
}
# --quick: a smoke run of the whole pipeline in under a minute. The towers are shrunk as
# well (32-px images, one Transformer layer each), so its scores say little; use the full demo.
_QUICK_COMMON = {
    "data.num_val": 8, "data.image_size": 32, "image_encoder.num_layers": 1,
    "train.epochs": 1, "train.global_batch_size": 32, "train.jit_compile": False,
    "train.graph_optimization": False, "train.run_eagerly": True, "eval.jit_compile": False,
    "train.tower_pretraining_steps": 0,  # 32-px images give a 2x2 token grid, not the 3x3 cells
}
QUICK_BUDGETS = {
    "shapes-clip-tiny": {**_QUICK_COMMON, "data.num_train": 128, "data.num_test": 64, "text_encoder.num_layers": 1},
    "shapes-captioner-tiny": {**_QUICK_COMMON, "data.num_train": 128, "data.num_test": 12, "model.num_layers": 1,
                              "eval.num_beams": 2, "eval.max_length": 10},
    # Fusion batches hold whole scenes with all 11 of their texts: 33 texts = 3 scenes a step.
    **{name: {**_QUICK_COMMON, **_FUSION_ON_CAPTIONER_TOWER, **_DEMO_FUSION[name], "data.num_train": 16,
              "data.num_test": 24, "train.global_batch_size": 33, "text_encoder.num_layers": 1,
              "model.fusion_kwargs.num_layers": 1}
       for name in FUSION_MODELS},
}


def _subtitle(configs, quick):
    """The report's subtitle: the budget of each model, then which models start from which one's image tower."""
    mode = "quick (smoke-test budget, shrunk towers)" if quick else "reduced budget"
    budgets = []
    for name in MODELS:
        train, data = configs[name]["train"], configs[name]["data"]
        first = (f"{train['tower_pretraining_steps']} tower pretraining steps, then "
                 if train["tower_pretraining_steps"] else "")
        budgets.append(f"{name} {first}{train['epochs']} epoch(s) on {data['num_train']} scenes, "
                       f"{data['num_test']} test scenes")
    shared = [f"{', '.join(n for n in MODELS if STARTS_FROM.get(n) == source)} start from {source}'s image tower"
              for source in sorted(set(STARTS_FROM.values()))]
    return f"{mode}: " + "; ".join(budgets + shared)


def add_arguments(parser):
    parser.add_argument("--output", required=True, help="demo directory: one run per model, report.html, plots/")
    parser.add_argument("--quick", action="store_true",
                        help="tiny data and shrunk towers: checks the whole pipeline in under a minute")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--jobs", type=int, default=None,
                        help="models trained at once, each in its own process (default: one per core, "
                             "at most 4, with --quick; 1 otherwise)")


def demo_config(name, quick=False, output_dir=None):
    """The resolved config the demo trains `name` with (the preset under the demo's budget).

    Args:
        name: one of `MODELS`.
        quick: the `--quick` budget instead of the full one.
        output_dir: the demo directory: a model of `STARTS_FROM` then starts from (`train.init`) the run
            of its source model there.

    Example:

    >>> demo_config("shapes-clip-tiny")["train"]["epochs"]
    7
    >>> demo_config("shapes-clip-tiny", quick=True)["data"]["image_size"]
    32
    """
    from mmkeras import zoo

    if name not in MODELS:
        raise ValueError(f"Unknown demo model {name!r}; valid: {', '.join(MODELS)}.")
    config = zoo.config(name, **(QUICK_BUDGETS if quick else BUDGETS)[name])
    if output_dir is not None and name in STARTS_FROM:
        config["train"]["init"] = _run_dir(output_dir, STARTS_FROM[name])
    return config


def _depth(name):
    """How many runs `name` starts from, one from another (`STARTS_FROM`)."""
    return 0 if name not in STARTS_FROM else 1 + _depth(STARTS_FROM[name])


def _run_dir(output_dir, name):
    return os.path.join(str(output_dir), name)


def _check_output(run_dir, config):
    """A previous run in `run_dir` must have the same config (it is then retrained in place)."""
    import json

    import tensorflow as tf

    path = os.path.join(run_dir, "config.json")
    if tf.io.gfile.exists(path):
        with tf.io.gfile.GFile(path) as f:
            previous = json.load(f)
        if previous != config:
            raise ValueError(
                f"--output: {run_dir} holds a run with another config (a full demo vs --quick?); "
                "choose an empty --output directory."
            )


def _train_one(name, config, run_dir, verbose):
    """Trains, evaluates and exports one demo model; returns what the report needs (plain data).

    A module-level function so that `run_demo(..., jobs=N)` can run it in a worker process.
    """
    from mmkeras.report.run_samples import caption_samples, fusion_confusion, retrieval_samples
    from mmkeras.tasks import task_for_config

    task = task_for_config(config, run_dir)
    start = time.perf_counter()
    metrics = task.run(verbose=verbose)
    if config["task"] == "captioning":
        samples = ("captions", caption_samples(task))
    else:
        model = task.model
        if config["task"] == "matching":
            samples = ("retrieval", retrieval_samples(task, model, num_queries=4, k=5))
        else:
            samples = ("confusion", fusion_confusion(task, model, "answer"))
    return {
        "metrics": metrics,
        "history": task.run_dir.read_json("history.json"),
        "seconds": round(time.perf_counter() - start, 1),
        "export_dir": task.run_dir.export,
        "samples": samples,
    }


def worker_start_method():
    """How `mmkeras demo --jobs N` starts its workers: "fork" if it is safe here, else "spawn".

    A forked worker starts at once with TensorFlow already imported (importing it
    takes about 10 s of CPU), but forking is only safe before this process has
    run TensorFlow: the runtime's thread pools do not survive a fork. So "fork"
    when the eager context was never initialised (as in the `mmkeras` command,
    which has only imported TensorFlow by then), and "spawn", a fresh
    interpreter, once anything has run (e.g. `run_demo` called from a program
    or a test that has trained before). Forking is used on Linux only.

    Example:

    >>> import tensorflow as tf
    >>> _ = tf.constant(1.0)  # TensorFlow has run: its thread pools exist
    >>> worker_start_method()
    'spawn'
    """
    from tensorflow.python.eager import context

    # `_initialized` is private: if a TensorFlow release drops it, fall back to the safe choice.
    untouched = getattr(context.context(), "_initialized", True) is False
    # Linux only: on macOS, system frameworks that TensorFlow loads are not fork-safe.
    return "fork" if untouched and sys.platform.startswith("linux") else "spawn"


def _train_in_parallel(configs, run_dirs, jobs, log):
    """Trains the models in this process and `jobs - 1` worker processes; returns their results.

    The workers start first (forked, when `worker_start_method` allows it, with
    TensorFlow already imported); then this process trains too. Each process
    takes the next model, in `configs` order, when it is free and the run that
    model starts from (`STARTS_FROM`) is done; until then it waits.
    """
    import concurrent.futures
    import multiprocessing
    import threading

    pending, done, results, errors = list(configs), set(), {}, []
    changed = threading.Condition()

    def next_model():
        with changed:
            while pending and not errors:
                name = next((n for n in pending if STARTS_FROM.get(n) in done | {None}), None)
                if name is not None:
                    pending.remove(name)
                    return name
                changed.wait()
            return None

    def drain(train):
        while (name := next_model()) is not None:
            try:
                result = train(name)
            except BaseException as error:  # re-raised below, in the calling thread
                with changed:
                    errors.append(error)
                    changed.notify_all()
                return
            with changed:
                results[name] = result
                done.add(name)
                changed.notify_all()
            log(f"    {name} done in {format_duration(result['seconds'])} -> {run_dirs[name]} "
                "(metrics.json, export/)")

    method = worker_start_method()
    context = multiprocessing.get_context(method)
    with concurrent.futures.ProcessPoolExecutor(max_workers=jobs - 1, mp_context=context) as pool:
        pool.submit(os.getpid)  # starts the workers now: a fork must come before this process trains
        log(f"    {jobs - 1} worker{'s' if jobs > 2 else ''} {'forked' if method == 'fork' else 'spawned'}")
        remote = lambda name: pool.submit(_train_one, name, configs[name], run_dirs[name], 0).result()  # noqa: E731
        feeders = [threading.Thread(target=drain, args=(remote,)) for _ in range(jobs - 1)]
        for feeder in feeders:
            feeder.start()
        drain(lambda name: _train_one(name, configs[name], run_dirs[name], 0))
        for feeder in feeders:
            feeder.join()
    if errors:
        raise errors[0]
    return results


def default_jobs(quick):
    """Processes `mmkeras demo` trains in by default: one per core (at most 4) for `--quick`, else 1.

    A quick run is mostly single-threaded work (tracing, exporting), which parallel
    processes overlap; the full demo is mostly training, which already uses every core.

    Example:

    >>> default_jobs(quick=False)
    1
    """
    return max(1, min(len(MODELS), os.cpu_count() or 1)) if quick else 1


def run_demo(output_dir, quick=False, verbose="auto", log=print, jobs=1):
    """Trains, evaluates and exports the demo models, then writes `report.html` and `plots/`.

    Each model's run directory is `output_dir/<model>` (`metrics.json`, `history.json`,
    `samples.json` for the captioner, `export/`). A model of `STARTS_FROM` starts from the image
    tower of its source model's run, trained before it.

    Args:
        output_dir: the demo directory (local path or `gs://`).
        quick: use `QUICK_BUDGETS` (a smoke run) instead of `BUDGETS`.
        verbose: Keras `fit` verbosity ("auto" shows progress bars, 0 none); with
            `jobs > 1` the workers never show progress bars.
        log: called with each status line.
        jobs: int >= 1, models trained at once, each in its own process (see
            `worker_start_method`). The report and table are the same for any value.

    Returns:
        The `DemoReport` (its `table()` is the results table).

    Example:

    ```python
    report = run_demo("runs/demo", quick=True, jobs=2)
    print(report.table())
    ```
    """
    from mmkeras.report.demo_report import DemoReport

    if int(jobs) < 1:
        raise ValueError(f"`jobs` (--jobs) must be an int >= 1, got {jobs!r}.")
    jobs = min(int(jobs), len(MODELS))
    # Trained in `MODELS` order, except that a model comes after the one it starts from.
    configs = {name: demo_config(name, quick, output_dir) for name in sorted(MODELS, key=_depth)}
    run_dirs = {name: _run_dir(output_dir, name) for name in MODELS}
    for name, config in configs.items():
        _check_output(run_dirs[name], config)
    report = DemoReport("mmkeras demo", subtitle=_subtitle(configs, quick))
    started = time.perf_counter()

    def announce(index, name):
        config = configs[name]
        data, train = config["data"], config["train"]
        start = f", image tower from {STARTS_FROM[name]}" if name in STARTS_FROM else ""
        log(f"[{index}/{len(configs)}] {name} ({config['task']}{start}): {train['epochs']} epoch(s) on "
            f"{data['num_train']} Shapes scenes, evaluation on {data['num_test']} held-out scenes, export")

    results = {}
    if jobs == 1:
        for index, name in enumerate(configs, 1):
            announce(index, name)
            results[name] = _train_one(name, configs[name], run_dirs[name], verbose)
            log(f"    done in {format_duration(results[name]['seconds'])} -> {run_dirs[name]} (metrics.json, export/)")
    else:
        log(f"Training the {len(MODELS)} models in {jobs} processes (this one and {jobs - 1} "
            f"worker{'s' if jobs > 2 else ''}; no progress bars).")
        for index, name in enumerate(configs, 1):
            announce(index, name)
        results = _train_in_parallel(configs, run_dirs, jobs, log)
    for name in MODELS:  # the report lists the models in their fixed order
        result, config = results[name], configs[name]
        report.add_run(name, config["task"], result["metrics"], history=result["history"],
                       seconds=result["seconds"], export_dir=result["export_dir"])
        kind, inputs = result["samples"]
        {"captions": report.add_caption_samples, "retrieval": report.add_retrieval,
         "confusion": report.add_confusion}[kind](name, inputs)
    path = report.write(output_dir)
    log(f"Total: {format_duration(time.perf_counter() - started)}. Report: {path} (plots in "
        f"{os.path.join(str(output_dir), 'plots')})")
    return report


def run(args):
    jobs = default_jobs(args.quick) if args.jobs is None else args.jobs
    report = run_demo(args.output, quick=args.quick, verbose=0 if args.quiet else "auto",
                      log=lambda line: print(line, flush=True), jobs=jobs)
    print()
    print(report.table())
    return 0
