"""`mmkeras demo --quick` end to end: the results table, report.html, plots/ and the exports."""

import html
import json
import os
import re
import subprocess
import sys
import time

import pytest
import tensorflow as tf

from mmkeras.cli import main
from mmkeras.commands.demo import MODELS, QUICK_BUDGETS, STARTS_FROM, default_jobs, worker_start_method
from mmkeras.report.demo_report import SECTIONS
from mmkeras.report.html_report import read_html_report


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    # The command as a user runs it: a fresh process, which forks its worker before running TensorFlow.
    output = tmp_path_factory.mktemp("demo")
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "mmkeras.cli", "demo", "--output", str(output), "--quick", "--quiet"],
        capture_output=True, text=True, timeout=900,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    metrics = {name: json.loads((output / name / "metrics.json").read_text()) for name in MODELS}
    return {"dir": output, "stdout": done.stdout, "stderr": done.stderr, "metrics": metrics,
            "seconds": time.perf_counter() - start}


def test_prints_one_results_table_matching_the_metrics(demo):
    lines = demo["stdout"].splitlines()
    assert any(line.startswith("Total:") and "report.html" in line for line in lines)
    header = lines.index(next(line for line in lines if line.split()[:4] == ["model", "metric", "value", "reference"]))
    table = [line.split() for line in lines[header + 1 :] if line.strip()]
    shown = {}
    for cells in table:
        model, value = cells[0], cells[next(i for i, c in enumerate(cells) if c.replace(".", "").isdigit())]
        shown.setdefault(model, []).append(value)
    assert list(shown) == list(MODELS)
    clip, cap, early, attention = (demo["metrics"][name] for name in MODELS)
    # R@K, then the semantic sR@K of Shapes (a retrieved item true of the query counts), both ways.
    assert shown[MODELS[0]] == [f"{clip[f'{d}_{r}{k}']:.3f}" for r in ("r", "sr") for d in ("i2t", "t2i")
                                for k in (1, 5, 10)]
    assert shown[MODELS[1]] == [
        f"{cap[key]:.3f}" for key in ("bleu_4", "cider_d", "caption_accuracy", "shape_caption_accuracy")
    ]
    for name, m in ((MODELS[2], early), (MODELS[3], attention)):
        assert shown[name] == [f"{m['answer_accuracy']:.3f}", f"{m['match_accuracy']:.3f}"]


def test_times_read_as_durations_and_tensorflow_logs_nothing(demo):
    duration = r"(\d+\.\d s|\d+ min \d+ s|\d+ h \d+ min)"
    lines = demo["stdout"].splitlines()
    done = [line for line in lines if " done in " in line]
    assert len(done) == len(MODELS) and all(re.search(f" done in {duration} -> ", line) for line in done), done
    assert any(re.match(f"Total: {duration}\\. Report: ", line) for line in lines)
    times = re.findall(f"<td[^>]*>{duration}</td>", (demo["dir"] / "report.html").read_text())
    assert len(times) == len(MODELS), times  # the report's runs table
    # TensorFlow's start-up and runtime log lines ("I0000 ...", "absl::InitializeLog") are hidden without --verbose.
    assert not re.search(r"^[IWEF]\d{4} |absl::InitializeLog", demo["stderr"], re.MULTILINE), demo["stderr"][-2000:]


def test_report_is_self_contained_and_matches_each_run(demo):
    text = (demo["dir"] / "report.html").read_text()
    page = read_html_report(text)
    assert page["sections"] == list(SECTIONS)
    for png in page["images"]:  # every inlined image decodes
        image = tf.io.decode_png(png)
        assert image.shape[0] > 0 and image.shape[-1] == 3
    # 8 caption cards (12 test scenes), 4 retrieval queries, 2 confusion matrices, 4 training curves.
    assert len(page["images"]) == 8 + 4 + 2 + 4
    tagged = [row for row in page["rows"] if "model" in row]
    assert len(tagged) == 12 + 4 + 2 + 2  # CLIP: R@K and sR@K both ways
    for row in tagged:
        assert float(row["value"]) == demo["metrics"][row["model"]][row["metric"]], row
    samples = json.loads((demo["dir"] / MODELS[1] / "samples.json").read_text())
    for sample in samples[:8]:
        # Shapes says whether each generated caption is true of its scene.
        assert re.search(r"generated \((true|false)\): " + re.escape(html.escape(sample["generated"])), text)
        assert html.escape(sample["references"][0]) in text
    assert "src=\"http" not in text and "<link" not in text and "<script" not in text


def test_plots_and_exports_exist(demo):
    plots = demo["dir"] / "plots"
    expected = [f"curves_{name}.png" for name in MODELS] + [
        f"retrieval_{MODELS[0]}.png", f"confusion_{MODELS[2]}_answer.png", f"confusion_{MODELS[3]}_answer.png"]
    assert sorted(p.name for p in plots.iterdir()) == sorted(expected)
    for name in expected:
        assert tf.io.decode_png((plots / name).read_bytes()).shape[-1] == 3
    for name in MODELS:
        export = demo["dir"] / name / "export"
        assert (export / "saved_model.pb").exists() and (export / "variables").is_dir(), name
        history = json.loads((demo["dir"] / name / "history.json").read_text())
        assert len(history["loss"]) == QUICK_BUDGETS[name]["train.epochs"]


def test_a_directory_holding_another_config_is_refused(demo, capsys):
    # The full demo's configs differ from --quick's: refused before anything is trained.
    assert main(["demo", "--output", str(demo["dir"])]) == 2
    assert "--output" in capsys.readouterr().err


def test_quick_runs_the_models_in_parallel_workers(demo):
    # --quick defaults to one worker process per core (the single-threaded tracing and
    # exporting overlap); the full demo to one. The results above come from the workers.
    assert default_jobs(quick=False) == 1
    assert default_jobs(quick=True) == max(1, min(len(MODELS), os.cpu_count() or 1))
    if default_jobs(quick=True) > 1:
        assert f"in {default_jobs(quick=True)} processes" in demo["stdout"]
        # The command had only imported TensorFlow when it started its worker: forked, not spawned.
        assert "1 worker forked" in demo["stdout"] or "workers forked" in demo["stdout"]


def test_each_model_starts_from_the_image_tower_of_the_run_before_it(demo):
    import keras
    import numpy as np

    assert set(STARTS_FROM) | set(STARTS_FROM.values()) <= set(MODELS)
    # Trained after the run they start from, in parallel workers too.
    finished = [os.path.basename(re.search(r" -> (\S+) ", line).group(1))
                for line in demo["stdout"].splitlines() if " done in " in line]
    assert sorted(finished) == sorted(MODELS)
    for name, source in STARTS_FROM.items():
        config = json.loads((demo["dir"] / name / "config.json").read_text())
        assert config["train"]["init"] == str(demo["dir"] / source)
        assert finished.index(source) < finished.index(name)
        assert f"{name} " in demo["stdout"] and f"image tower from {source}" in demo["stdout"]
    # The fusion classifiers read their questions with their own tokenizer and a new text tower.
    captioner = keras.saving.load_model(demo["dir"] / "shapes-captioner-tiny" / "model.keras")
    fusion = keras.saving.load_model(demo["dir"] / "shapes-fusion-early-tiny" / "model.keras")
    assert "?" in fusion.preprocessor.tokenizer.get_vocabulary()  # captions ask nothing
    assert "?" not in captioner.preprocessor.tokenizer.get_vocabulary()
    # Fine-tuned from the captioner's tower: same shapes, moved weights.
    pairs = list(zip(fusion.image_encoder.get_weights(), captioner.image_encoder.get_weights(), strict=True))
    assert all(a.shape == b.shape for a, b in pairs) and any(not np.array_equal(a, b) for a, b in pairs)


def test_workers_are_spawned_once_this_process_has_run_tensorflow():
    tf.constant(1.0)  # the runtime's thread pools now exist, and would not survive a fork
    assert worker_start_method() == "spawn"


def test_bad_jobs_is_a_clear_error(tmp_path, capsys):
    assert main(["demo", "--output", str(tmp_path), "--quick", "--jobs", "0"]) == 2
    assert "--jobs" in capsys.readouterr().err


def test_the_report_subtitle_gives_each_budget_the_tower_pretraining_and_the_shared_tower():
    from mmkeras.commands.demo import _subtitle, demo_config

    subtitle = _subtitle({name: demo_config(name) for name in MODELS}, quick=False)
    assert subtitle.startswith("reduced budget: shapes-clip-tiny 7 epoch(s) on 30000 scenes, 500 test scenes; ")
    assert "shapes-captioner-tiny 1000 tower pretraining steps, then 6 epoch(s) on 12000 scenes" in subtitle
    assert subtitle.endswith("shapes-clip-tiny, shapes-fusion-early-tiny, shapes-fusion-cross-attention-tiny start "
                             "from shapes-captioner-tiny's image tower")
    quick = _subtitle({name: demo_config(name, quick=True) for name in MODELS}, quick=True)
    assert quick.startswith("quick (smoke-test budget, shrunk towers): ") and "pretraining" not in quick
