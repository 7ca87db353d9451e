"""`mmkeras import`, `mmkeras zero-shot` and `mmkeras train --init` on the reference CLIP checkpoint."""

import json
import pathlib

import numpy as np
import pytest

from mmkeras.cli import main

FIXTURES = pathlib.Path(__file__).parents[1] / "fixtures" / "pretrained"
CLIP = FIXTURES / "hf_clip"
# The three captions the reference encoded (tests/fixtures/make_pretrained_fixtures.py).
CAPTIONS = [
    "a photo of a cat",
    "A Dog runs on the beach, at sunset!",
    "an extremely long caption about two small brown dogs playing with a red ball "
    "in the green park near the old river while children watch them",
]
TINY_SHAPES = ["--set", "data.num_train=64", "--set", "data.num_val=16", "--set", "data.num_test=16",
               "--set", "data.image_size=32", "--set", "train.tower_pretraining_steps=0", "--set", "train.global_batch_size=16", "--epochs", "1",
               "--no-jit", "--set", "train.graph_optimization=false", "--no-eval", "--no-export", "--quiet"]


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    run = tmp_path_factory.mktemp("import") / "clip"
    assert main(["import", f"hf:{CLIP}", "--output", str(run)]) == 0
    return run


def test_import_writes_a_run_directory_that_loads_and_exports(imported, capsys):
    import keras
    import tensorflow as tf

    assert {p.name for p in imported.iterdir()} >= {"config.json", "model.keras", "export"}
    config = json.loads((imported / "config.json").read_text())
    assert config["task"] == "matching" and config["data"]["sequence_length"] == 16
    assert config["data"]["image_size"] == 32 and "hf_clip" in config["description"]
    model = keras.saving.load_model(imported / "model.keras")
    expected = np.load(CLIP / "expected.npz")
    images = tf.transpose(expected["pixel_values"], [0, 2, 3, 1])
    reference = expected["image_embeds"] / np.linalg.norm(expected["image_embeds"], axis=1, keepdims=True)
    np.testing.assert_allclose(model.image_model(images), reference, atol=1e-4)
    serving = tf.saved_model.load(str(imported / "export"))
    text = serving.signatures["embed_text"](text=tf.constant(CAPTIONS))["embeddings"]
    reference = expected["text_embeds"] / np.linalg.norm(expected["text_embeds"], axis=1, keepdims=True)
    np.testing.assert_allclose(text, reference, atol=1e-4)
    # A second import into the same folder is refused unless asked for.
    assert main(["import", f"hf:{CLIP}", "--output", str(imported)]) == 2
    assert "already holds a run" in capsys.readouterr().err


@pytest.mark.parametrize("source, message", [
    ("openai/clip-vit-base-patch32", "must be KIND:DIR with KIND one of hf, open_clip, keras_hub"),
    ("hf:/nowhere/clip", "Checkpoint directory not found: /nowhere/clip"),
    (f"hf:{FIXTURES / 'hf_bert'}", "holds a single text tower: pair it with a image tower"),
    (f"hf:{FIXTURES / 'hf_vit'}", "holds a single image tower: pair it with a text tower (`--text hf:BERT_DIR`"),
])
def test_bad_sources_are_one_line_errors(tmp_path, capsys, source, message):
    assert main(["import", source, "--output", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_zero_shot_gives_the_reference_probabilities(imported, tmp_path, capsys):
    images = tmp_path / "images"
    images.mkdir()
    for path in sorted((CLIP / "raw").iterdir()):
        (images / path.name).write_bytes(path.read_bytes())
    (images / "broken.jpg").write_bytes(b"not an image")
    capsys.readouterr()
    assert main(["zero-shot", str(imported), "--images", str(images), "--labels", ",".join(c.replace(",", "")
                 for c in CAPTIONS[:1]) + ",a cat,a dog", "--top-k", "3"]) == 0
    out = capsys.readouterr().out
    assert "2 images, 3 labels (softmax over the labels); 1 skipped" in out and "broken.jpg" in out
    rows = [line.split("\t") for line in out.splitlines() if line.startswith(("0.jpg", "1.png"))]
    assert [r[0] for r in rows] == ["0.jpg", "1.png"]
    for row in rows:  # the top 3 labels of each image, by falling probability, summing to 1
        probabilities = [float(cell.rsplit(" ", 1)[1]) for cell in row[1:]]
        assert probabilities == sorted(probabilities, reverse=True) and abs(sum(probabilities) - 1) < 2e-3


def test_zero_shot_predict_matches_the_reference_features(imported):
    import keras

    from mmkeras.models.zero_shot import zero_shot_predict

    model = keras.saving.load_model(imported / "model.keras")
    expected = np.load(CLIP / "expected.npz")
    raw = [path.read_bytes() for path in sorted((CLIP / "raw").iterdir())]
    probabilities = zero_shot_predict(model, raw, CAPTIONS)

    def unit(x):
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    logits = float(np.exp(expected["logit_scale"])) * unit(expected["raw_image_embeds"]) @ unit(expected["text_embeds"]).T
    reference = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(probabilities, reference, atol=0.02)  # raw images: resize filters differ slightly
    with pytest.raises(ValueError, match="must hold strings containing"):
        zero_shot_predict(model, raw, ["a cat"], templates=("a photo",))


def test_train_init_starts_each_family_from_the_imported_towers(imported, tmp_path):
    import keras

    from mmkeras.preprocessing.clip_tokenizer import ClipTokenizer

    original = keras.saving.load_model(imported / "model.keras")
    run = tmp_path / "clip"
    lit = ["--set", "model.freeze_image_encoder=true"]
    assert main(["train", "shapes-clip-tiny", "--init", str(imported), "--output", str(run), *TINY_SHAPES, *lit]) == 0
    tuned = keras.saving.load_model(run / "model.keras")
    assert isinstance(tuned.preprocessor.tokenizer, ClipTokenizer) and tuned.count_params() == original.count_params()
    # LiT: the image tower is locked, the text tower moved.
    for name, moved in (("image_encoder", False), ("text_encoder", True)):
        before, after = original.get_layer(name).get_weights(), tuned.get_layer(name).get_weights()
        assert any(not np.array_equal(a, b) for a, b in zip(before, after)) == moved, name
    # Captioning: a new decoder on the imported image tower, with the task's own tokenizer.
    assert main(["train", "shapes-captioner-tiny", "--init", str(imported), "--output", str(tmp_path / "cap"),
                 *TINY_SHAPES]) == 0
    captioner = keras.saving.load_model(tmp_path / "cap" / "model.keras")
    assert type(captioner.preprocessor.tokenizer).__name__ == "SubwordTokenizer"
    assert captioner.preprocessor.image_converter.get_config()["mean"] == original.preprocessor.image_converter.get_config()["mean"]
    # Fusion: the preset's fusion on both imported towers and the imported tokenizer.
    assert main(["train", "shapes-fusion-late-tiny", "--init", str(imported), "--output", str(tmp_path / "fusion"),
                 "--set", "data.num_train=8", "--set", "data.num_val=4", "--set", "data.num_test=4",
                 "--set", "data.image_size=32", "--set", "train.global_batch_size=22", "--epochs", "1", "--no-jit",
                 "--set", "train.graph_optimization=false", "--set", "train.tower_pretraining_steps=0", "--no-eval",
                 "--no-export", "--quiet"]) == 0
    fusion = keras.saving.load_model(tmp_path / "fusion" / "model.keras")
    assert isinstance(fusion.preprocessor.tokenizer, ClipTokenizer)


def test_clip_and_fusion_start_from_a_captioners_image_tower_with_new_text_towers(tmp_path, capsys, monkeypatch):
    import keras

    from mmkeras import zoo
    from mmkeras.tasks import task_for_config

    assert main(["train", "shapes-captioner-tiny", "--output", str(tmp_path / "cap"), *TINY_SHAPES]) == 0
    captioner = keras.saving.load_model(tmp_path / "cap" / "model.keras")
    config = zoo.config("shapes-fusion-cross-attention-tiny", **{
        "train.init": str(tmp_path / "cap"), "data.image_size": 32, "data.num_train": 8, "data.num_val": 4,
        "data.num_test": 4})
    loads = []
    load_model = keras.saving.load_model
    monkeypatch.setattr(keras.saving, "load_model", lambda *a, **k: loads.append(a[0]) or load_model(*a, **k))
    task = task_for_config(config, str(tmp_path / "fusion"))
    model = task.build_model()
    assert loads == [str(tmp_path / "cap" / "model.keras")]  # read once: for the preprocessing and the towers
    assert task._stored_init is None  # let go once the model is built
    monkeypatch.undo()
    for a, b in zip(model.image_encoder.get_weights(), captioner.image_encoder.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    # The text tower is the config's, new, reading the task's own tokenizer (questions, not captions).
    assert model.text_encoder.get_config()["hidden_dim"] == config["text_encoder"]["hidden_dim"]
    assert model.preprocessor.tokenizer is task.tokenizer is not captioner.preprocessor.tokenizer
    assert "?" in task.tokenizer.get_vocabulary() and "?" not in captioner.preprocessor.tokenizer.get_vocabulary()
    assert main(["train", "shapes-fusion-cross-attention-tiny", "--init", str(tmp_path / "cap"), "--output",
                 str(tmp_path / "fusion-run"), "--set", "data.num_train=8", "--set", "data.num_val=4",
                 "--set", "data.num_test=4", "--set", "data.image_size=32", "--set", "train.global_batch_size=22",
                 "--set", "train.tower_pretraining_steps=0", "--epochs", "1", "--no-jit",
                 "--set", "train.graph_optimization=false", "--no-eval", "--quiet"]) == 0
    assert (tmp_path / "fusion-run" / "export" / "saved_model.pb").exists()
    # A dual encoder on the captioner's image tower (pooled only, as the matching family builds it).
    config = zoo.config("shapes-clip-tiny", **{"train.init": str(tmp_path / "cap"), "data.image_size": 32,
                                              "data.num_train": 8, "data.num_val": 4, "data.num_test": 4})
    task = task_for_config(config, str(tmp_path / "clip"))
    model = task.build_model()
    assert model.image_encoder.get_config()["pooled_only"] and model.preprocessor.tokenizer is task.tokenizer
    for a, b in zip(model.image_encoder.get_weights(), captioner.image_encoder.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert model.text_encoder.get_config()["causal"] == config["text_encoder"]["causal"]
    # A model with both towers that is not a dual encoder cannot start one.
    assert main(["train", "shapes-clip-tiny", "--init", str(tmp_path / "fusion-run"), "--output",
                 str(tmp_path / "clip-run"), *TINY_SHAPES]) == 2
    assert "starts from a dual encoder" in capsys.readouterr().err


def test_train_init_without_a_model_is_a_clear_error(tmp_path, capsys):
    assert main(["train", "shapes-clip-tiny", "--init", str(tmp_path), "--output", str(tmp_path / "run"),
                 *TINY_SHAPES]) == 2
    assert "`train.init`" in capsys.readouterr().err


def test_a_pretrained_preset_says_how_to_get_its_checkpoint(tmp_path, capsys):
    assert main(["train", "clip-vit-b32-openai", "--output", str(tmp_path / "run")]) == 2
    assert "fetch and import it first (`mmkeras info clip-vit-b32-openai` says how)" in capsys.readouterr().err
    assert main(["info", "siglip-base-patch16-224"]) == 0
    card = capsys.readouterr().out
    assert "https://huggingface.co/google/siglip-base-patch16-224" in card and "spiece.model" in card
    assert "mmkeras import hf:siglip-base-patch16-224 --output runs/siglip-b16" in card


def test_import_pairs_a_vit_with_a_bert_into_a_dual_encoder(tmp_path):
    import keras
    import tensorflow as tf

    from mmkeras.preprocessing.wordpiece_tokenizer import WordPieceTokenizer

    run = tmp_path / "lit"
    assert main(["import", f"hf:{FIXTURES / 'hf_vit'}", "--text", f"hf:{FIXTURES / 'hf_bert'}",
                 "--embed-dim", "8", "--output", str(run)]) == 0
    model = keras.saving.load_model(run / "model.keras")
    assert isinstance(model.preprocessor.tokenizer, WordPieceTokenizer) and model.embed_dim == 8
    serving = tf.saved_model.load(str(run / "export"))
    raw = [path.read_bytes() for path in sorted((FIXTURES / "hf_vit" / "raw").iterdir())]
    embeddings = serving.signatures["embed_image"](image_bytes=tf.constant(raw))["embeddings"]
    np.testing.assert_allclose(embeddings, model.image_model(model.preprocessor.image_converter(tf.constant(raw))),
                               atol=1e-5)
    assert main(["import", f"hf:{FIXTURES / 'hf_bert'}", "--text", f"hf:{FIXTURES / 'hf_vit'}",
                 "--output", str(tmp_path / "swapped")]) == 2
