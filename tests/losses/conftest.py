"""Paired image and text embeddings for the contrastive-loss tests."""

import numpy as np
import pytest


@pytest.fixture
def embeddings():
    """`embeddings(batch, dim=5, seed=0)` -> float32 `(image, text)`, each `[batch, dim]` with unit rows."""

    def make(batch, dim=5, seed=0):
        rng = np.random.default_rng(seed)
        pair = rng.normal(size=(2, batch, dim))
        pair /= np.linalg.norm(pair, axis=-1, keepdims=True)
        return pair[0].astype("float32"), pair[1].astype("float32")

    return make
