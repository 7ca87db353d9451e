"""`model_inputs`: record batches -> each family's `fit` inputs."""

import numpy as np
import pytest
import tensorflow as tf

from mmkeras.data.model_inputs import model_inputs

B, L, H = 3, 5, 4


def _batch(k=None):
    ids = np.arange(B * (k or 1) * L, dtype=np.int32).reshape((B, k, L) if k else (B, L))
    return {"images": np.random.default_rng(0).random((B, H, H, 3)).astype("float32"), "token_ids": ids,
            "text_present": np.array([1.0, 0.0, 1.0], "float32"), "label": np.array([2, 0, 1], np.int64)}


def test_matching_takes_images_and_token_ids():
    batch = _batch()
    out = model_inputs("matching")(batch)
    assert sorted(out) == ["images", "token_ids"]
    np.testing.assert_array_equal(out["images"], batch["images"])
    np.testing.assert_array_equal(out["token_ids"], batch["token_ids"])


def test_captioning_shifts_the_ids_for_teacher_forcing():
    batch = _batch()
    x, y = model_inputs("captioning")(batch)
    assert sorted(x) == ["images", "token_ids"] and x["images"].shape == (B, H, H, 3)
    assert x["token_ids"].shape == (B, L - 1) and y.shape == (B, L - 1)
    np.testing.assert_array_equal(x["token_ids"].numpy(), batch["token_ids"][:, :-1])
    np.testing.assert_array_equal(y.numpy(), batch["token_ids"][:, 1:])


def test_captioning_k_captions_per_image_become_b_times_k_rows_side_by_side():
    k = 2
    batch = _batch(k)
    x, y = model_inputs("captioning")(batch)
    assert x["images"].shape == (B, H, H, 3)  # each image once; the decoder repeats it K times
    assert x["token_ids"].shape == (B * k, L - 1) and y.shape == (B * k, L - 1)
    rows = batch["token_ids"].reshape(B * k, L)
    np.testing.assert_array_equal(x["token_ids"].numpy(), rows[:, :-1])
    np.testing.assert_array_equal(y.numpy(), rows[:, 1:])
    # image i's captions are rows i*K .. i*K+K-1
    np.testing.assert_array_equal(y.numpy()[2:4], batch["token_ids"][1][:, 1:])


def test_captioning_keeps_static_shapes_inside_a_dataset():
    dataset = tf.data.Dataset.from_tensors(_batch(2)).map(model_inputs("captioning"))
    x_spec, y_spec = dataset.element_spec
    assert x_spec["token_ids"].shape == (B * 2, L - 1) and y_spec.shape == (B * 2, L - 1)


def test_fusion_features_and_label():
    batch = _batch()
    x, y = model_inputs("fusion")(batch)
    assert sorted(x) == ["image_present", "images", "text_present", "token_ids"]
    assert x["images"].shape == (B, H, H, 3) and x["token_ids"].shape == (B, L)
    np.testing.assert_array_equal(x["image_present"].numpy(), np.ones(B, "float32"))
    np.testing.assert_array_equal(x["text_present"].numpy(), batch["text_present"])
    np.testing.assert_array_equal(np.asarray(y), batch["label"])
    x, y = model_inputs("fusion", label_head="shape")(batch)
    assert sorted(y) == ["shape"]
    np.testing.assert_array_equal(np.asarray(y["shape"]), batch["label"])


def test_bad_family_and_label_head_are_clear_errors():
    with pytest.raises(ValueError, match="`family` must be one of .*'retrieval'"):
        model_inputs("retrieval")
    with pytest.raises(ValueError, match="`label_head` applies to the 'fusion' family only"):
        model_inputs("matching", label_head="shape")
