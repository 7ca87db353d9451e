import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from mmkeras.encoders import TextTransformerEncoder, ViTEncoder
from mmkeras.export import export_model
from mmkeras.models import dual_encoder
from mmkeras.preprocessing.image_preprocessor import ImagePreprocessor
from mmkeras.preprocessing.multimodal_preprocessor import MultimodalPreprocessor
from mmkeras.preprocessing.subword_tokenizer import SubwordTokenizer

CORPUS = ["a red circle", "two blue squares", "a green star left of a red circle", "a yellow hexagon"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("dual_export")
    tokenizer = SubwordTokenizer.train(CORPUS, vocabulary_size=60, sequence_length=8)
    preprocessor = ImagePreprocessor(image_size=32, resize="pad")
    model = dual_encoder(
        ViTEncoder(image_size=32, patch_size=16, hidden_dim=16, num_layers=1, num_heads=2, mlp_dim=32),
        TextTransformerEncoder(tokenizer.vocabulary_size(), 8, hidden_dim=16, num_layers=1, num_heads=2, mlp_dim=32),
        embed_dim=8,
        loss="siglip",
        preprocessor=MultimodalPreprocessor(tokenizer, preprocessor),
    )
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, size, dtype=np.uint8) for size in [(40, 30, 3), (17, 64, 3), (32, 32, 1)]]
    paths = []
    for i, image in enumerate(images):
        encode = tf.io.encode_png if i % 2 else tf.io.encode_jpeg
        path = root / f"image_{i}.{'png' if i % 2 else 'jpg'}"
        path.write_bytes(encode(image).numpy())
        paths.append(str(path))
    export_model(model, str(root / "export"))
    texts = ["a red circle", "", "blue " * 500, "ünïcödé ✓"]
    raw = tf.constant([open(p, "rb").read() for p in paths])
    expected = {
        "image": model.image_model(preprocessor(raw)).numpy().tolist(),
        "text": model.text_model(tokenizer(tf.constant(texts))).numpy().tolist(),
    }
    return root, paths, texts, expected


def test_fresh_process_without_mmkeras_matches_in_memory(exported):
    root, paths, texts, expected = exported
    script = textwrap.dedent(
        f"""
        import json, sys
        import tensorflow as tf, tensorflow_text  # tensorflow_text registers the tokenizer ops
        serving = tf.saved_model.load({str(root / 'export')!r})
        raw = tf.constant([open(p, "rb").read() for p in {paths!r}])
        image = serving.signatures["embed_image"](image_bytes=raw)["embeddings"].numpy()
        text = serving.signatures["embed_text"](text=tf.constant({texts!r}))["embeddings"].numpy()
        sim = serving.signatures["similarity"](image_bytes=raw, text=tf.constant({texts!r}))
        print(json.dumps({{"image": image.tolist(), "text": text.tolist(),
                          "logits_shape": list(sim["logits"].shape),
                          "mmkeras_loaded": "mmkeras" in sys.modules}}))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["mmkeras_loaded"] is False
    np.testing.assert_allclose(result["image"], expected["image"], atol=1e-5)
    np.testing.assert_allclose(result["text"], expected["text"], atol=1e-5)
    assert result["logits_shape"] == [3, 4]


def test_undecodable_bytes_give_a_clear_error(exported):
    root = exported[0]
    serving = tf.saved_model.load(str(root / "export"))
    with pytest.raises(tf.errors.InvalidArgumentError, match="(?i)image"):
        serving.signatures["embed_image"](image_bytes=tf.constant([b"not an image"]))
    # The loaded model keeps serving after a bad request.
    good = open(exported[1][0], "rb").read()
    assert serving.signatures["embed_image"](image_bytes=tf.constant([good]))["embeddings"].shape == (1, 8)
