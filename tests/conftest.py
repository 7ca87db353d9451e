"""Fixtures shared across the test packages."""

import pytest

TOWER = {"num_layers": 1, "hidden_dim": 16, "mlp_dim": 32, "num_heads": 2}


@pytest.fixture
def tiny_record_run():
    """Overrides that make a preset a seconds-long run on a few real-data records: 32 px images, one
    16-wide layer per tower (`text_tower` adds the text tower's), one epoch of batches of 8, no XLA."""
    return {
        "data.image_size": 32, "data.vocabulary_size": 60, "data.val_fraction": 0.25,
        "image_encoder.patch_size": 16, **{f"image_encoder.{k}": v for k, v in TOWER.items()},
        "train.epochs": 1, "train.global_batch_size": 8, "train.jit_compile": False, "train.strategy": "cpu",
        "eval.batch_size": 16,
    }


@pytest.fixture
def text_tower():
    """The text-tower half of `tiny_record_run`."""
    return {f"text_encoder.{k}": v for k, v in TOWER.items()}


@pytest.fixture(autouse=True)
def _global_dtype_policy():
    """Restores Keras' global dtype policy after each test: a `Task` sets it to its run's precision, and a
    bf16 run must not leave the models of later tests in the same process in bf16."""
    import keras

    policy = keras.config.dtype_policy()
    yield
    keras.config.set_dtype_policy(policy)
