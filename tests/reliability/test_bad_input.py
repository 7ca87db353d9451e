"""Bad input to the loaders, the serving signatures and the serving commands: clear errors or counted skips."""

import json

import numpy as np
import pytest
import tensorflow as tf

from mmkeras.cli import main
from mmkeras.data import CocoCaptions, Manifest, Shapes
from mmkeras.encoders import TextTransformerEncoder, ViTEncoder
from mmkeras.preprocessing.image_preprocessor import ImagePreprocessor
from mmkeras.preprocessing.multimodal_preprocessor import MultimodalPreprocessor
from mmkeras.preprocessing.subword_tokenizer import SubwordTokenizer

CORPUS = ["is there a red circle", "two blue squares", "a green star left of a red circle"]


def _png(value):
    return tf.io.encode_png(tf.fill([4, 4, 3], tf.constant(value, tf.uint8))).numpy()


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """A tiny untrained fusion-classifier export and a dual-encoder export."""
    from mmkeras.export import export_model
    from mmkeras.models import dual_encoder
    from mmkeras.models.fusion_classifier import fusion_classifier

    root = tmp_path_factory.mktemp("exports")
    tokenizer = SubwordTokenizer.train(CORPUS, vocabulary_size=60, sequence_length=8)
    preprocessor = MultimodalPreprocessor(tokenizer, ImagePreprocessor(image_size=16, resize="pad"))

    def towers():
        image = ViTEncoder(image_size=16, patch_size=8, hidden_dim=8, num_layers=1, num_heads=2, mlp_dim=16)
        text = TextTransformerEncoder(tokenizer.vocabulary_size(), 8, hidden_dim=8, num_layers=1, num_heads=2,
                                      mlp_dim=16, causal=False)
        return image, text

    fusion = fusion_classifier(*towers(), fusion="concat", fusion_kwargs={"output_dim": 8},
                               heads={"answer": {"type": "multiclass", "num_classes": 2, "labels": ["no", "yes"]}},
                               preprocessor=preprocessor)
    export_model(fusion, str(root / "fusion"))
    export_model(dual_encoder(*towers(), embed_dim=8, preprocessor=preprocessor), str(root / "dual"))
    return str(root / "fusion"), str(root / "dual")


# --- 1. duplicate ids with different images ------------------------------------------------------
def test_manifest_duplicate_ids_with_different_images_are_skipped_and_counted(tmp_path):
    rows = ["id,image_path,text,label"]
    for i in range(5):
        (tmp_path / f"{i}.png").write_bytes(_png(40 * i))
        rows.append(f"same,{i}.png,caption {i},{i}")
    rows += ["pair,0.png,first caption,1", "pair,0.png,second caption,1"]  # same id, same image: grouped
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    source = Manifest(str(tmp_path / "m.csv"))
    records = {r["id"]: r for r in source}
    assert records["same"]["texts"] == ["caption 0"] and records["same"]["label"] == 0
    assert records["pair"]["texts"] == ["first caption", "second caption"]
    assert source.report.skipped["duplicate id"] == 4


def test_jsonl_manifest_duplicate_ids_with_different_images_are_skipped(tmp_path):
    for i in range(2):
        (tmp_path / f"{i}.png").write_bytes(_png(90 * i))
    lines = [{"id": "x", "image": f"{i}.png", "text": f"caption {i}"} for i in range(2)]
    (tmp_path / "m.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    source = Manifest(str(tmp_path / "m.jsonl"))
    assert [r["texts"] for r in source] == [["caption 0"]]
    assert dict(source.report.skipped) == {"duplicate id": 1}


# --- 2. serving signatures: empty and mismatched batches ------------------------------------------
def test_classify_signature_empty_batch_gives_empty_outputs(exports):
    classify = tf.saved_model.load(exports[0]).signatures["classify"]
    out = classify(image_bytes=tf.constant([], tf.string), text=tf.constant([], tf.string))
    assert out["answer_probs"].shape == (0, 2) and out["answer_label"].shape == (0,)


@pytest.mark.parametrize("num_images,num_texts", [(1, 3), (2, 3), (2, 0)])
def test_classify_signature_mismatched_batches_name_both_sizes(exports, num_images, num_texts):
    classify = tf.saved_model.load(exports[0]).signatures["classify"]
    with pytest.raises(tf.errors.InvalidArgumentError) as error:
        classify(image_bytes=tf.constant([_png(0)] * num_images, tf.string),
                 text=tf.constant(["a red circle"] * num_texts, tf.string))
    from mmkeras.commands.serving import error_reason

    reason = error_reason(error.value)
    assert f"image_bytes of size {num_images} and text of size {num_texts}" in reason


def test_similarity_signature_with_empty_inputs(exports):
    serving = tf.saved_model.load(exports[1])
    similarity = serving.signatures["similarity"]
    image, text = tf.constant([_png(0)]), tf.constant(["a red circle"])
    empty = tf.constant([], tf.string)
    assert similarity(image_bytes=empty, text=text)["logits"].shape == (0, 1)
    assert similarity(image_bytes=image, text=empty)["probabilities"].shape == (1, 0)
    assert serving.signatures["embed_image"](image_bytes=empty)["embeddings"].shape == (0, 8)
    assert serving.signatures["embed_text"](text=empty)["embeddings"].shape == (0, 8)


# --- 3. empty files and directories named on the command line -------------------------------------
def test_classify_and_caption_reject_empty_files_and_directories(tmp_path, capsys, exports):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    assert main(["classify", exports[0], "--image", str(empty)]) == 2
    err = capsys.readouterr().err.strip()
    assert "empty" in err and str(empty) in err and len(err.splitlines()) == 1
    for argv in (["classify", exports[0], "--image", str(tmp_path)], ["caption", exports[0], str(tmp_path)]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert "directory" in err and str(tmp_path) in err and len(err.splitlines()) == 1


# --- 4. every image missing (COCO JSON without --images) ------------------------------------------
@pytest.fixture
def coco_elsewhere(tmp_path):
    """A COCO layout whose images are not next to the JSON file."""
    return Shapes(image_size=32, num_train=6, num_val=1, num_test=1).write(str(tmp_path / "coco"), "train")


def test_loader_says_every_image_is_missing(coco_elsewhere):
    with pytest.raises(ValueError, match=r"every image .*missing.*--images"):
        list(CocoCaptions(coco_elsewhere["captions_json"]))
    assert len(list(CocoCaptions(coco_elsewhere["captions_json"], coco_elsewhere["image_dir"]))) == 6


def test_data_convert_without_images_folder_fails_with_hint(tmp_path, capsys, coco_elsewhere):
    out = tmp_path / "shards"
    assert main(["data", "convert", "--source", f"coco:{coco_elsewhere['captions_json']}",
                 "--output", str(out), "--num-shards", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--images" in err and "6 missing image" in err and len(err.splitlines()) == 1
    assert not out.exists() or not any(out.glob("*.tfrecord"))


def test_train_without_images_folder_fails_with_hint(tmp_path, capsys, coco_elsewhere):
    argv = ["train", "shapes-clip-tiny", "--data", f"coco:{coco_elsewhere['captions_json']}",
            "--output", str(tmp_path / "run"), "--quiet", "--epochs", "1", "--strategy", "cpu"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "every image is missing" in err and "--images" in err and len(err.splitlines()) == 1
