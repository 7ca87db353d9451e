import numpy as np
import pytest

from mmkeras.layers import ModalityTypeEmbedding
from mmkeras.testing.layer_checks import run_layer_checks


def test_checks(tmp_path):
    run_layer_checks(
        ModalityTypeEmbedding,
        {"num_modalities": 3},
        {"tokens": np.ones((2, 4, 8), "float32")},
        str(tmp_path),
        call_kwargs={"modality_index": 2},
        expected_output_shape=(2, 4, 8),
    )


def test_each_modality_gets_its_own_row_and_type_ids_agree():
    layer = ModalityTypeEmbedding(num_modalities=2)
    zeros = np.zeros((1, 3, 4), "float32")
    a = layer(zeros, modality_index=0).numpy()
    b = layer(zeros, modality_index=1).numpy()
    table = layer.embedding.numpy()
    np.testing.assert_allclose(a[0, 0], table[0])
    np.testing.assert_allclose(b[0, 2], table[1])
    mixed = layer(zeros, type_ids=np.array([[0, 1, 1]])).numpy()
    np.testing.assert_allclose(mixed[0], table[[0, 1, 1]])


def test_bad_modality_index():
    layer = ModalityTypeEmbedding(num_modalities=2)
    with pytest.raises(ValueError, match="modality_index"):
        layer(np.zeros((1, 3, 4), "float32"), modality_index=2)
