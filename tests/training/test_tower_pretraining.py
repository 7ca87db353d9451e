"""Image tower pretraining on what each grid cell holds: the cell readout, what it teaches a tower, the refusals."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mmkeras.data import Shapes
from mmkeras.data.shapes import CELL_CLASSES
from mmkeras.encoders import ViTEncoder
from mmkeras.preprocessing import ImagePreprocessor
from mmkeras.training.tower_pretraining import (
    cell_accuracies,
    cell_tokens,
    pretrain_image_tower,
    pretraining_learning_rate,
)


def test_cell_tokens_average_each_cells_patches_and_leave_out_a_class_token():
    tokens = np.random.default_rng(0).normal(size=(2, 36, 4)).astype("float32")  # a 6 x 6 grid
    grid = tokens.reshape(2, 3, 2, 3, 2, 4)
    expected = grid.mean(axis=(2, 4)).reshape(2, 9, 4)
    np.testing.assert_allclose(cell_tokens(tokens), expected, rtol=1e-6)
    with_class = np.concatenate([np.full((2, 1, 4), 99.0, "float32"), tokens], axis=1)
    np.testing.assert_allclose(cell_tokens(with_class), expected, rtol=1e-6)
    three = tokens[:, :9]  # one token per cell: read as they are
    np.testing.assert_allclose(cell_tokens(three), three)


@pytest.mark.parametrize("count", [16, 26, 11])
def test_cell_tokens_refuse_a_grid_that_is_not_a_multiple_of_three(count):
    with pytest.raises(ValueError, match=rf"multiple of 3 .*got {count} tokens"):
        cell_tokens(np.zeros((1, count, 4), "float32"))


def test_pretraining_teaches_the_tower_what_each_cell_holds_and_leaves_only_the_tower_changed():
    keras.utils.set_random_seed(0)
    shapes = Shapes(image_size=48, num_train=512, num_val=64, num_test=0)
    preprocess = ImagePreprocessor(48)
    images, cells = tf.constant(shapes.images("train")), shapes.cell_attributes("train")
    batches = (tf.data.Dataset.from_tensor_slices((images, cells)).shuffle(512, seed=0).repeat().batch(32)
               .map(lambda x, y: (preprocess(x), y)))
    validation = np.asarray(preprocess(shapes.images("val"))), shapes.cell_attributes("val")
    tower = ViTEncoder(image_size=48, patch_size=16, stem="conv", hidden_dim=32, num_layers=1, num_heads=2,
                       mlp_dim=64, pooling="mean")
    before = [w.copy() for w in tower.get_weights()]
    untrained = pretrain_image_tower(tower, batches, 1, CELL_CLASSES, learning_rate=1e-20,  # a step that changes nothing
                                     validation=validation)
    result = pretrain_image_tower(tower, batches, 200, CELL_CLASSES, learning_rate=3e-3, steps_per_execution=10,
                                  validation=validation)
    assert result["steps"] == 200 and result["seconds"] > 0 and np.isfinite(result["loss"])
    accuracy, chance = result["validation"], untrained["validation"]
    # 8 colours and 2 sizes: far above what the untrained tower's head says; empty cells told apart.
    assert accuracy["color"] > 0.6 > chance["color"] + 0.2
    assert accuracy["size"] > 0.75 and accuracy["empty"] > 0.95
    assert len(tower.get_weights()) == len(before)  # the head is not part of the tower
    assert any(not np.array_equal(a, b) for a, b in zip(tower.get_weights(), before))


def test_a_tower_without_its_token_sequence_is_refused():
    tower = ViTEncoder(image_size=48, patch_size=16, hidden_dim=8, num_layers=1, num_heads=2, mlp_dim=8,
                       pooled_only=True)
    batches = tf.data.Dataset.from_tensors((np.zeros((2, 48, 48, 3), "float32"), {"shape": np.zeros((2, 9))}))
    with pytest.raises(ValueError, match="token sequence.*pooled_only"):
        pretrain_image_tower(tower, batches.repeat(), 1, {"shape": 6})


def test_the_cosine_schedule_warms_up_over_a_twentieth_of_the_steps_then_decays_to_zero():
    rate = pretraining_learning_rate(2e-3, "cosine", 200)
    values = np.array([float(rate(step)) for step in range(201)])
    np.testing.assert_allclose(values[:11], np.linspace(0, 2e-3, 11), atol=1e-9)  # 10 warmup steps
    assert np.all(np.diff(values[10:]) <= 1e-12) and values[-1] == 0.0
    np.testing.assert_allclose(values[105], 1e-3, rtol=1e-5)  # half-way through the decay: half the peak
    assert pretraining_learning_rate(2e-3, "constant", 200) == 2e-3
    np.testing.assert_allclose(float(pretraining_learning_rate(2e-3, "cosine", 3)(0)), 2e-3)  # no warmup step


def test_an_unknown_schedule_is_refused_by_name():
    tower = ViTEncoder(image_size=48, patch_size=16, hidden_dim=8, num_layers=1, num_heads=2, mlp_dim=8)
    batches = tf.data.Dataset.from_tensors((np.zeros((2, 48, 48, 3), "float32"), {"shape": np.zeros((2, 9))}))
    with pytest.raises(ValueError, match=r"`schedule` must be one of \('constant', 'cosine'\), got 'step'"):
        pretrain_image_tower(tower, batches.repeat(), 1, {"shape": 6}, schedule="step")


def test_cell_accuracies_count_occupied_cells_per_attribute():
    cells = {"shape": np.array([[0, 1, 2]]), "color": np.array([[0, 3, 3]])}
    logits = {"shape": np.eye(3)[[[1, 1, 2]]], "color": np.eye(4)[[[0, 3, 1]]]}
    assert cell_accuracies(logits, cells) == {"shape": 1.0, "color": 0.5, "empty": 0.6667}
