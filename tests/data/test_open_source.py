import pytest

from mmkeras.data import CocoCaptions, FlickrCaptions, ImageFolder, ShapesSource, TfdsSource, open_source


def test_specs(tmp_path):
    assert isinstance(open_source("shapes", num_examples=1), ShapesSource)
    assert open_source("shapes:val", num_examples=1).split == "val"
    coco = open_source("coco:/x/c.json", images="/imgs")
    assert isinstance(coco, CocoCaptions) and coco.images_dir == "/imgs"
    flickr = open_source("flickr:/x/t.txt", split_json="/x/s.json", split="test")
    assert isinstance(flickr, FlickrCaptions) and flickr.split == "test"
    assert open_source("csv:/x/m.csv").format == "csv"
    assert open_source("jsonl:/x/m.txt").format == "jsonl"
    assert isinstance(open_source(f"folder:{tmp_path}"), ImageFolder)
    assert isinstance(open_source("tfds:coco_captions", data_dir="/d"), TfdsSource)
    for bad in ("coco", "coco:", "s3:x"):
        with pytest.raises(ValueError, match="source"):
            open_source(bad)
