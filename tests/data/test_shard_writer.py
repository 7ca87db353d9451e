import json

import pytest
import tensorflow as tf

from mmkeras.data import ShardWriter, SkipReport


def _record(i, png):
    return {"id": f"r{i}", "image": png, "texts": [f"caption {i}"], "label": "dog" if i % 2 else i}


def test_files_info_and_examples(tmp_path, image_set):
    png = image_set.files["good.png"]
    report = SkipReport()
    report.skip("corrupt image", "x")
    with ShardWriter(str(tmp_path), num_shards=3, split="train", source="test") as writer:
        for i in range(7):
            writer.write(_record(i, png))
        writer.close(report)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["dataset_info.json"] + [f"train-0000{i}-of-00003.tfrecord" for i in range(3)]
    info = json.loads((tmp_path / "dataset_info.json").read_text())
    split = info["splits"]["train"]
    assert split["num_records"] == 7 and split["shard_counts"] == [3, 2, 2] and split["num_texts"] == 7
    assert split["class_names"] == ["dog"] and split["skip_report"]["skipped"] == {"corrupt image": 1}
    example = tf.train.Example.FromString(next(iter(tf.data.TFRecordDataset(str(tmp_path / names[1])))).numpy())
    feature = example.features.feature
    assert feature["id"].bytes_list.value == [b"r0"] and feature["image"].bytes_list.value == [png]
    assert feature["texts"].bytes_list.value == [b"caption 0"] and feature["label"].int64_list.value == [0]
    # a second split is added to the same dataset_info.json
    with ShardWriter(str(tmp_path), num_shards=1, split="val") as writer:
        writer.write(_record(1, png))
    info = json.loads((tmp_path / "dataset_info.json").read_text())
    assert sorted(info["splits"]) == ["train", "val"] and info["splits"]["val"]["class_names"] == ["dog"]


def test_failed_write_leaves_no_files_and_bad_input(tmp_path, image_set):
    with pytest.raises(RuntimeError):
        with ShardWriter(str(tmp_path), num_shards=2) as writer:
            writer.write(_record(0, image_set.files["good.png"]))
            raise RuntimeError("stop")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="num_shards"):
        ShardWriter(str(tmp_path), num_shards=0)
    writer = ShardWriter(str(tmp_path), num_shards=1)
    with pytest.raises(ValueError, match="texts"):
        writer.write({"id": "a", "image": b"x", "texts": "not a list"})
    with pytest.raises(ValueError, match="image"):
        writer.write({"id": "a", "texts": []})
    writer.close()
