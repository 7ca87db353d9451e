"""`mmkeras train shapes-captioner-tiny`, `mmkeras eval` and `mmkeras caption` end to end (tiny budget)."""

import json

import tensorflow as tf

from mmkeras.cli import main


def test_train_evaluate_export_caption(tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "shapes-captioner-tiny", "--output", str(run), "--quiet",
            "--set", "data.num_train=128", "--set", "data.num_test=16", "--set", "data.num_val=8",
            "--set", "eval.max_length=8", "--set", "eval.num_beams=2",
            "--set", "data.image_size=32", "--set", "image_encoder.num_layers=1", "--set", "model.num_layers=1",
            "--epochs", "1", "--global-batch", "32", "--no-jit", "--set", "eval.jit_compile=false"]
    assert main(args) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    for key in ("bleu_1", "bleu_4", "cider_d", "baseline_nearest_bleu_4", "baseline_nearest_cider_d"):
        assert metrics[key] >= 0.0
    samples = json.loads((run / "samples.json").read_text())
    assert len(samples) == 16 and all(len(s["references"]) == 5 for s in samples)
    # caption_accuracy: the share of generated captions true of their scene (here: every test image is a sample)
    assert metrics["caption_accuracy"] == sum(s["correct"] for s in samples) / 16
    assert 0.0 <= metrics["baseline_nearest_caption_accuracy"] <= 1.0

    image = tmp_path / "scene.png"
    from mmkeras.data.shapes import Shapes

    image.write_bytes(tf.io.encode_png(Shapes(num_train=1, num_val=1, num_test=1).images("test")[0]).numpy())
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 definitely not a jpeg")
    capsys.readouterr()
    assert main(["caption", str(run / "export"), str(image)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(str(image)) and "score" in line
    assert main(["caption", str(run / "export"), str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"cannot read {bad} as an image: ImagePreprocessor could not decode the image bytes" in err
    assert "Graph execution error" not in err
    assert main(["caption", str(run / "export"), str(tmp_path / "missing.png")]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["caption", str(run), str(image)]) == 2  # the run dir is not an export
    assert "not a SavedModel" in capsys.readouterr().err

    assert main(["eval", str(run)]) == 0
    assert json.loads((run / "metrics.json").read_text())["cider_d"] == metrics["cider_d"]
    generated = [s["generated"] for s in samples]
    assert metrics["distinct_captions"] == len(set(generated))
    assert abs(metrics["mean_words"] - sum(len(g.split()) for g in generated) / 16) < 1e-9
    from mmkeras.data.shapes import Shapes

    naming = [s["correct"] for s in samples if Shapes.names_a_shape(s["generated"])]
    assert metrics["shape_caption_share"] == len(naming) / 16
    assert metrics["shape_caption_accuracy"] == (sum(naming) / len(naming) if naming else 0.0)

    # Another decoding of the same run: its own files, and what training wrote stays as it was.
    before = (run / "samples.json").read_text()
    assert main(["eval", str(run), "--set", "eval.num_beams=1", "--set", "eval.length_penalty=0"]) == 0
    suffix = "-num_beams=1-length_penalty=0.0"  # the resolved value's spelling
    greedy = json.loads((run / f"metrics{suffix}.json").read_text())
    greedy_samples = json.loads((run / f"samples{suffix}.json").read_text())
    assert greedy["caption_accuracy"] == sum(s["correct"] for s in greedy_samples) / 16
    assert json.loads((run / "metrics.json").read_text()) == metrics
    assert (run / "samples.json").read_text() == before
    capsys.readouterr()
    assert main(["eval", str(run), "--set", "train.epochs=3"]) == 2
    assert "only `eval.*` fields" in capsys.readouterr().err
    assert main(["eval", str(run), "--set", "eval.num_beam=2"]) == 2
    assert "eval.num_beam" in capsys.readouterr().err


def test_evaluation_decodes_as_eval_jit_compile_says_and_the_export_with_xla(tmp_path, monkeypatch):
    import importlib
    from mmkeras import zoo
    from mmkeras.tasks import task_for_config

    overrides = {"data.num_train": 8, "data.num_val": 2, "data.num_test": 2, "data.image_size": 32,
                 "image_encoder.num_layers": 1, "model.num_layers": 1}
    exported = []
    export_module = importlib.import_module("mmkeras.export.export_model")
    monkeypatch.setattr(export_module, "export_captioner", lambda generator, *_: exported.append(generator))
    for jit_compile in (False, True):
        config = zoo.config("shapes-captioner-tiny", **overrides, **{"eval.jit_compile": jit_compile})
        task = task_for_config(config, str(tmp_path / str(jit_compile)))
        model = task.build_model()
        assert task.generator(model).jit_compile is jit_compile
        task.export(model, str(tmp_path / "export"))
        assert exported[-1].jit_compile is True
