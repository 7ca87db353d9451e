from mmkeras.data import ShapesSource, read_shards, write_shards
from mmkeras.preprocessing import SubwordTokenizer


def test_read_shards_matching_batches(tmp_path):
    write_shards(ShapesSource("val", image_size=32, num_examples=5), str(tmp_path), 2, "val")
    tokenizer = SubwordTokenizer.train(["a red star"], 40, sequence_length=6)
    batches = list(read_shards(str(tmp_path), "matching", tokenizer, split="val", image_size=24, batch_size=2,
                               drop_remainder=True))
    assert len(batches) == 2 and batches[0]["images"].shape == (2, 24, 24, 3)
    assert batches[0]["token_ids"].shape == (2, 6)
