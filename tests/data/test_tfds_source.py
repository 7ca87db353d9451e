import tensorflow as tf
import tensorflow_datasets as tfds

from mmkeras.data import TfdsSource


def test_coco_captions_layout_from_mock_data(tmp_path):
    with tfds.testing.mock_data(num_examples=3, data_dir=str(tmp_path)):
        source = TfdsSource("coco_captions", split="train", data_dir=str(tmp_path), skip_decoding=False)
        records = list(source)
    assert len(records) == 3 and source.report.kept == 3
    for record in records:
        assert record["image"][:4] == b"\x89PNG"
        assert tf.io.decode_png(record["image"]).shape[-1] == 3
        assert record["texts"] and all(isinstance(t, str) for t in record["texts"])
        assert record["label"] is None
    assert source.describe().startswith("tfds:coco_captions")


def test_class_label_dataset_with_undecoded_images(tmp_path):
    # mock_data on a dataset with flat features also works with SkipDecoding
    with tfds.testing.mock_data(num_examples=2, data_dir=str(tmp_path)):
        source = TfdsSource("beans", split="train", data_dir=str(tmp_path), require_texts=False)
        records = list(source)
    assert len(records) == 2
    names = tfds.builder("beans", data_dir=str(tmp_path)).info.features["label"].names
    assert all(r["label"] in names and r["texts"] == [] for r in records)
