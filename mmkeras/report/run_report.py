"""The results of one run (`mmkeras train`, `mmkeras eval`): the printed table and `RUN/report.html`."""

import os
import re

from mmkeras.report.demo_report import DemoReport
from mmkeras.report.run_samples import caption_samples, fusion_confusion, fusion_heads, retrieval_samples


def add_run_samples(report, name, task, model):
    """Adds to `report` what it shows of a trained run besides its numbers, on Shapes or real data:
    caption samples (captioner), retrieval examples (dual encoder) or a confusion matrix per head
    (fusion classifier).

    Args:
        report: a `DemoReport` holding the run as `name`.
        name: the run's name in `report`.
        task: the run's task, evaluated (a captioner's `samples.json` written).
        model: its trained model.

    Example:

    ```python
    report = DemoReport(kinds=("matching",))
    report.add_run("clip", "matching", metrics)
    add_run_samples(report, "clip", task, task.model)
    ```
    """
    family = task.config["task"]
    if family == "captioning":
        report.add_caption_samples(name, caption_samples(task))
    elif family == "matching":
        images = next(r["metrics"].get("num_test_images") for r in report.runs if r["name"] == name)
        report.add_retrieval(name, retrieval_samples(task, model, num_queries=4, k=min(5, images or 5)))
    else:
        predicted = task.evaluated_predictions(model)  # what the metrics counted, predicted once
        for head in fusion_heads(task):
            report.add_confusion(name, fusion_confusion(task, model, head, predicted))


def write_run_report(task, model, metrics, seconds=None, export_dir=None):
    """Writes the report of one evaluated run and returns its results table.

    The page, `report{suffix}.html`, and its plots, `plots{suffix}/*.png`, go into the run
    directory, `suffix` being `task.evaluation_suffix` (as for `metrics{suffix}.json`). They hold
    the results beside their chance level or baseline, the run's data counts (real data), caption
    samples, retrieval examples or confusion matrices, and the loss curves of `history.json`.

    Args:
        task: the run's task, evaluated.
        model: its trained model.
        metrics: the evaluation's metrics (what `metrics.json` holds).
        seconds: how long the run took, if known.
        export_dir: where its SavedModel was exported, if it was.

    Returns:
        `(table, path)`: the results as printed text (as `DemoReport.table`) and the page's path.

    Example:

    ```python
    metrics = task.run()
    table, path = write_run_report(task, task.model, metrics)
    print(table)
    ```
    """
    import tensorflow as tf

    config, suffix = task.config, task.evaluation_suffix
    name = config.get("name") or os.path.basename(task.run_dir.path.rstrip("/"))
    data = config["data"]
    source = "Shapes" if data["dataset"] == "shapes" else f"{data['dataset']}:{data['path']}"
    # "-num_beams=6-length_penalty=-0.5" -> "num_beams=6, length_penalty=-0.5"
    settings = f"; evaluated with {', '.join(re.split(r'-(?=[a-z_]+=)', suffix[1:]))}" if suffix else ""
    report = DemoReport(f"mmkeras: {name}", subtitle=f"{config['task']} on {source}; run directory "
                        f"{task.run_dir.path}{settings}", kinds=(config["task"],))
    history_file = task.run_dir.file("history.json")
    history = task.run_dir.read_json("history.json") if tf.io.gfile.exists(history_file) else {}
    report.add_run(name, config["task"], metrics, history=history, seconds=seconds, export_dir=export_dir)
    add_run_samples(report, name, task, model)
    return report.table(), report.write(task.run_dir.path, suffix=suffix)
