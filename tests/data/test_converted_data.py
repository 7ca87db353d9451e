"""`ConvertedData`: real data converted into the run directory: broken real-layout files, skip reports, the
held-out split (a hash of the id, a Flickr split JSON, a TFDS val split), split lists, errors."""

import io
import json

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from mmkeras import zoo
from mmkeras.data import Shapes
from mmkeras.data.converted_data import ConvertedData, is_held_out
from mmkeras.tasks import task_for_config
from mmkeras.tasks.matching_task import MatchingTask



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


@pytest.fixture
def coco_config(coco_files, tiny_record_run, text_tower):
    """`zoo.config(preset, **extra)` of a tiny matching run on the COCO fixture files."""
    def make(preset="shapes-clip-tiny", **extra):
        overrides = {**tiny_record_run, **text_tower, "model.embed_dim": 16, "data.dataset": "coco",
                     "data.path": coco_files["captions_json"], "data.images": coco_files["image_dir"]}
        return zoo.config(preset, **{**overrides, **extra})

    return make


def test_conversion_skips_counts_and_reports_broken_records(coco_files, tmp_path, coco_config):
    task = task_for_config(coco_config(), tmp_path / "run")
    assert isinstance(task, MatchingTask) and isinstance(task.data, ConvertedData)
    info = task.data.prepare()
    report = task.data.skip_report()
    assert dict(report.skipped) == {"corrupt image": 1, "missing image": 1, "empty caption": 1}
    assert report.repaired["cmyk image"] == 1 and report.repaired["grayscale image"] == 1
    assert report.kept == 33 == info["train"]["num_records"] + info["val"]["num_records"]
    # The held-out split is the hash of the record id: the same on every run.
    coco = json.loads(open(coco_files["captions_json"]).read())
    ids = [str(image["id"]) for image in coco["images"][5:]] + [str(coco["images"][i]["id"]) for i in (2, 3)]
    assert info["val"]["num_records"] == sum(is_held_out(i, 0.25) for i in ids) > 0
    assert len(task.data.tokenizer_corpus()) == 5 * info["train"]["num_records"]
    data = task.data.data_report()
    assert data["num_train_records"] == info["train"]["num_records"]
    assert data["conversion"]["skipped"]["missing image"] == 1
    # A second task on the same run directory reuses the shards; another source is refused.
    again = task_for_config(coco_config(), tmp_path / "run")
    assert again.data.prepare()["train"]["files"] == info["train"]["files"]
    other = task_for_config(coco_config(**{"data.val_fraction": 0.5}), tmp_path / "run")
    with pytest.raises(ValueError, match="holds data converted from.*or `--overwrite` to start afresh"):
        other.data.prepare()
    other.remove_previous_run()  # what `--overwrite` does first: the other source's data is converted anew
    assert other.data.prepare()["val"]["num_records"] == sum(is_held_out(i, 0.5) for i in ids)


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
def test_errors_name_the_field(coco_files, tmp_path, overrides, message, tiny_record_run):
    root = coco_files["captions_json"].rsplit("/", 1)[0]
    overrides = {k: v.format(csv=coco_files["csv"], root=root) if isinstance(v, str) else v
                 for k, v in overrides.items()}
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        task = task_for_config(zoo.config("shapes-captioner-tiny", **{**tiny_record_run, **overrides}), tmp_path / "run")
        task.steps_per_epoch


def test_fusion_needs_labels(coco_files, tmp_path, tiny_record_run, text_tower):
    fusion = {**tiny_record_run, **text_tower}
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
        task.prepare()
    info = json.loads((tmp_path / "b" / "data" / "dataset_info.json").read_text())
    assert info["splits"]["train"]["skip_report"]["skipped"] == {"missing label": 15}


def test_data_summary_comes_before_training_and_the_split_lists_are_written(coco_files, tmp_path, capsys, coco_config):
    task = task_for_config(coco_config(**{"train.global_batch_size": 4}), tmp_path / "run")
    task.train(verbose=1)
    out = capsys.readouterr().out
    assert out.index("mmkeras: converting coco:") < out.index("kept 33 records") < out.index("loss:")
    lists = {split: (tmp_path / "run" / "splits" / f"{split}.txt").read_text().splitlines() for split in ("train", "val")}
    for split, reader in (("train", task.data.train_reader), ("val", task.data.val_reader)):
        ids = [i.decode() for i in reader.records(deterministic=True).map(lambda r: r["id"]).as_numpy_iterator()]
        assert sorted(lists[split]) == sorted(ids) and len(ids) == task.data.prepare()[split]["num_records"]
        assert task.data.split_list(split) == str(tmp_path / "run" / "splits" / f"{split}.txt")
    assert str(tmp_path / "run" / "splits" / "val.txt") in out
    assert not set(lists["train"]) & set(lists["val"])
    # Validation ran on the held-out split after the epoch.
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert len(history["val_loss"]) == 1 and len(history["val_batch_accuracy"]) == 1


# The captioner's decoder at the size of `tiny_record_run`'s towers; a short beam search.
CAPTIONER_MODEL = {"data.sequence_length": 12, "model.num_layers": 1, "model.hidden_dim": 16, "model.mlp_dim": 32,
                   "model.num_heads": 2, "eval.num_beams": 2, "eval.max_length": 6}
SHAPES = Shapes(image_size=32, num_train=16, num_val=8, num_test=4)


def _reader_ids(reader):
    return sorted(r["id"].decode() for r in reader.records(deterministic=True).as_numpy_iterator())


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


def test_a_tfds_val_split_is_the_held_out_split(tmp_path, tiny_record_run):
    from mmkeras.tasks.captioning_task import CaptioningTask

    data_dir = str(tmp_path / "tfds")
    ShapesCaptionsForTest(data_dir=data_dir).download_and_prepare()
    config = zoo.config("shapes-captioner-tiny", **tiny_record_run, **CAPTIONER_MODEL, **{
        "data.dataset": "tfds", "data.path": "shapes_captions_for_test", "data.data_dir": data_dir})
    task = CaptioningTask(config, str(tmp_path / "run"))
    assert isinstance(task.data, ConvertedData)
    info = task.data.prepare()
    assert info["train"]["num_records"] == 16 and info["val"]["num_records"] == 8
    assert _reader_ids(task.data.val_reader) == sorted(str(1000 + s["image_id"]) for s in SHAPES.scenes("val"))
    assert task.data.skip_report().num_skipped == 0
