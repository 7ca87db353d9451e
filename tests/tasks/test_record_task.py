"""Real-data tasks: conversion of broken real-layout files, skip reports, training, evaluation, errors."""

import io
import json

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from mmkeras import zoo
from mmkeras.data import Shapes
from mmkeras.tasks import task_for_config
from mmkeras.tasks.record_fusion_task import RecordFusionTask
from mmkeras.tasks.record_matching_task import RecordMatchingTask
from mmkeras.tasks.record_task import is_held_out

TOWER = {"num_layers": 1, "hidden_dim": 16, "mlp_dim": 32, "num_heads": 2}
TINY = {
    "data.image_size": 32, "data.vocabulary_size": 60, "data.val_fraction": 0.25,
    "image_encoder.patch_size": 16,
    **{f"image_encoder.{k}": v for k, v in TOWER.items()},
    "train.epochs": 1, "train.global_batch_size": 8, "train.jit_compile": False, "train.strategy": "cpu",
    "eval.batch_size": 16,
}
TEXT_TOWER = {f"text_encoder.{k}": v for k, v in TOWER.items()}


def _pil(array, mode):
    out = io.BytesIO()
    Image.fromarray(array).convert(mode).save(out, "JPEG")
    return out.getvalue()


@pytest.fixture(scope="module")
def coco_files(tmp_path_factory):
    """Shapes written in the COCO-captions layout, with five deliberately bad or odd records."""
    root = tmp_path_factory.mktemp("coco")
    shapes = Shapes(image_size=32, num_train=36, num_val=1, num_test=1)
    paths = shapes.write(str(root), "train")
    images = sorted((root / "images" / "train").iterdir())
    jpeg = bytearray(images[0].read_bytes())
    jpeg[4:40] = b"\x00" * 36
    images[0].write_bytes(bytes(jpeg))                                          # corrupt JPEG
    images[1].unlink()                                                          # missing image file
    images[2].write_bytes(_pil(shapes.images("train")[2], "CMYK"))              # CMYK: kept
    images[3].write_bytes(_pil(shapes.images("train")[3], "L"))                 # grayscale: kept
    coco = json.loads(open(paths["captions_json"]).read())
    empty_id = coco["images"][4]["id"]
    for annotation in coco["annotations"]:
        if annotation["image_id"] == empty_id:
            annotation["caption"] = "   "                                       # empty captions only
    open(paths["captions_json"], "w").write(json.dumps(coco))
    return paths


@pytest.fixture(scope="module")
def memes_file(tmp_path_factory):
    """A Hateful-Memes-style JSONL (`id, img, label, text`) of Shapes matching pairs, with bad rows."""
    root = tmp_path_factory.mktemp("memes")
    (root / "img").mkdir()
    shapes = Shapes(image_size=32, num_train=24, num_val=1, num_test=1)
    rows = []
    for i, scene in enumerate(shapes.scenes("train")):
        (root / "img" / f"{i:05d}.png").write_bytes(tf.io.encode_png(scene["image"]).numpy())
        for j, pair in enumerate(scene["match"]):
            rows.append({"id": f"{i:05d}{j}", "img": f"img/{i:05d}.png", "label": pair["label"], "text": pair["text"]})
    rows[0]["img"] = "img/missing.png"                                          # missing image file
    (root / "img" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 30)
    rows[1]["img"] = "img/corrupt.png"                                          # corrupt PNG
    del rows[2]["label"]                                                        # no label: skipped for fusion
    rows[3]["text"] = ""                                                        # no text: kept, text missing
    path = root / "train.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path), len(rows)


def _coco_config(coco_files, preset="shapes-clip-tiny", **extra):
    overrides = {**TINY, **TEXT_TOWER, "model.embed_dim": 16, "data.dataset": "coco",
                 "data.path": coco_files["captions_json"], "data.images": coco_files["image_dir"]}
    return zoo.config(preset, **{**overrides, **extra})


def test_conversion_skips_counts_and_reports_broken_records(coco_files, tmp_path):
    task = task_for_config(_coco_config(coco_files), tmp_path / "run")
    assert isinstance(task, RecordMatchingTask)
    info = task.prepare_data()
    report = task.skip_report()
    assert dict(report.skipped) == {"corrupt image": 1, "missing image": 1, "empty caption": 1}
    assert report.repaired["cmyk image"] == 1 and report.repaired["grayscale image"] == 1
    assert report.kept == 33 == info["train"]["num_records"] + info["val"]["num_records"]
    # The held-out split is the hash of the record id: the same on every run.
    coco = json.loads(open(coco_files["captions_json"]).read())
    ids = [str(image["id"]) for image in coco["images"][5:]] + [str(coco["images"][i]["id"]) for i in (2, 3)]
    assert info["val"]["num_records"] == sum(is_held_out(i, 0.25) for i in ids) > 0
    assert len(task.tokenizer_corpus()) == 5 * info["train"]["num_records"]
    data = task.data_report()
    assert data["num_train_records"] == info["train"]["num_records"]
    assert data["conversion"]["skipped"]["missing image"] == 1
    # A second task on the same run directory reuses the shards; another source is refused.
    again = task_for_config(_coco_config(coco_files), tmp_path / "run")
    assert again.prepare_data()["train"]["files"] == info["train"]["files"]
    other = task_for_config(_coco_config(coco_files, **{"data.val_fraction": 0.5}), tmp_path / "run")
    with pytest.raises(ValueError, match="holds data converted from.*or `--overwrite` to start afresh"):
        other.prepare_data()
    other.remove_previous_run()  # what `--overwrite` does first: the other source's data is converted anew
    assert other.prepare_data()["val"]["num_records"] == sum(is_held_out(i, 0.5) for i in ids)


def test_fusion_trains_and_evaluates_on_memes_jsonl(memes_file, tmp_path, capsys):
    path, num_rows = memes_file
    config = zoo.config("shapes-fusion-late-tiny", **TINY, **TEXT_TOWER, **{
        "data.dataset": "jsonl", "data.path": path, "model.fusion_kwargs": {"combine": "mean", "hidden_dim": 16}})
    capsys.readouterr()
    task = task_for_config(config, tmp_path / "run")
    assert "`data.texts_per_image`=11 does not apply to jsonl records" in capsys.readouterr().out
    assert isinstance(task, RecordFusionTask)
    model = task.train(verbose=0)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["model"]["heads"] == {"label": {"type": "binary", "labels": ["0", "1"]}}
    assert saved["data"]["texts_per_image"] == 1  # the preset's 11 texts per Shapes scene do not apply
    report = task.skip_report()
    assert dict(report.skipped) == {"missing image": 1, "corrupt image": 1, "missing label": 1}
    assert report.kept == num_rows - 3
    metrics = task.evaluate(model)
    for key in ("accuracy", "macro_f1", "accuracy_image_missing", "accuracy_text_missing",
                "baseline_majority_accuracy"):
        assert 0.0 <= metrics[key] <= 1.0
    assert metrics["num_test_examples"] == task.num_val_records > 0
    assert metrics["num_skipped_records"] == 3
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert len(history["loss"]) == 1 and np.isfinite(history["loss"][0])


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"data.dataset": "webdataset", "data.path": "x"}, "`data.dataset` must be one of"),
        ({"data.dataset": "coco"}, "`data.path` is not set"),
        ({"data.dataset": "coco", "data.path": "/nowhere/captions.json"}, "`data.path` '/nowhere/captions.json' does not exist"),
        ({"data.dataset": "csv", "data.path": "{csv}", "data.images": "/nowhere"}, "`data.images` '/nowhere' does not exist"),
        ({"data.dataset": "csv", "data.path": "{csv}", "data.val_fraction": 1.0}, "`data.val_fraction` must be in"),
        ({"data.dataset": "tfrecord", "data.path": "{root}"}, "must hold a 'train' and a 'val' split"),
        ({"data.dataset": "csv", "data.path": "{csv}", "train.global_batch_size": 64}, "fewer than `train.global_batch_size`=64"),
    ],
)
def test_errors_name_the_field(coco_files, tmp_path, overrides, message):
    root = coco_files["captions_json"].rsplit("/", 1)[0]
    overrides = {k: v.format(csv=coco_files["csv"], root=root) if isinstance(v, str) else v
                 for k, v in overrides.items()}
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        task = task_for_config(zoo.config("shapes-captioner-tiny", **{**TINY, **overrides}), tmp_path / "run")
        task.steps_per_epoch


def test_fusion_needs_labels(coco_files, tmp_path):
    fusion = {**TINY, **TEXT_TOWER}
    with pytest.raises(ValueError, match="`data.dataset`='coco' has no labels"):
        task_for_config(zoo.config("shapes-fusion-late-tiny", **fusion, **{
            "data.dataset": "coco", "data.path": coco_files["captions_json"]}), tmp_path / "a")
    unlabelled = tmp_path / "pairs.csv"
    unlabelled.write_text("image_path,text\n" + "".join(
        f"images/train/{i:06d}.jpg,a caption\n" for i in range(5, 20)))
    task = task_for_config(zoo.config("shapes-fusion-late-tiny", **fusion, **{
        "data.dataset": "csv", "data.path": str(unlabelled),
        "data.images": coco_files["image_dir"].rsplit("/images/", 1)[0]}), tmp_path / "b")
    with pytest.raises(ValueError, match="needs a `label` field"):
        task.prepare_data()
    info = json.loads((tmp_path / "b" / "data" / "dataset_info.json").read_text())
    assert info["splits"]["train"]["skip_report"]["skipped"] == {"missing label": 15}


def test_data_summary_comes_before_training_and_the_split_lists_are_written(coco_files, tmp_path, capsys):
    task = task_for_config(_coco_config(coco_files, **{"train.global_batch_size": 4}), tmp_path / "run")
    task.train(verbose=1)
    out = capsys.readouterr().out
    assert out.index("mmkeras: converting coco:") < out.index("kept 33 records") < out.index("loss:")
    lists = {split: (tmp_path / "run" / "splits" / f"{split}.txt").read_text().splitlines() for split in ("train", "val")}
    for split, reader in (("train", task.train_reader), ("val", task.val_reader)):
        ids = [i.decode() for i in reader.records(deterministic=True).map(lambda r: r["id"]).as_numpy_iterator()]
        assert sorted(lists[split]) == sorted(ids) and len(ids) == task.prepare_data()[split]["num_records"]
    assert str(tmp_path / "run" / "splits" / "val.txt") in out
    assert not set(lists["train"]) & set(lists["val"])
    # Validation ran on the held-out split after the epoch.
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert len(history["val_loss"]) == 1 and len(history["val_batch_accuracy"]) == 1
