import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.data.experimental.ops.distribute import _AutoShardDataset

from mmkeras.data import ShapesSource, ShardReader, ShardWriter, read_shards, write_shards
from mmkeras.data.model_inputs import model_inputs
from mmkeras.preprocessing import SubwordTokenizer

AutoShardPolicy = tf.data.experimental.AutoShardPolicy


@pytest.fixture(scope="module")
def shapes_shards(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("shards"))
    records = list(ShapesSource("train", image_size=32, num_examples=12))
    write_shards(records, out, num_shards=4, split="train")
    tokenizer = SubwordTokenizer.train([t for r in records for t in r["texts"]], 80, sequence_length=10)
    return out, records, tokenizer


def _ids(dataset):
    return [r["id"].numpy().decode() for r in dataset]


def test_round_trip_contents_equal(shapes_shards):
    out, records, _ = shapes_shards
    reader = ShardReader(out)
    assert len(reader.files) == 4
    got = {
        r["id"].numpy().decode(): (r["image"].numpy(), [t.decode() for t in r["texts"].numpy()], int(r["label"]))
        for r in reader.records(deterministic=True)
    }
    assert got == {r["id"]: (r["image"], r["texts"], r["label"]) for r in records}


def test_determinism_and_shuffling(shapes_shards):
    out, records, tokenizer = shapes_shards
    reader = ShardReader(out)
    kwargs = dict(shuffle=True, shuffle_buffer=8, seed=3, deterministic=True)
    first, second = _ids(reader.records(**kwargs)), _ids(ShardReader(out).records(**kwargs))
    assert first == second and sorted(first) == sorted(r["id"] for r in records)
    assert first != sorted(first)
    data = reader.dataset(tokenizer, image_size=32, batch_size=4, **kwargs)
    assert data.options().deterministic  # every parallel stage keeps its order


def test_auto_shard_policy_and_file_sharding_across_two_workers(shapes_shards):
    out, records, _ = shapes_shards
    reader = ShardReader(out)
    assert reader.records(num_workers=2).options().experimental_distribute.auto_shard_policy == AutoShardPolicy.FILE
    assert reader.records(num_workers=8).options().experimental_distribute.auto_shard_policy == AutoShardPolicy.DATA
    # What tf.distribute does on each of 2 workers: FILE policy -> disjoint files.
    workers = [_ids(_AutoShardDataset(reader.records(num_workers=2), 2, i)) for i in range(2)]
    assert not set(workers[0]) & set(workers[1])
    assert sorted(workers[0] + workers[1]) == sorted(r["id"] for r in records)
    shard_of = {r["id"]: i % 4 for i, r in enumerate(records)}  # round-robin writing
    assert {shard_of[i] for i in workers[0]} == {0, 2} and {shard_of[i] for i in workers[1]} == {1, 3}
    # distribute_datasets_from_function: explicit sharding by file, or by record with few files
    for pipelines in (2, 8):
        parts = [
            _ids(reader.records(input_context=tf.distribute.InputContext(pipelines, i, 1)))
            for i in range(pipelines)
        ]
        assert sorted(sum(parts, [])) == sorted(r["id"] for r in records)
        assert sum(map(len, parts)) == len(records)  # disjoint
        assert pipelines == 8 or all(parts)


def _bad_png(png):
    """A PNG whose structure is intact but whose IDAT data is damaged: only a real decode fails."""
    data = bytearray(png)
    start = data.index(b"IDAT") + 4
    data[start : start + 10] = b"\x00" * 10
    return bytes(data)


def test_bad_images_are_skipped_and_counted_and_families(tmp_path, image_set, shapes_shards):
    _, _, tokenizer = shapes_shards
    files = image_set.files
    with ShardWriter(str(tmp_path), num_shards=2) as writer:
        for i, (name, texts, label) in enumerate([
            ("good.jpg", ["a red circle"], "cat"), ("truncated.jpg", ["x"], "cat"),
            ("good.png", ["two blue stars", "a star"], "dog"), ("empty.jpg", ["y"], 1),
            ("cmyk.jpg", [], "dog"), ("good.gif", ["a square"], "cat"),
        ]):
            writer.write({"id": f"{i}", "image": files[name], "texts": texts, "label": label})
        writer.write({"id": "crc", "image": _bad_png(files["good.png"]), "texts": ["z"], "label": "cat"})
    reader = ShardReader(str(tmp_path))
    assert reader.class_names == ["cat", "dog"]
    # Records without text kept (`require_text=False`), marked missing: what fusion reads.
    fusion = list(reader.dataset(tokenizer, image_size=16, batch_size=2, deterministic=True, require_text=False))
    assert reader.num_bad_images == 3 and reader.num_without_text == 0
    assert sorted(fusion[0]) == ["images", "label", "text_present", "token_ids"]
    assert fusion[0]["images"].shape == (2, 16, 16, 3) and fusion[0]["token_ids"].shape == (2, 10)
    all_labels = np.concatenate([r["label"].numpy() for r in fusion]).tolist()
    present = np.concatenate([r["text_present"].numpy() for r in fusion]).tolist()
    assert sorted(all_labels) == [0, 0, 1, 1] and sorted(present) == [0.0, 1.0, 1.0, 1.0]
    features, labels = model_inputs("fusion")(fusion[0])
    assert features["images"].shape == (2, 16, 16, 3) and features["token_ids"].shape == (2, 10)
    np.testing.assert_array_equal(features["text_present"], fusion[0]["text_present"])
    np.testing.assert_array_equal(labels, fusion[0]["label"])
    reader.reset_counts()
    matching = list(reader.dataset(tokenizer, image_size=16, batch_size=3, drop_remainder=True))
    assert len(matching) == 1 and matching[0]["images"].shape == (3, 16, 16, 3)
    assert reader.num_bad_images == 3 and reader.num_without_text == 1
    captioning = reader.dataset(tokenizer, image_size=16, batch_size=2, drop_remainder=True,
                                caption="first", deterministic=True).map(model_inputs("captioning"))
    assert captioning.element_spec[0]["token_ids"].shape == (2, 9) and captioning.element_spec[1].shape == (2, 9)
    x, y = next(iter(captioning))
    assert (x["token_ids"].numpy()[:, 0] == tokenizer.bos_id).all()
    np.testing.assert_array_equal(x["token_ids"].numpy()[:, 1:], y.numpy()[:, :-1])
    spec = read_shards(str(tmp_path), "fusion", tokenizer, image_size=16, label_head="shape").element_spec
    assert set(spec[1]) == {"shape"} and set(spec[0]) == {"images", "token_ids", "image_present", "text_present"}


def test_bad_arguments(tmp_path, shapes_shards):
    out, _, tokenizer = shapes_shards
    with pytest.raises(ValueError, match="path"):
        ShardReader(str(tmp_path))
    reader = ShardReader(out)
    with pytest.raises(ValueError, match="family"):
        read_shards(out, "retrieval", tokenizer)
    with pytest.raises(ValueError, match="tokenizer"):
        reader.dataset(None)
    assert len(ShardReader(out + "/train-*.tfrecord").files) == 4
