"""Tiny untrained exports for the serving-side command tests (no training: only the plumbing is tested)."""

import numpy as np
import pytest
import tensorflow as tf

from mmkeras.encoders import TextTransformerEncoder, ViTEncoder
from mmkeras.preprocessing.image_preprocessor import ImagePreprocessor
from mmkeras.preprocessing.subword_tokenizer import SubwordTokenizer

CORPUS = ["is there a red circle", "two blue squares", "a green star left of a red circle"]


def _towers(tokenizer):
    image = ViTEncoder(image_size=16, patch_size=8, hidden_dim=8, num_layers=1, num_heads=2, mlp_dim=16)
    text = TextTransformerEncoder(tokenizer.vocabulary_size(), 8, hidden_dim=8, num_layers=1, num_heads=2,
                                  mlp_dim=16, causal=False)
    return image, text


@pytest.fixture(scope="session")
def serving_parts():
    tokenizer = SubwordTokenizer.train(CORPUS, vocabulary_size=60, sequence_length=8)
    return tokenizer, ImagePreprocessor(image_size=16, resize="pad")


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory):
    """Five PNG / JPEG images in two sub-folders, one corrupt `.jpg` and one text file."""
    root = tmp_path_factory.mktemp("images")
    (root / "a").mkdir()
    (root / "b").mkdir()
    rng = np.random.default_rng(0)
    for i in range(5):
        image = rng.integers(0, 255, (20 + i, 16, 3), dtype=np.uint8)
        encode, ext = (tf.io.encode_png, "png") if i % 2 else (tf.io.encode_jpeg, "jpg")
        (root / ("a" if i < 3 else "b") / f"img{i}.{ext}").write_bytes(encode(image).numpy())
    (root / "b" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (root / "notes.txt").write_text("not an image")
    return root


@pytest.fixture(scope="session")
def dual_encoder_export(tmp_path_factory, serving_parts):
    from mmkeras.export import export_model
    from mmkeras.models import dual_encoder
    from mmkeras.preprocessing import MultimodalPreprocessor

    tokenizer, preprocessor = serving_parts
    path = str(tmp_path_factory.mktemp("dual") / "export")
    model = dual_encoder(*_towers(tokenizer), embed_dim=8, preprocessor=MultimodalPreprocessor(tokenizer, preprocessor))
    export_model(model, path)
    return path


@pytest.fixture(scope="session")
def fusion_export(tmp_path_factory, serving_parts):
    from mmkeras.export import export_model
    from mmkeras.models.fusion_classifier import fusion_classifier
    from mmkeras.preprocessing import MultimodalPreprocessor

    tokenizer, preprocessor = serving_parts
    model = fusion_classifier(*_towers(tokenizer), fusion="concat", fusion_kwargs={"output_dim": 8},
                              heads={"answer": {"type": "multiclass", "num_classes": 3,
                                                "labels": ["no", "yes", "two"]}},
                              preprocessor=MultimodalPreprocessor(tokenizer, preprocessor))
    path = str(tmp_path_factory.mktemp("fusion") / "export")
    export_model(model, path)
    return path
