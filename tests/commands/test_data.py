"""`mmkeras data convert` / `inspect` end to end."""

import json

from mmkeras.cli import main


def test_convert_shapes_and_inspect(tmp_path, capsys):
    out = tmp_path / "shards"
    argv = ["data", "convert", "--source", "shapes:val", "--image-size", "32", "--num-examples", "5",
            "--output", str(out), "--num-shards", "2"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "wrote 5 records" in printed and "kept 5 records; skipped 0 records" in printed
    assert sorted(p.name for p in out.iterdir()) == [
        "dataset_info.json", "val-00000-of-00002.tfrecord", "val-00001-of-00002.tfrecord",
    ]
    assert main(["data", "inspect", str(out)]) == 0
    assert "val: 5 records, 25 captions, 2 shards [3, 2]" in capsys.readouterr().out


def test_convert_broken_csv_manifest(tmp_path, capsys):
    import tensorflow as tf

    good = tf.io.encode_jpeg(tf.zeros([8, 8, 3], tf.uint8)).numpy()
    (tmp_path / "a.jpg").write_bytes(good)
    (tmp_path / "b.jpg").write_bytes(good[:40])
    (tmp_path / "c.jpg").write_bytes(b"")
    (tmp_path / "m.csv").write_bytes(
        b"image_path,text,label\na.jpg,a black square,1\na.jpg,dark,1\nb.jpg,cut,0\n"
        b"c.jpg,empty,0\nd.jpg,missing,0\na.jpg,\xff\xfe,1\n\"unclosed,x\n"
    )
    out = tmp_path / "out"
    assert main(["data", "convert", "--source", f"csv:{tmp_path / 'm.csv'}", "--output", str(out),
                 "--num-shards", "1"]) == 0
    printed = capsys.readouterr().out
    assert "wrote 1 records (3 captions)" in printed
    assert ("skipped 4 records: 2 missing image, 1 corrupt image, 1 empty image file; "
            "repaired 1: 1 invalid utf-8 replaced") in printed
    info = json.loads((out / "dataset_info.json").read_text())["splits"]["train"]
    assert info["skip_report"]["skipped"]["corrupt image"] == 1 and info["source"].startswith("csv:")


def test_errors(tmp_path, capsys):
    assert main(["data", "convert", "--source", "xml:foo", "--output", str(tmp_path)]) == 2
    assert "source" in capsys.readouterr().err
    assert main(["data", "convert", "--source", f"coco:{tmp_path}/none.json", "--output", str(tmp_path)]) == 2
    assert main(["data", "inspect", str(tmp_path)]) == 2
