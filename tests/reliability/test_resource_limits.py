"""Resource limits: decompression bombs, huge texts and huge captions are refused, cut or skipped, cheaply."""

import json
import struct
import time
import zlib

import numpy as np
import pytest
import tensorflow as tf

from mmkeras.cli import main
from mmkeras.data import Manifest, RecordCleaner
from mmkeras.encoders import TextTransformerEncoder, ViTEncoder
from mmkeras.preprocessing import (
    ImagePreprocessor,
    MultimodalPreprocessor,
    SubwordTokenizer,
    check_image_bytes,
    map_with_error_flags,
    try_decode_image,
)

CORPUS = ["is there a red circle", "two blue squares", "a green star left of a red circle"]
TOO_MANY = r"refused the image at batch index\] \[{}\] \[\(too many pixels:\] \[20000x20000\]"


def png_bomb(height=20000, width=20000):
    """A PNG whose IHDR declares `height` x `width` (1.2 GB of RGB) with a tiny zlib stream."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + b"".join(
        chunk(kind, data)
        for kind, data in ((b"IHDR", ihdr), (b"IDAT", zlib.compress(b"\0" * 1000)), (b"IEND", b""))
    )


def png(height=20, width=20):
    return tf.io.encode_png(np.full((height, width, 3), 200, np.uint8)).numpy()


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """Tiny untrained dual-encoder, captioner and fusion exports with the default pixel and text limits."""
    from mmkeras.export import export_model
    from mmkeras.models import captioner, dual_encoder, fusion_classifier

    root = tmp_path_factory.mktemp("exports")
    tokenizer = SubwordTokenizer.train(CORPUS, vocabulary_size=60, sequence_length=8)
    images = ImagePreprocessor(image_size=16)

    def vit():
        return ViTEncoder(image_size=16, patch_size=8, hidden_dim=8, num_layers=1, num_heads=2, mlp_dim=16)

    def text():
        return TextTransformerEncoder(tokenizer.vocabulary_size(), 8, hidden_dim=8, num_layers=1, num_heads=2,
                                      mlp_dim=16, causal=False)

    dual = dual_encoder(vit(), text(), embed_dim=8, preprocessor=MultimodalPreprocessor(tokenizer, images))
    export_model(dual, str(root / "dual"))
    rows = SubwordTokenizer.from_config({**tokenizer.get_config(), "sequence_length": 9})
    model = captioner(vit(), vocabulary_size=None, sequence_length=8, num_layers=1, num_heads=2,
                      preprocessor=MultimodalPreprocessor(rows, images))
    export_model(model, str(root / "captioner"), strategy="greedy", max_length=4)
    fusion = fusion_classifier(vit(), text(), fusion="concat", fusion_kwargs={"output_dim": 8},
                               heads={"answer": {"type": "multiclass", "num_classes": 2, "labels": ["no", "yes"]}},
                               preprocessor=MultimodalPreprocessor(tokenizer, images))
    export_model(fusion, str(root / "fusion"))
    return {name: str(root / name) for name in ("dual", "captioner", "fusion")}


# --- 1. decompression bombs ----------------------------------------------------------------------
def test_bomb_is_refused_before_decoding_naming_index_and_size():
    layer = ImagePreprocessor(image_size=8)
    assert layer.get_config()["max_pixels"] == 50_000_000
    with pytest.raises(tf.errors.InvalidArgumentError, match=TOO_MANY.format(1)):
        layer(tf.constant([png(), png_bomb()]))
    # Training input: the same refusal inside tf.data.
    ds = tf.data.Dataset.from_tensor_slices([png(), png_bomb()]).batch(2).map(layer)
    with pytest.raises(tf.errors.InvalidArgumentError, match=TOO_MANY.format(1)):
        list(ds)
    # Flagging paths: bad, never decoded, the epoch goes on.
    batch = tf.constant([png_bomb(), png()])
    assert check_image_bytes(batch).numpy().tolist() == [False, True]
    assert try_decode_image(batch, 8)[1].numpy().tolist() == [False, True]
    assert layer.try_decode(batch)[1].numpy().tolist() == [False, True]
    flagged = map_with_error_flags(tf.data.Dataset.from_tensor_slices(batch), layer)
    assert [bool(ok) for _, ok in flagged] == [False, True]


def test_pixel_limit_applies_to_real_images_and_is_saved():
    small = ImagePreprocessor(image_size=8, max_pixels=100)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"\[20x20\] \[width x height, over max_pixels=100\)"):
        small(tf.constant([png(5, 5), png(20, 20)]))
    jpeg = tf.io.encode_jpeg(np.zeros((20, 20, 3), np.uint8)).numpy()
    assert check_image_bytes(tf.constant([jpeg, png(5, 5)]), max_pixels=100).numpy().tolist() == [False, True]
    assert small(tf.constant([png(10, 10)])).shape == (1, 8, 8, 3)
    clone = ImagePreprocessor.from_config(small.get_config())
    assert clone.max_pixels == 100
    assert ImagePreprocessor(image_size=8, max_pixels=400)(tf.constant([png(20, 20), jpeg])).shape == (2, 8, 8, 3)
    with pytest.raises(ValueError, match="max_pixels"):
        ImagePreprocessor(max_pixels=0)


def test_record_cleaner_skips_bombs_as_too_many_pixels():
    cleaner = RecordCleaner(num_threads=1)
    kept = cleaner.clean([
        {"id": "bomb", "image": png_bomb(), "texts": ["big"]},
        {"id": "ok", "image": png(), "texts": ["small"]},
    ])
    assert [r["id"] for r in kept] == ["ok"]
    assert dict(cleaner.report.skipped) == {"too many pixels": 1}


def test_serving_signature_and_commands_refuse_bombs_in_one_line(tmp_path, capsys, exports):
    serving = tf.saved_model.load(exports["dual"])
    with pytest.raises(tf.errors.InvalidArgumentError, match=TOO_MANY.format(0)):
        serving.signatures["embed_image"](image_bytes=tf.constant([png_bomb(), png()]))
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "bomb.png").write_bytes(png_bomb())
    (folder / "ok.png").write_bytes(png())
    assert main(["index", exports["dual"], "--images", str(folder), "--out", str(tmp_path / "index")]) == 0
    info = json.loads((tmp_path / "index" / "index.json").read_text())
    assert info["paths"] == [str(folder / "ok.png")]
    [skipped] = info["skipped"]
    assert "too many pixels: 20000x20000" in skipped["reason"] and "\n" not in skipped["reason"]
    capsys.readouterr()
    bomb = str(folder / "bomb.png")
    for argv in (["caption", exports["captioner"], bomb], ["classify", exports["fusion"], "--image", bomb]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "too many pixels: 20000x20000" in err and bomb in err, argv


# --- 2. huge texts ---------------------------------------------------------------------------------
def test_huge_text_is_cut_to_max_text_bytes_before_tokenizing(exports):
    tokenizer = SubwordTokenizer.train(CORPUS, vocabulary_size=60, sequence_length=16)
    assert tokenizer.get_config()["max_text_bytes"] == 65536
    text = "a red circle " * 400_000  # 5.2 MB
    tokenizer(["warm up"])
    start = time.perf_counter()
    ids = tokenizer([text])
    assert time.perf_counter() - start < 1.5  # about 4 s without the cut, 0.1 s with it
    np.testing.assert_array_equal(ids, tokenizer([text[:65536]]))
    short = SubwordTokenizer.from_config({**tokenizer.get_config(), "max_text_bytes": 11})
    np.testing.assert_array_equal(short([text]), tokenizer(["a red circl"]))
    np.testing.assert_array_equal(short(["two ééééé"]), tokenizer(["two ééé"]))  # not inside a character
    embed_text = tf.saved_model.load(exports["dual"]).signatures["embed_text"]
    embed_text(text=tf.constant(["warm up"]))
    start = time.perf_counter()
    out = embed_text(text=tf.constant([text * 4]))["embeddings"]  # 20 MB
    assert time.perf_counter() - start < 3.0  # about 20 s without the cut
    np.testing.assert_allclose(out, embed_text(text=tf.constant([text[:100]]))["embeddings"], atol=1e-6)


# --- 3. huge captions in a manifest -----------------------------------------------------------------
def test_ten_megabyte_caption_is_one_skipped_row(tmp_path):
    (tmp_path / "a.png").write_bytes(png(4, 4))
    (tmp_path / "b.png").write_bytes(png(5, 5))
    huge = "word " * 2_000_000
    (tmp_path / "m.csv").write_text(f"image_path,text\na.png,a cat\nb.png,{huge}\nb.png,a dog\n")
    lines = [{"image_path": "a.png", "text": "a cat"}, {"image_path": "b.png", "text": huge}]
    (tmp_path / "m.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    for name, expected in (("m.csv", [("a.png", ["a cat"]), ("b.png", ["a dog"])]),
                           ("m.jsonl", [("a.png", ["a cat"])])):
        source = Manifest(str(tmp_path / name))
        assert [(r["id"], r["texts"]) for r in source] == expected
        assert dict(source.report.skipped) == {"text too long": 1}
        assert source.report.examples["text too long"] == ["line 3" if name == "m.csv" else "line 2"]


def test_the_pixel_limit_is_one_config_field_for_loading_training_and_serving(tmp_path):
    from mmkeras import zoo
    from mmkeras.data import open_source
    from mmkeras.tasks import task_for_config

    (tmp_path / "small.png").write_bytes(png(8, 8))
    (tmp_path / "large.png").write_bytes(png(20, 20))
    (tmp_path / "m.csv").write_text("image_path,text\nsmall.png,a cat\nlarge.png,a dog\n")
    source = open_source(f"csv:{tmp_path / 'm.csv'}", max_pixels=100)
    assert [r["id"] for r in source] == ["small.png"]
    assert dict(source.report.skipped) == {"too many pixels": 1}
    config = zoo.config("shapes-clip-tiny", **{"data.dataset": "csv", "data.path": str(tmp_path / "m.csv"),
                                               "data.max_pixels": 100})
    task = task_for_config(config, str(tmp_path / "run"))
    assert task.preprocessor.max_pixels == 100  # the image converter the model (and so its export) carries
    with pytest.raises(ValueError, match=r"`data.max_pixels` must be in \[1, inf\)"):
        zoo.config("shapes-clip-tiny", **{"data.max_pixels": 0})
