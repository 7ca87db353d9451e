import numpy as np
import pytest

from mmkeras.layers import RepeatToBatch
from mmkeras.testing.layer_checks import run_layer_checks


def test_checks_and_rows_repeated_in_place(tmp_path):
    tokens = np.random.default_rng(0).normal(size=(2, 3, 4)).astype("float32")
    like = np.zeros((6, 5), "int32")
    out = run_layer_checks(
        RepeatToBatch, {}, {"tokens": tokens, "like": like}, str(tmp_path), expected_output_shape=(6, 3, 4)
    )
    np.testing.assert_array_equal(out, np.repeat(tokens, 3, axis=0))  # image i's rows side by side


def test_same_rows_pass_through_and_dtype_is_kept():
    tokens = np.ones((4, 2), "float32")
    out = RepeatToBatch(dtype="mixed_bfloat16")(tokens, np.zeros((4, 1)))
    assert out.dtype == "float32"
    np.testing.assert_array_equal(out, tokens)


def test_rows_not_a_multiple_is_a_clear_error():
    with pytest.raises(ValueError, match="K rows per image.*got 5 rows for 2 images"):
        RepeatToBatch(name="texts_per_image")(np.ones((2, 3), "float32"), np.zeros((5, 1)))
