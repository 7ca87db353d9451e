from mmkeras.data import ShapesSource, write_shards


def test_report_and_source_are_recorded(tmp_path):
    source = ShapesSource("val", image_size=32, num_examples=5)
    info = write_shards(source, str(tmp_path), num_shards=2, split="val")
    assert info["num_records"] == 5 and info["shard_counts"] == [3, 2]
    assert info["source"].startswith("shapes:val") and info["skip_report"]["kept"] == 5
