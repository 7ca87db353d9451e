import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from mmkeras.encoders import TextTransformerEncoder, ViTEncoder
from mmkeras.export import export_model
from mmkeras.models.fusion_classifier import fusion_classifier
from mmkeras.preprocessing.image_preprocessor import ImagePreprocessor
from mmkeras.preprocessing.multimodal_preprocessor import MultimodalPreprocessor
from mmkeras.preprocessing.subword_tokenizer import SubwordTokenizer

CORPUS = ["is there a red circle", "two blue squares", "a green star left of a red circle", "how many shapes"]
HEADS = {
    "answer": {"type": "multiclass", "num_classes": 3, "labels": ["no", "yes", "two"]},
    "match": {"type": "binary", "labels": ["false", "true"]},
    "tags": {"type": "multilabel", "num_classes": 2, "labels": ["red", "blue"]},
}


def _towers(vocabulary_size):
    image = ViTEncoder(image_size=16, patch_size=8, hidden_dim=8, num_layers=1, num_heads=2, mlp_dim=16)
    text = TextTransformerEncoder(vocabulary_size, 8, hidden_dim=8, num_layers=1, num_heads=2, mlp_dim=16,
                                  causal=False)
    return image, text


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("fusion_export")
    tokenizer = SubwordTokenizer.train(CORPUS, vocabulary_size=60, sequence_length=8)
    preprocessor = ImagePreprocessor(image_size=16, resize="pad")
    model = fusion_classifier(*_towers(tokenizer.vocabulary_size()), fusion="early",
                              fusion_kwargs={"hidden_dim": 8, "num_layers": 1, "num_heads": 2}, heads=HEADS,
                              preprocessor=MultimodalPreprocessor(tokenizer, preprocessor))
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, size, dtype=np.uint8) for size in [(20, 12, 3), (16, 16, 1), (40, 40, 3)]]
    paths = []
    for i, image in enumerate(images):
        path = root / f"image_{i}.{'png' if i % 2 else 'jpg'}"
        path.write_bytes((tf.io.encode_png if i % 2 else tf.io.encode_jpeg)(image).numpy())
        paths.append(str(path))
    export_model(model, str(root / "export"))
    raw = [open(p, "rb").read() for p in paths]
    # Example 3 has no image (empty bytes in the export, image_present 0 here), example 1 no text (empty string).
    texts = ["is there a red circle", "", "two blue squares", "how many shapes"]
    inputs = {
        "images": preprocessor(tf.constant(raw + [raw[0]])).numpy(),
        "token_ids": tokenizer(tf.constant(texts)).numpy(),
        "image_present": np.array([1, 1, 1, 0], "float32"),
        "text_present": np.array([1, 0, 1, 1], "float32"),
    }
    probs = {k: np.asarray(v) for k, v in model.probabilities(model(inputs)).items()}
    return root, paths, texts, probs, (model, tokenizer)


def test_fresh_process_without_mmkeras_matches_in_memory(exported):
    root, paths, texts, probs, _ = exported
    script = textwrap.dedent(
        f"""
        import json, sys
        import tensorflow as tf, tensorflow_text  # tensorflow_text registers the tokenizer ops
        serving = tf.saved_model.load({str(root / 'export')!r})
        raw = [open(p, "rb").read() for p in {paths!r}] + [b""]
        out = serving.signatures["classify"](image_bytes=tf.constant(raw), text=tf.constant({texts!r}))
        print(json.dumps({{k: v.numpy().tolist() if v.dtype != tf.string else
                          [s.decode() for s in v.numpy().tolist()] for k, v in out.items()}}
                         | {{"mmkeras_loaded": "mmkeras" in sys.modules}}))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["mmkeras_loaded"] is False
    np.testing.assert_allclose(result["answer_probs"], probs["answer"], atol=1e-5)
    np.testing.assert_allclose(np.array(result["match_probs"])[:, 1], probs["match"], atol=1e-5)
    np.testing.assert_allclose(np.sum(result["match_probs"], axis=-1), 1.0, atol=1e-6)
    np.testing.assert_allclose(result["tags_probs"], probs["tags"], atol=1e-5)
    names = np.array(HEADS["answer"]["labels"])
    assert result["answer_label"] == names[np.argmax(probs["answer"], axis=-1)].tolist()
    assert result["match_label"] == [["false", "true"][int(p >= 0.5)] for p in probs["match"]]
    expected_tags = [",".join(n for n, p in zip(["red", "blue"], row) if p >= 0.5) for row in probs["tags"]]
    assert result["tags_label"] == expected_tags


def test_empty_inputs_mean_absent(exported):
    root, paths, _, _, (model, tokenizer) = exported
    serving = tf.saved_model.load(str(root / "export"))
    raw = tf.constant([open(paths[0], "rb").read()] * 2)
    with_text = serving.signatures["classify"](image_bytes=raw, text=tf.constant(["two blue squares", ""]))
    blank_text = serving.signatures["classify"](image_bytes=raw, text=tf.constant(["two blue squares", "   "]))
    np.testing.assert_allclose(with_text["answer_probs"].numpy(), blank_text["answer_probs"].numpy(), atol=1e-6)
    # No image: the prediction is the model's with the image masked out, whatever image it is given.
    no_image = serving.signatures["classify"](image_bytes=tf.constant([b""]), text=tf.constant(["two blue squares"]))
    masked = model.probabilities(model({
        "images": np.random.default_rng(3).uniform(-1, 1, (1, 16, 16, 3)).astype("float32"),
        "token_ids": tokenizer(tf.constant(["two blue squares"])),
        "image_present": np.zeros(1, "float32"),
    }))
    np.testing.assert_allclose(no_image["answer_probs"].numpy(), masked["answer"], atol=1e-5)
    assert no_image["answer_label"].numpy()[0].decode() in HEADS["answer"]["labels"]
    with pytest.raises(tf.errors.InvalidArgumentError, match="(?i)image"):
        serving.signatures["classify"](image_bytes=tf.constant([b"not an image"]), text=tf.constant(["x"]))


def test_empty_batch_and_mismatched_sizes(exported):
    root, paths, _, _, _ = exported
    classify = tf.saved_model.load(str(root / "export")).signatures["classify"]
    empty = classify(image_bytes=tf.constant([], tf.string), text=tf.constant([], tf.string))
    assert {k: tuple(v.shape) for k, v in empty.items()} == {
        "answer_probs": (0, 3), "answer_label": (0,), "match_probs": (0, 2), "match_label": (0,),
        "tags_probs": (0, 2), "tags_label": (0,),
    }
    sizes = r"image_bytes of size\] \[1\] \[and text of size\] \[3\]"
    with pytest.raises(tf.errors.InvalidArgumentError, match=sizes):
        classify(image_bytes=tf.constant([open(paths[0], "rb").read()]), text=tf.constant(["a", "b", "c"]))


def test_extra_inputs_and_non_fusion_models_are_rejected(tmp_path):
    image, text = _towers(30)
    model = fusion_classifier(image, text, extra_inputs={"numeric": 2}, heads={"m": {"type": "binary"}})
    with pytest.raises(ValueError, match="extra inputs"):
        export_model(model, str(tmp_path / "x"))
    with pytest.raises(ValueError, match="FusionClassifier"):
        export_model(image, str(tmp_path / "y"))
