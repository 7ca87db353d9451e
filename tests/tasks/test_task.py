"""The shared `Task` machinery: precision policies and the optimizer they get."""

import json
import math

import keras
import pytest

from mmkeras import zoo
from mmkeras.tasks import task_for_config

TINY = {"data.num_train": 32, "data.num_test": 8, "data.num_val": 2, "data.image_size": 32,
        "image_encoder.num_layers": 1, "text_encoder.num_layers": 1,
        "train.global_batch_size": 22, "train.epochs": 1, "train.jit_compile": False,  # 2 scenes x 11 texts
        "train.tower_pretraining_steps": 0}  # 32 px: a 2x2 token grid, not the 3x3 Shapes cells


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


def _tensorboard_epochs(log_dir, tag):
    """`{step: value}` of the scalar `tag` in the TensorBoard event files under `log_dir`."""
    import glob

    import tensorflow as tf

    values = {}
    for path in glob.glob(f"{log_dir}/**/events.out.tfevents.*", recursive=True):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag == tag:
                    values[event.step] = float(tf.make_ndarray(value.tensor))
    return values


CLIP_TINY = {"data.num_train": 56, "data.num_val": 16, "data.num_test": 8, "data.image_size": 32,
             "image_encoder.num_layers": 1, "text_encoder.num_layers": 1, "train.global_batch_size": 8,
             "train.jit_compile": False, "train.tower_pretraining_steps": 0}  # 7 steps an epoch


def test_epochs_and_steps_are_true_when_steps_per_execution_does_not_divide_the_epoch(tmp_path, capsys):
    config = zoo.config("shapes-clip-tiny", **CLIP_TINY, **{"train.epochs": 3, "train.steps_per_execution": 5})
    task = task_for_config(config, str(tmp_path))
    model = task.train(verbose=1)
    out = capsys.readouterr().out
    assert int(model.optimizer.iterations.numpy()) == 21
    history = task.run_dir.read_json("history.json")
    assert history["steps"] == [7, 14, 21]
    assert len(history["loss"]) == 3 and all(v > 0.1 for v in history["loss"])  # every epoch trained
    # Validation after every epoch: the loss and the dual encoder's in-batch retrieval accuracy.
    assert len(history["val_loss"]) == len(history["val_batch_accuracy"]) == 3
    # The bar counts to the epoch's 7 steps, never past it, and numbers the epochs of the run.
    assert "Epoch 3/3" in out and "7/7" in out and "10/7" not in out
    epoch_losses = _tensorboard_epochs(tmp_path / "logs" / "train", "epoch_loss")
    assert sorted(epoch_losses) == [0, 1, 2] and all(v > 0.1 for v in epoch_losses.values())
    assert sorted(_tensorboard_epochs(tmp_path / "logs" / "validation", "epoch_loss")) == [0, 1, 2]


def test_early_stopping_stops_keeps_the_best_epoch_and_stays_stopped_on_resume(tmp_path):
    import tensorflow as tf

    # A learning rate far below float32's resolution: the weights, so the validation loss, never change.
    overrides = {"train.epochs": 6, "train.learning_rate": 1e-20, "train.early_stopping_patience": 2,
                 "train.restore_best": True}
    config = zoo.config("shapes-clip-tiny", **CLIP_TINY, **overrides)
    task = task_for_config(config, str(tmp_path))
    task.train(verbose=0)
    history = task.run_dir.read_json("history.json")
    assert len(history["val_loss"]) == 3  # epoch 1 the best, 2 and 3 without improvement
    best = task.run_dir.read_json("best_epoch.json")
    assert best == {"monitor": "val_loss", "best_epoch": 0, "best_value": history["val_loss"][0],
                    "stopped_early": True, "last_epoch": 2, "restored": True}
    assert (tmp_path / "best.weights.h5").exists()
    # Run again: the run is complete (stopped early), nothing more is trained.
    again = task_for_config(config, str(tmp_path))
    again.train(verbose=0)
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")).endswith("ckpt-21")
    assert len(again.run_dir.read_json("history.json")["val_loss"]) == 3


def test_a_monitor_that_is_not_logged_is_a_clear_error(tmp_path):
    config = zoo.config("shapes-clip-tiny", **CLIP_TINY, **{"train.epochs": 1, "train.monitor": "val_accuracy"})
    with pytest.raises(ValueError, match=r"`train.monitor`='val_accuracy' is not among .*val_batch_accuracy"):
        task_for_config(config, str(tmp_path)).train(verbose=0)


def test_no_validation_without_a_full_batch_of_validation_data(tmp_path, capsys):
    config = zoo.config("shapes-clip-tiny", **{**CLIP_TINY, "train.epochs": 1, "data.num_val": 4})
    task_for_config(config, str(tmp_path)).train(verbose=1)
    assert "no validation" in capsys.readouterr().out
    history = json.loads((tmp_path / "history.json").read_text())
    assert "val_loss" not in history and not (tmp_path / "best_epoch.json").exists()


def test_tower_pretraining_runs_before_the_first_step_only_and_is_recorded(tmp_path, capsys, monkeypatch):
    from mmkeras.tasks import task as task_module

    calls, rates = [], []
    real = task_module.pretrain_image_tower
    monkeypatch.setattr(task_module, "pretrain_image_tower",
                        lambda tower, *args, **kwargs: calls.append(tower) or rates.append(
                            (kwargs["learning_rate"], kwargs["schedule"])) or real(tower, *args, **kwargs))
    overrides = {"data.num_train": 32, "data.num_val": 16, "data.num_test": 4, "data.image_size": 48,
                 "model.num_layers": 1, "train.global_batch_size": 16, "train.epochs": 1, "train.jit_compile": False,
                 "train.tower_pretraining_steps": 6, "train.tower_pretraining_batch_size": 8,
                 "train.tower_pretraining_schedule": "cosine", "train.tower_pretraining_learning_rate": 3e-3}
    config = zoo.config("shapes-captioner-tiny", **overrides)
    task = task_for_config(config, str(tmp_path))
    model = task.train(verbose=1)
    assert calls == [model.image_encoder]  # the captioner's own tower, before its training
    assert rates == [(3e-3, "cosine")]  # its own learning rate and schedule (null: `train.learning_rate`)
    record = task.run_dir.read_json("tower_pretraining.json")
    assert record["steps"] == 6 and set(record["validation"]) == {"shape", "color", "size", "empty"}
    assert "image tower pretrained on what each grid cell holds: 6 steps" in capsys.readouterr().out
    # Training longer resumes from the checkpoint, which holds the pretrained tower: no second pretraining.
    longer = task_for_config(zoo.config("shapes-captioner-tiny", **{**overrides, "train.epochs": 2}), str(tmp_path))
    longer.train(verbose=0)
    assert len(calls) == 1
    assert task.run_dir.read_json("history.json")["steps"] == [2, 4]


def test_tower_pretraining_trains_a_dual_encoders_pooled_only_tower_through_a_twin(tmp_path, monkeypatch):
    import numpy as np

    from mmkeras.tasks import task as task_module

    rates, real = [], task_module.pretrain_image_tower
    monkeypatch.setattr(task_module, "pretrain_image_tower", lambda *args, **kwargs: rates.append(
        (kwargs["learning_rate"], kwargs["schedule"])) or real(*args, **kwargs))
    overrides = {**CLIP_TINY, "data.image_size": 48, "train.epochs": 1, "train.tower_pretraining_steps": 3,
                 "train.tower_pretraining_batch_size": 8}
    task = task_for_config(zoo.config("shapes-clip-tiny", **overrides), str(tmp_path))
    with task.strategy.scope():
        model = task.build_model()
    tower = model.image_encoder
    assert tower.get_config()["pooled_only"]
    before = [w.copy() for w in tower.get_weights()]
    task.pretrain_tower(model, verbose=0)
    assert any(not np.array_equal(a, b) for a, b in zip(before, tower.get_weights()))
    assert rates == [(task.config["train"]["learning_rate"], "constant")]  # the defaults: the run's own, constant


def test_tower_pretraining_trains_a_locked_tower_which_then_stays_locked(tmp_path):
    import numpy as np

    overrides = {"data.num_train": 18, "data.num_val": 3, "data.num_test": 3, "text_encoder.num_layers": 1,
                 "model.fusion_kwargs.num_layers": 1, "model.freeze_image_encoder": True, "train.epochs": 1,
                 "train.global_batch_size": 33, "train.jit_compile": False, "train.tower_pretraining_steps": 3,
                 "train.tower_pretraining_batch_size": 6}
    task = task_for_config(zoo.config("shapes-fusion-cross-attention-tiny", **overrides), str(tmp_path))
    pretrained, real = [], task.pretrain_tower

    def pretrain_tower(model, verbose):  # the tower's weights before and after the pretraining
        pretrained.append([w.copy() for w in model.image_encoder.get_weights()])
        real(model, verbose)
        pretrained.append(model.image_encoder.get_weights())

    task.pretrain_tower = pretrain_tower
    model = task.train(verbose=0)
    before, after = pretrained
    assert any(not np.array_equal(a, b) for a, b in zip(before, after))  # the pretraining trained it
    assert not model.image_encoder.trainable
    for a, b in zip(after, model.image_encoder.get_weights()):  # the fusion's training did not
        np.testing.assert_array_equal(a, b)
