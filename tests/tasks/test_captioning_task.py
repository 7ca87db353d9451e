"""`CaptioningTask`: `mmkeras train shapes-captioner-tiny`, `mmkeras eval` and `mmkeras caption` end to end, and
a real-data run on Flickr files with a Karpathy split (tiny budget); K captions per image."""

import json

import numpy as np
import tensorflow as tf

from mmkeras import zoo
from mmkeras.cli import main
from mmkeras.data import Shapes
from mmkeras.data.converted_data import ConvertedData
from mmkeras.tasks.captioning_task import CaptioningTask


def test_train_evaluate_export_caption(tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "shapes-captioner-tiny", "--output", str(run), "--quiet",
            "--set", "data.num_train=128", "--set", "data.num_test=16", "--set", "data.num_val=8",
            "--set", "eval.max_length=8", "--set", "eval.num_beams=2",
            "--set", "data.image_size=48", "--set", "image_encoder.num_layers=1", "--set", "model.num_layers=1",
            "--set", "train.tower_pretraining_steps=4", "--set", "train.tower_pretraining_batch_size=16",
            "--epochs", "1", "--global-batch", "32", "--no-jit", "--set", "eval.jit_compile=false"]
    assert main(args) == 0
    assert json.loads((run / "tower_pretraining.json").read_text())["steps"] == 4
    metrics = json.loads((run / "metrics.json").read_text())
    for key in ("bleu_1", "bleu_4", "cider_d", "baseline_nearest_bleu_4", "baseline_nearest_cider_d"):
        assert metrics[key] >= 0.0
    samples = json.loads((run / "samples.json").read_text())
    assert len(samples) == 16 and all(len(s["references"]) == 5 for s in samples)
    # caption_accuracy: the share of generated captions true of their scene (here: every test image is a sample)
    assert metrics["caption_accuracy"] == sum(s["correct"] for s in samples) / 16
    assert 0.0 <= metrics["baseline_nearest_caption_accuracy"] <= 1.0

    image = tmp_path / "scene.png"
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


def test_captions_per_image_feeds_the_captioner_k_rows_per_image(tmp_path):
    overrides = {"data.num_train": 16, "data.num_val": 4, "data.num_test": 4, "train.global_batch_size": 8,
                 "data.captions_per_image": 2}
    task = CaptioningTask(zoo.config("shapes-captioner-tiny", **overrides), str(tmp_path))
    inputs, targets = next(iter(task.epoch_dataset(tf.constant(0, tf.int64))))
    assert inputs["images"].shape[0] == 8
    assert inputs["token_ids"].shape[0] == 16 and targets.shape[0] == 16  # static: XLA-ready
    assert np.all(inputs["token_ids"].numpy()[:, 0] == 2)  # every row starts with [BOS]


# The decoder at the size of `tiny_record_run`'s image tower; a short beam search.
DECODER = {"data.sequence_length": 12, "model.num_layers": 1, "model.hidden_dim": 16, "model.mlp_dim": 32,
           "model.num_heads": 2, "eval.num_beams": 2, "eval.max_length": 6}
SHAPES = Shapes(image_size=32, num_train=16, num_val=8, num_test=4)


def _ids(reader):
    return sorted(r["id"].decode() for r in reader.records(deterministic=True).as_numpy_iterator())


def test_flickr_split_json_is_the_held_out_split_and_broken_images_are_skipped(tmp_path, capsys, tiny_record_run):
    """Karpathy splits: train + restval train, val is held out, test is never read; bad files are counted."""
    images = tmp_path / "Flicker8k_Dataset"
    images.mkdir()
    splits = {"train": SHAPES.scenes("train")[:12], "restval": SHAPES.scenes("train")[12:],
              "val": SHAPES.scenes("val"), "test": SHAPES.scenes("test")}
    entries, token_lines = [], []
    for split, scenes in splits.items():
        for scene in scenes:
            name = f"{split}_{scene['image_id']}.png"
            (images / name).write_bytes(tf.io.encode_png(scene["image"]).numpy())
            entries.append({"filename": name, "split": split, "sentences": [{"raw": c} for c in scene["captions"]]})
            token_lines += [f"{name}#{i}\t{c}" for i, c in enumerate(scene["captions"])]
    (images / entries[0]["filename"]).unlink()  # a missing training image
    val_names = [e["filename"] for e in entries if e["split"] == "val"]
    broken = images / val_names[0]
    broken.write_bytes(broken.read_bytes()[:60])  # a truncated held-out PNG
    tokens = tmp_path / "Flickr8k.token.txt"
    tokens.write_text("\n".join(token_lines) + "\n")
    split_json = tmp_path / "dataset_flickr8k.json"
    split_json.write_text(json.dumps({"images": entries}))

    run = tmp_path / "run"
    config = zoo.config("shapes-captioner-tiny", **tiny_record_run, **DECODER, **{
        "data.dataset": "flickr", "data.path": str(tokens), "data.images": str(images),
        "data.split_json": str(split_json)})
    task = CaptioningTask(config, str(run))
    assert isinstance(task.data, ConvertedData)
    info = task.data.prepare()
    assert info["train"]["num_records"] == 16 - 1 and info["val"]["num_records"] == 8 - 1
    assert _ids(task.data.val_reader) == sorted(val_names[1:])
    assert not any(name.startswith("test_") for name in _ids(task.data.train_reader) + _ids(task.data.val_reader))
    assert task.data.skip_report().num_skipped == 2

    metrics = task.run(verbose=0)
    assert metrics["num_test_images"] == 7 and metrics["num_held_out_records"] == 7
    assert metrics["num_skipped_records"] == 2 and metrics["bleu_4"] >= 0.0 and metrics["cider_d"] >= 0.0
    assert "caption_accuracy" not in metrics and "baseline_nearest_bleu_4" not in metrics  # Shapes-only figures
    samples = json.loads((run / "samples.json").read_text())
    assert all(s["references"] for s in samples)
    # The export serves the same captions as the in-memory generator.
    image = tf.io.encode_png(SHAPES.scenes("val")[1]["image"]).numpy()
    served = tf.saved_model.load(str(run / "export")).signatures["caption"](image_bytes=tf.constant([image]))
    in_memory = task.generator(task.load_model()).generate(task.preprocessor(tf.constant([image])))
    assert served["captions"].numpy().tolist() == in_memory["captions"].numpy().tolist()
    capsys.readouterr()
    assert main(["caption", str(run / "export"), str(broken)]) == 2  # the truncated file: a clear error
    assert "could not decode the image bytes" in capsys.readouterr().err
