"""The shared `Task` machinery: precision policies and the optimizer they get."""

import math

import keras
import pytest

from mmkeras import zoo
from mmkeras.tasks import task_for_config

TINY = {"data.num_train": 32, "data.num_test": 8, "data.num_val": 2, "data.image_size": 32,
        "image_encoder.num_layers": 1, "text_encoder.num_layers": 1,
        "train.global_batch_size": 22, "train.epochs": 1, "train.jit_compile": False}  # 2 scenes x 11 texts


@pytest.fixture
def restore_policy():
    yield
    keras.config.set_dtype_policy("float32")


def test_mixed_float16_trains_with_loss_scaling_and_float32_outputs(tmp_path, restore_policy):
    # mixed_bfloat16 takes the same path without the loss scaler (bf16 has float32's range).
    config = zoo.config("shapes-fusion-concat-tiny", **TINY, **{"train.precision": "mixed_float16"})
    task = task_for_config(config, str(tmp_path))
    model = task.train(verbose=0)
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert model.get_layer("fusion").compute_dtype == "float16"
    # The heads (and so the softmax / sigmoid and the losses) stay in float32.
    batch = next(iter(task.epoch_dataset(0)))[0]
    outputs = model(batch)
    assert all(value.dtype == "float32" for value in outputs.values())
    history = task.run_dir.read_json("history.json")
    assert all(math.isfinite(v) for v in history["loss"])


def test_graph_optimization_switches_grappler_for_the_process(tmp_path):
    import tensorflow as tf

    def grappler_off(**overrides):
        task_for_config(zoo.config("shapes-fusion-concat-tiny", **TINY, **overrides), str(tmp_path))
        return tf.config.optimizer.get_experimental_options().get("disable_meta_optimizer", False)

    try:
        assert grappler_off(**{"train.graph_optimization": False})
        assert not grappler_off()  # the default turns it back on
    finally:
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": False})


def test_run_eagerly_trains_the_same_weights_op_by_op_and_predicts_traced(tmp_path, monkeypatch):
    import numpy as np
    import tensorflow as tf

    from mmkeras.models.fusion_classifier import FusionClassifier

    modes = []  # tf.executing_eagerly() in each run of the train step
    train_step = FusionClassifier.train_step

    def recording_train_step(self, data):
        modes.append(tf.executing_eagerly())
        return train_step(self, data)

    monkeypatch.setattr(FusionClassifier, "train_step", recording_train_step)

    def trained(**overrides):
        modes.clear()
        config = zoo.config("shapes-fusion-concat-tiny", **TINY, **overrides)
        task = task_for_config(config, str(tmp_path / str(len(overrides))))
        return task.train(verbose=0), list(modes), task.steps_per_epoch

    (traced, traced_modes, steps), (eager, eager_modes, _) = trained(), trained(**{"train.run_eagerly": True})
    assert not any(traced_modes) and len(traced_modes) < steps  # traced once (or twice), then run as a graph
    assert eager_modes == [True] * steps  # every step op by op
    assert eager.run_eagerly is False  # evaluation and prediction are traced again
    assert len(traced.weights) == len(eager.weights)
    for a, b in zip(traced.weights, eager.weights):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5, err_msg=a.path)


def test_run_eagerly_with_jit_compile_is_a_clear_error(tmp_path):
    config = zoo.config("shapes-fusion-concat-tiny", **{**TINY, "train.run_eagerly": True, "train.jit_compile": True})
    with pytest.raises(ValueError, match=r"train\.run_eagerly.*train\.jit_compile"):
        task_for_config(config, str(tmp_path))
