"""Real-data captioning: the source's own held-out split (Flickr split JSON, a TFDS val split), broken files."""

import json

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from mmkeras import zoo
from mmkeras.cli import main
from mmkeras.data import Shapes
from mmkeras.tasks.record_captioning_task import RecordCaptioningTask

TINY = {
    "data.image_size": 32, "data.vocabulary_size": 60, "data.sequence_length": 12,
    "image_encoder.patch_size": 16, "image_encoder.num_layers": 1,
    "image_encoder.hidden_dim": 16, "image_encoder.mlp_dim": 32, "image_encoder.num_heads": 2,
    "model.num_layers": 1, "model.hidden_dim": 16, "model.mlp_dim": 32, "model.num_heads": 2,
    "train.epochs": 1, "train.global_batch_size": 8, "train.jit_compile": False, "train.strategy": "cpu",
    "eval.batch_size": 16, "eval.num_beams": 2, "eval.max_length": 6,
}
SHAPES = Shapes(image_size=32, num_train=16, num_val=8, num_test=4)


def _ids(reader):
    return sorted(r["id"].decode() for r in reader.records(deterministic=True).as_numpy_iterator())


def test_flickr_split_json_is_the_held_out_split_and_broken_images_are_skipped(tmp_path, capsys):
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
    config = zoo.config("shapes-captioner-tiny", **TINY, **{
        "data.dataset": "flickr", "data.path": str(tokens), "data.images": str(images),
        "data.split_json": str(split_json)})
    task = RecordCaptioningTask(config, str(run))
    info = task.prepare_data()
    assert info["train"]["num_records"] == 16 - 1 and info["val"]["num_records"] == 8 - 1
    assert _ids(task.val_reader) == sorted(val_names[1:])
    assert not any(name.startswith("test_") for name in _ids(task.train_reader) + _ids(task.val_reader))
    assert task.skip_report().num_skipped == 2

    metrics = task.run(verbose=0)
    assert metrics["num_test_images"] == 7 and metrics["num_held_out_records"] == 7
    assert metrics["num_skipped_records"] == 2 and metrics["bleu_4"] >= 0.0 and metrics["cider_d"] >= 0.0
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


class ShapesCaptionsForTest(tfds.core.GeneratorBasedBuilder):
    """A real, locally built TFDS dataset with its own "val" split (no mock, no download)."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return self.dataset_info_from_configs(features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(32, 32, 3)),
            "image/id": np.int64,
            "captions": tfds.features.Sequence({"text": tfds.features.Text()}),
        }))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples("train"), "val": self._generate_examples("val")}

    def _generate_examples(self, split):
        for scene in SHAPES.scenes(split):
            key = f"{split}-{scene['image_id']}"
            yield key, {"image": scene["image"], "image/id": (1000 if split == "val" else 0) + scene["image_id"],
                        "captions": {"text": scene["captions"]}}


def test_a_tfds_val_split_is_the_held_out_split(tmp_path):
    data_dir = str(tmp_path / "tfds")
    ShapesCaptionsForTest(data_dir=data_dir).download_and_prepare()
    config = zoo.config("shapes-captioner-tiny", **TINY, **{
        "data.dataset": "tfds", "data.path": "shapes_captions_for_test", "data.data_dir": data_dir})
    task = RecordCaptioningTask(config, str(tmp_path / "run"))
    info = task.prepare_data()
    assert info["train"]["num_records"] == 16 and info["val"]["num_records"] == 8
    assert _ids(task.val_reader) == sorted(str(1000 + s["image_id"]) for s in SHAPES.scenes("val"))
    assert task.skip_report().num_skipped == 0
