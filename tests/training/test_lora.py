"""LoRA on the towers and the caption decoder: what trains, the merge at export, the round trip, the run."""

import numpy as np
import pytest
import tensorflow as tf

from mmkeras import zoo
from mmkeras.training.default_optimizer import default_optimizer
from mmkeras.training.lora import enable_lora, has_lora, merge_lora, trainable_parameter_count

ONE_LAYER = {"image_encoder.num_layers": 1, "text_encoder.num_layers": 1}


def _randomize_lora(model, seed=0):
    """Non-zero LoRA updates (B starts at zero), so a merge that dropped them would show."""
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        if weight.path.endswith("lora_kernel_b"):
            weight.assign(rng.normal(0, 0.05, weight.shape).astype("float32"))


def _clip_inputs(batch=4, size=48, length=24):
    rng = np.random.default_rng(1)
    return {"images": rng.uniform(-1, 1, (batch, size, size, 3)).astype("float32"),
            "token_ids": rng.integers(1, 100, (batch, length)).astype("int32")}


def test_only_lora_weights_projections_and_logit_scale_train():
    model = zoo.build("shapes-clip-tiny", **ONE_LAYER)
    trainable_before, total_before = trainable_parameter_count(model)
    assert enable_lora(model, rank=4, alpha=8) == 8  # qkv, attention output, mlp in / out; two towers
    trainable, total = trainable_parameter_count(model)
    assert total > total_before and trainable < trainable_before / 5
    names = {w.path for w in model.trainable_weights}
    assert all(n.endswith(("lora_kernel_a", "lora_kernel_b")) or "projection" in n or "logit_scale" in n
               for n in names), names
    assert any(n.endswith("lora_kernel_a") for n in names)
    # Attention only: half the projections.
    attention_only = zoo.build("shapes-clip-tiny", **ONE_LAYER)
    assert enable_lora(attention_only, rank=2, targets=("attention",)) == 4


def test_bad_lora_arguments_are_clear_errors():
    model = zoo.build("shapes-clip-tiny", **ONE_LAYER)
    with pytest.raises(ValueError, match="rank"):
        enable_lora(model, rank=0)
    with pytest.raises(ValueError, match="alpha"):
        enable_lora(model, rank=2, alpha=-1)
    with pytest.raises(ValueError, match="targets"):
        enable_lora(model, rank=2, targets=("embeddings",))
    with pytest.raises(ValueError, match="train.lora_targets"):
        zoo.config("shapes-clip-tiny", **{"train.lora_targets": ["heads"]})
    with pytest.raises(ValueError, match="train.lora_alpha"):
        zoo.config("shapes-clip-tiny", **{"train.lora_alpha": 0})


def test_merge_gives_the_same_outputs_without_lora_weights_and_the_keras_file_round_trips(tmp_path):
    import keras

    model = zoo.build("shapes-clip-tiny", **ONE_LAYER)
    enable_lora(model, rank=4)
    _randomize_lora(model)
    inputs = _clip_inputs()
    expected = {k: np.asarray(v) for k, v in model(inputs).items()}
    merged = merge_lora(model)
    assert has_lora(model) and not has_lora(merged)
    assert not any("lora" in w.path for w in merged.weights)
    for key, value in merged(inputs).items():
        np.testing.assert_allclose(np.asarray(value), expected[key], atol=1e-5, err_msg=key)
    model.save(tmp_path / "lora.keras")
    reloaded = keras.saving.load_model(tmp_path / "lora.keras")
    for key, value in reloaded(inputs).items():
        np.testing.assert_allclose(np.asarray(value), expected[key], atol=1e-5, err_msg=key)


def test_the_caption_decoder_gets_lora_and_frozen_weights_stay_put_with_accumulation():
    model = zoo.build("shapes-captioner-tiny", **{"image_encoder.num_layers": 1, "model.num_layers": 1,
                                                 "model.vocabulary_size": 60})
    count = enable_lora(model, rank=2)
    decoder = [w.path for w in model.trainable_weights if "lora" in w.path and "decoder" in w.path]
    assert count > 4 and decoder, [w.path for w in model.trainable_weights]
    frozen = {w.path: np.asarray(w) for w in model.weights if "kernel" in w.path and "lora" not in w.path
              and not w.trainable}
    lora = {w.path: np.asarray(w) for w in model.trainable_weights if w.path.endswith("lora_kernel_b")}
    from mmkeras.losses.masked_sequence_loss import MaskedSequenceLoss

    model.compile(optimizer=default_optimizer(8, learning_rate=1e-2, accumulate=2), loss=MaskedSequenceLoss(),
                  steps_per_execution=2, jit_compile=False)
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (8, 48, 48, 3)).astype("float32")
    ids = rng.integers(4, 50, (8, 21)).astype("int32")
    model.fit({"images": images, "token_ids": ids[:, :-1]}, ids[:, 1:], batch_size=2, epochs=1, verbose=0)
    after = {w.path: np.asarray(w) for w in model.weights}
    assert all(np.array_equal(after[path], value) for path, value in frozen.items())
    assert any(not np.array_equal(after[path], value) for path, value in lora.items())  # the updates trained


def test_a_lora_run_trains_and_exports_merged(tmp_path, capsys):
    from mmkeras.tasks import task_for_config

    config = zoo.config("shapes-clip-tiny", **ONE_LAYER, **{
        "data.num_train": 32, "data.num_val": 8, "data.num_test": 8, "data.image_size": 32,
        "train.epochs": 1, "train.global_batch_size": 8, "train.jit_compile": False, "train.lora_rank": 4,
        "train.tower_pretraining_steps": 0})
    task = task_for_config(config, str(tmp_path))
    task.run(verbose=1)
    out = capsys.readouterr().out
    assert "LoRA of rank 4 on 8 attention and mlp projections" in out
    saved = [n for n, _ in tf.train.list_variables(str(tmp_path / "export" / "variables" / "variables"))
             if n.startswith("model_variables/")]
    assert len(saved) == len(merge_lora(task.model).weights) < len(task.model.weights)  # no LoRA weights served
    loaded = tf.saved_model.load(str(tmp_path / "export"))
    images = [tf.io.encode_png(image).numpy() for image in task.data.shapes.images("test")[:4]]
    served = loaded.signatures["embed_image"](image_bytes=tf.constant(images))
    embeddings = next(iter(served.values())).numpy()
    in_memory = task.model.image_model(task.preprocessor(task.data.shapes.images("test")[:4]))
    np.testing.assert_allclose(embeddings, np.asarray(in_memory), atol=1e-5)
