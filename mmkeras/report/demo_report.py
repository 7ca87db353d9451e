"""The results of `mmkeras demo` and of every run: the printed table, `report.html` and the PNG plots beside it."""

import math
import os

import numpy as np

from mmkeras.durations import format_duration
from mmkeras.report.html_report import HtmlReport
from mmkeras.report.plots import GREEN, RED, encode_png, heatmap, image_grid, line_plot, render, stack

TASK_KINDS = ("matching", "captioning", "fusion")
SECTIONS = {
    "results": "Results",
    "captions": "Captioning: generated and reference captions",
    "retrieval": "Text-to-image retrieval",
    "fusion": "Fusion classifiers",
    "curves": "Training curves",
}
_MATCHING_ROWS = [(f"{d} R@{k}", f"{d}_r{k}") for d in ("i2t", "t2i") for k in (1, 5, 10)]
# Caption accuracy (captions true of their scene) exists for Shapes only: rows missing from a run are left out.
_CAPTIONING_ROWS = [
    ("BLEU-4", "bleu_4"),
    ("CIDEr-D", "cider_d"),
    ("caption accuracy", "caption_accuracy"),
    ("shape-caption acc", "shape_caption_accuracy"),
]
# Fusion rows: (label, key, reference kind, reference from the metrics). Shapes runs have the heads
# "answer" and "match" (prefixed keys); real-data runs one head, "label" (unprefixed keys).
_FUSION_ROWS = [
    ("QA accuracy", "answer_accuracy", "majority class", lambda m: _majority_share(m.get("answer", {}))),
    ("matching accuracy", "match_accuracy", "majority class", lambda m: _majority_share(m.get("match", {}))),
    ("accuracy", "accuracy", "majority class", lambda m: m.get("baseline_majority_accuracy")),
    ("macro-F1", "macro_f1", None, lambda m: None),
    ("AUROC", "auroc", "chance", lambda m: 0.5),
    ("AUROC, one-vs-rest", "auroc_ovr_macro", "chance", lambda m: 0.5),
]
# Data counts of real-data runs (no reference).
_DATA_ROWS = [("train records", "num_train_records"), ("held-out records", "num_held_out_records"),
              ("skipped records", "num_skipped_records")]
NO_REFERENCE = "\u2014"  # shown where a metric has no chance level or baseline
# Reference rankers of matching runs (`metrics["references"]`, Shapes), by their name in the table.
_REFERENCE_NAMES = (("bag_of_attributes", "bag of attributes"), ("bayes_oracle", "ceiling"))
_FUSION_DETAIL = [
    ("QA accuracy", "answer_accuracy"),
    ("QA accuracy, exists", "answer_accuracy_exists"),
    ("QA accuracy, count", "answer_accuracy_count"),
    ("QA accuracy, color", "answer_accuracy_color"),
    ("QA accuracy, position", "answer_accuracy_position"),
    ("QA accuracy, image missing", "answer_accuracy_image_missing"),
    ("QA accuracy, text missing", "answer_accuracy_text_missing"),
    ("matching accuracy", "match_accuracy"),
    ("matching AUROC", "match_auroc"),
    ("matching accuracy, image missing", "match_accuracy_image_missing"),
    ("matching accuracy, text missing", "match_accuracy_text_missing"),
    ("accuracy", "accuracy"),
    ("accuracy, image missing", "accuracy_image_missing"),
    ("accuracy, text missing", "accuracy_text_missing"),
    ("macro-F1", "macro_f1"),
    ("macro-F1, image missing", "macro_f1_image_missing"),
    ("macro-F1, text missing", "macro_f1_text_missing"),
    ("AUROC", "auroc"),
    ("AUROC, one-vs-rest", "auroc_ovr_macro"),
    ("majority-class accuracy", "baseline_majority_accuracy"),
]


def _i2t_chance(k, num_images, num_captions):
    """Chance R@K of image-to-text retrieval: P(one of the image's captions in a random top K)."""
    per_image = num_captions / max(num_images, 1)
    miss = 1.0
    for j in range(min(k, num_captions)):
        miss *= max(num_captions - per_image - j, 0.0) / (num_captions - j)
    return 1.0 - miss


def _references(m, key):
    """The reference rankers' figures for a matching row (Shapes): `[(name, value)]`, the ceiling last."""
    references = m.get("references", {})
    return [(name, references[ranker][key]) for ranker, name in _REFERENCE_NAMES
            if key in references.get(ranker, {})]


def _metric_rows(task, m):
    """`(label, key, reference kind, reference value or None, [(other reference, value)])` of a run."""
    if task == "matching":
        images, captions = m.get("num_test_images"), m.get("num_test_captions")
        rows = []
        for label, key in _MATCHING_ROWS:
            k = int(key.rsplit("_r", 1)[1])
            if not images:
                ref = None
            elif key.startswith("t2i"):
                ref = min(k / images, 1.0)
            else:
                ref = _i2t_chance(k, images, captions or images)
            rows.append((label, key, "chance", ref, _references(m, key)))
        # Semantic recall (a retrieved item true of the query counts), where the records say what is true.
        rows += [(f"{d} sR@{k}", f"{d}_sr{k}", "chance", m.get(f"chance_{d}_sr{k}"), _references(m, f"{d}_sr{k}"))
                 for d in ("i2t", "t2i") for k in (1, 5, 10) if f"{d}_sr{k}" in m]
        return rows
    if task == "captioning":
        return [(label, key, "nearest-neighbour", m.get(f"baseline_nearest_{key}"), [])
                for label, key in _CAPTIONING_ROWS if key in m]
    # What a fusion model gets from the text alone: its accuracy with the image masked out.
    return [(label, key, kind, reference(m),
             [("image masked", m[f"{key}_image_missing"])] if f"{key}_image_missing" in m else [])
            for label, key, kind, reference in _FUSION_ROWS if key in m]


def _majority_share(head_metrics):
    support = [c["support"] for c in head_metrics.get("per_class", {}).values()]
    return max(support) / sum(support) if support and sum(support) else None


def _verdict(true):
    """" (true)" / " (false)" where a caption's truth is known, else nothing."""
    return "" if true is None else f" ({'true' if true else 'false'})"


def _slug(name):
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in str(name))


class DemoReport:
    """Collects trained runs (the demo's four, or one) and writes the results table, `report.html` and
    `plots/*.png`.

    Add each run with `add_run` (its `metrics.json` content and `history.json`),
    then what the report shows of it: `add_caption_samples` (captioner),
    `add_retrieval` (dual encoder), `add_confusion` (fusion classifiers). `rows()`
    / `table()` give the results (R@K both ways, BLEU-4, CIDEr-D, caption accuracy, fusion
    accuracies, data counts of real-data runs) next to a chance level or baseline; `write(output_dir)` writes
    the self-contained `report.html` (images inlined as base64 PNG) and the same
    plots as PNG files under `output_dir/plots/`.

    Args:
        title: the report's title.
        subtitle: an optional line under it (e.g. the budgets used).
        kinds: the task kinds whose sections (captions, retrieval, fusion) the page holds.

    Example:

    >>> report = DemoReport()
    >>> report.add_run("clip", "matching", {"i2t_r1": 0.2, "i2t_r5": 0.5, "i2t_r10": 0.7, "t2i_r1": 0.1,
    ...                "t2i_r5": 0.3, "t2i_r10": 0.4, "num_test_images": 100, "num_test_captions": 500},
    ...                history={"loss": [3.0, 2.1]}, seconds=12.5)
    >>> print(report.table())  # doctest: +NORMALIZE_WHITESPACE
    model  metric    value  reference
    clip   i2t R@1   0.200  chance 0.010
    clip   i2t R@5   0.500  chance 0.049
    clip   i2t R@10  0.700  chance 0.096
    clip   t2i R@1   0.100  chance 0.010
    clip   t2i R@5   0.300  chance 0.050
    clip   t2i R@10  0.400  chance 0.100
    """

    def __init__(self, title="mmkeras demo", subtitle=None, kinds=TASK_KINDS):
        if not kinds or any(kind not in TASK_KINDS for kind in kinds):
            raise ValueError(f"`kinds` must be some of {TASK_KINDS}, got {kinds!r}.")
        self.title = title
        self.subtitle = subtitle
        self.kinds = tuple(kinds)
        self.runs = []  # dicts: name, task, metrics, history, seconds, export_dir
        self.captions = {}
        self.retrieval = {}
        self.confusions = []

    # --- inputs ---------------------------------------------------------------
    def add_run(self, name, task, metrics, history=None, seconds=None, export_dir=None):
        """Adds one trained run.

        Args:
            name: the model's name (the preset).
            task: "matching", "captioning" or "fusion".
            metrics: its `metrics.json` dict.
            history: its `history.json` dict (`{metric: per-epoch values}`), for the curves.
            seconds: wall time of its training, evaluation and export.
            export_dir: where its SavedModel was exported.
        """
        if task not in TASK_KINDS:
            raise ValueError(f"`task` must be one of {TASK_KINDS}, got {task!r}.")
        if any(r["name"] == name for r in self.runs):
            raise ValueError(f"`name` {name!r} was already added.")
        if not isinstance(metrics, dict):
            raise ValueError(f"`metrics` must be the run's metrics dict, got {type(metrics).__name__}.")
        self.runs.append({
            "name": name, "task": task, "metrics": metrics, "history": dict(history or {}),
            "seconds": seconds, "export_dir": export_dir,
        })

    def add_caption_samples(self, name, samples):
        """Captioning samples: dicts `{"image": uint8 [H, W, 3], "generated": str, "references": [str]}`.

        Args:
            name: the captioner's run name.
            samples: see `mmkeras.report.run_samples.caption_samples`.
        """
        self.captions[name] = list(samples)

    def add_retrieval(self, name, samples):
        """Text-to-image retrieval examples of a dual encoder.

        Args:
            name: the dual encoder's run name.
            samples: dicts `{"query", "images" [k, H, W, 3], "scores", "correct", "rank"}`, see
                `mmkeras.report.run_samples.retrieval_samples`.
        """
        self.retrieval[name] = list(samples)

    def add_confusion(self, name, confusion):
        """A fusion classifier's confusion matrix.

        Args:
            name: the fusion run's name.
            confusion: `{"head": str, "labels": [str], "matrix": [C, C] counts}` (rows = true labels).
        """
        matrix = np.asarray(confusion["matrix"])
        if matrix.shape != (len(confusion["labels"]),) * 2:
            raise ValueError(
                f"`confusion['matrix']` must be [C, C] for the {len(confusion['labels'])} labels, got {matrix.shape}."
            )
        self.confusions.append({"name": name, "head": confusion["head"], "labels": list(confusion["labels"]),
                                "matrix": matrix})

    # --- results --------------------------------------------------------------
    def rows(self):
        """The results, one dict per figure: `model`, `metric` (label), `key` (in `metrics.json`),
        `value`, `reference` (text: the chance level or baseline, "\u2014" where there is none) and
        `reference_value` (or None). Fusion rows also quote the accuracy with the image masked out
        (the text-only prior), Shapes matching rows the bag-of-attributes baseline and the ceiling
        (the Bayes oracle); real-data runs end with their data counts (no reference)."""
        out = []
        for run in self.runs:
            m = run["metrics"]
            for label, key, kind, ref, others in _metric_rows(run["task"], m):
                parts = [f"{kind} {ref:.3f}"] if ref is not None else []
                parts += [f"{name} {value:.3f}" for name, value in others]
                out.append({"model": run["name"], "metric": label, "key": key, "value": m.get(key),
                            "reference": ", ".join(parts) or NO_REFERENCE, "reference_value": ref})
            out += [{"model": run["name"], "metric": label, "key": key, "value": m[key], "reference": "",
                     "reference_value": None} for label, key in _DATA_ROWS if key in m]
        return out

    def table(self):
        """The results as an aligned plain-text table (what `mmkeras demo` prints)."""
        lines = [("model", "metric", "value", "reference")]
        for row in self.rows():
            value = row["value"]
            value = "n/a" if value is None else str(value) if isinstance(value, int) else f"{value:.3f}"
            lines.append((row["model"], row["metric"], value, row["reference"]))
        widths = [max(len(line[i]) for line in lines) for i in range(4)]
        return "\n".join(
            "  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines
        )

    # --- figures --------------------------------------------------------------
    def figures(self):
        """The plots, drawn with matplotlib, as `{file name: uint8 image}`: `curves_<run>.png`,
        `retrieval_<run>.png`, `confusion_<run>_<head>.png`."""
        figures = {}
        for run in self.runs:
            losses = {k: v for k, v in run["history"].items() if k.endswith("loss")}
            if losses:
                names = sorted(losses, key=lambda k: (k != "loss", k))[:6]
                figures[f"curves_{_slug(run['name'])}.png"] = render(line_plot(
                    {k: losses[k] for k in names}, title=f"{run['name']}: loss", y_label="loss"))
        for name, samples in self.retrieval.items():
            figures[f"retrieval_{_slug(name)}.png"] = stack([self._retrieval_grid(s) for s in samples])
        for confusion in self.confusions:
            figures[f"confusion_{_slug(confusion['name'])}_{confusion['head']}.png"] = render(heatmap(
                confusion["matrix"], confusion["labels"], confusion["labels"],
                title=f"{confusion['name']}: {confusion['head']} head (held-out)"))
        return figures

    @staticmethod
    def _retrieval_grid(sample):
        """Green frame: the caption's own image; red: an image the caption is false of (where known)."""
        true = sample.get("true") or [None] * len(sample["scores"])
        labels = [f"#{i + 1} {score:.2f}{_verdict(t)}" for i, (score, t) in enumerate(zip(sample["scores"], true))]
        borders = [GREEN if c else RED if t is False else None for c, t in zip(sample["correct"], true)]
        return render(image_grid(np.asarray(sample["images"]), labels=labels, borders=borders,
                                 title=f"query: {sample['query']}"))

    # --- output ---------------------------------------------------------------
    def html(self, figures=None):
        """The report as an `HtmlReport`: the results, the sections of the report's `kinds` (each
        present, with a note where data is missing) and the training curves.

        Args:
            figures: the output of `figures()` (computed if None).
        """
        figures = self.figures() if figures is None else figures
        report = HtmlReport(self.title, self.subtitle)

        report.section(SECTIONS["results"], "results")
        rows = self.rows()
        report.table(
            ["model", "metric", "value", "chance / baseline"],
            [[r["model"], r["metric"], r["value"], r["reference"]] for r in rows],
            row_attributes=[
                {"data-model": r["model"], "data-metric": r["key"], "data-value": repr(r["value"])} for r in rows
            ],
        )
        report.paragraph(
            "R@K: recall at K over the held-out images (i2t: any of an image's captions in the top K; "
            "t2i: the caption's image in the top K), beside the chance level of a random ranking; sR@K "
            "(Shapes): a hit when a top-K item makes the caption true, ties broken at random. On Shapes both "
            "are also given for two rankers that read the scenes instead of the pixels: the bag of attributes "
            "(+1 per shape, colour, size, count or position word the scene satisfies somewhere, -1 per word it "
            "does not) and the ceiling, the Bayes oracle (the probability that the caption grammar wrote the "
            "caption for the scene), ties at random. BLEU-4 and "
            "CIDEr-D: beam-search captions against all reference captions, beside captioning each image with "
            "the first caption of its nearest training image (Shapes). Fusion accuracies on held-out examples, "
            f"beside always predicting the majority class. {NO_REFERENCE}: no chance level or baseline.",
            muted=True,
        )
        report.table(
            ["model", "task", "time (train + eval + export)", "SavedModel"],
            [[r["name"], r["task"], "" if r["seconds"] is None else format_duration(r["seconds"]),
              r["export_dir"] or ""] for r in self.runs],
        )
        if "captioning" in self.kinds:
            self._captions_html(report)
        if "matching" in self.kinds:
            self._retrieval_html(report)
        if "fusion" in self.kinds:
            self._fusion_html(report, figures)

        report.section(SECTIONS["curves"], "curves")
        curves = [f"curves_{_slug(r['name'])}.png" for r in self.runs]
        if not any(c in figures for c in curves):
            report.paragraph("No training history recorded.", muted=True)
        for run, file in zip(self.runs, curves):
            if file in figures:
                report.image(figures[file], alt=file,
                             caption=f"{run['name']}: loss per epoch (history.json; val_: on the held-out split)")
        return report

    def _captions_html(self, report):
        report.section(SECTIONS["captions"], "captions")
        if not self.captions:
            report.paragraph("No captioner in this report.", muted=True)
        for name, samples in self.captions.items():
            report.heading(name)
            report.gallery([
                {"image": _enlarge(s["image"]), "title": f"generated{_verdict(s.get('true'))}: {s['generated']}",
                 "items": [f"reference: {r}" for r in s["references"]]}
                for s in samples
            ])

    def _retrieval_html(self, report):
        report.section(SECTIONS["retrieval"], "retrieval")
        if not self.retrieval:
            report.paragraph("No dual encoder in this report.", muted=True)
        for name, samples in self.retrieval.items():
            report.heading(name)
            metrics = next((r["metrics"] for r in self.runs if r["name"] == name), {})
            if "t2i_by_text_kind" in metrics:
                self._by_kind_table(report, metrics)
            report.paragraph(
                "Top-ranked held-out images for held-out captions, best first, with their cosine similarity; "
                "the image the caption was written for is framed in green. Where the data says which images "
                "a caption is true of (Shapes), each image is marked true or false, and those it is false of "
                "are framed in red.", muted=True)
            total = next((r["metrics"].get("num_test_images") for r in self.runs if r["name"] == name), None)
            for sample in samples:
                out_of = f" of {total}" if total else ""
                report.image(self._retrieval_grid(sample), alt=sample["query"],
                             caption=f"\u201c{sample['query']}\u201d: its own image ranks {sample['rank']}{out_of}")

    @staticmethod
    def _by_kind_table(report, metrics):
        """Text-to-image recall by the kind of claim a caption makes, beside the reference rankers (Shapes)."""
        references = metrics.get("references", {})
        columns = [("this model R@5", metrics["t2i_by_text_kind"], "r5"),
                   ("this model sR@1", metrics["t2i_by_text_kind"], "t2i_sr1")]
        columns += [(f"{label} R@5", references[ranker]["t2i_by_text_kind"], "r5")
                    for ranker, label in _REFERENCE_NAMES if "t2i_by_text_kind" in references.get(ranker, {})]
        kinds = sorted(metrics["t2i_by_text_kind"])
        report.table(["caption kind", "queries"] + [label for label, _, _ in columns],
                     [[kind, metrics["t2i_by_text_kind"][kind].get("num_queries")]
                      + [figures.get(kind, {}).get(key) for _, figures, key in columns] for kind in kinds])
        report.paragraph("Text-to-image retrieval by the kind of claim the caption makes: R@5 (its own image in "
                         "the top 5) and sR@1 (the top image makes it true), beside the rankers that read the "
                         "scenes (ties at random).", muted=True)

    def _fusion_html(self, report, figures):
        report.section(SECTIONS["fusion"], "fusion")
        fusion = [r for r in self.runs if r["task"] == "fusion"]
        if fusion:
            keys = [(label, key) for label, key in _FUSION_DETAIL if any(key in r["metrics"] for r in fusion)]
            report.table(
                ["metric"] + [r["name"] for r in fusion],
                [[label] + [r["metrics"].get(key) for r in fusion] for label, key in keys],
                row_attributes=[{"data-metric": key} for _, key in keys],
            )
        else:
            report.paragraph("No fusion classifier in this report.", muted=True)
        for confusion in self.confusions:
            file = f"confusion_{_slug(confusion['name'])}_{confusion['head']}.png"
            report.image(figures[file], alt=file,
                         caption=f"{confusion['name']}, {confusion['head']} head: rows are true labels, "
                                 "columns predictions; shading is the share of the row.")

    def write(self, output_dir, suffix=""):
        """Writes `output_dir/report{suffix}.html` and `output_dir/plots{suffix}/*.png`; returns the
        report's path.

        Args:
            output_dir: the output directory (local path or `gs://`).
            suffix: appended to the names (an evaluation's `evaluation_suffix`).
        """
        import tensorflow as tf

        plots = os.path.join(str(output_dir), f"plots{suffix}")
        tf.io.gfile.makedirs(plots)
        figures = self.figures()
        for file, image in figures.items():
            with tf.io.gfile.GFile(os.path.join(plots, file), "wb") as f:
                f.write(encode_png(image))
        return self.html(figures).write(os.path.join(str(output_dir), f"report{suffix}.html"))


def _enlarge(image, size=128):
    """Nearest-neighbour upscaling by an integer factor to about `size` pixels."""
    image = np.asarray(image)
    factor = max(1, math.ceil(size / max(image.shape[:2])))
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)
