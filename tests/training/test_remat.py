"""Rematerialisation per Transformer block (`train.remat`): same gradients, really recomputed, trains."""

import functools

import keras
import numpy as np
import pytest
import tensorflow as tf

from mmkeras import zoo
from mmkeras.layers import TransformerDecoderBlock, TransformerEncoderBlock
from mmkeras.losses import MaskedSequenceLoss
from mmkeras.models import build_from_config
from mmkeras.models.captioner import split_for_teacher_forcing
from mmkeras.training import default_optimizer
from mmkeras.training.remat import apply_remat, is_rematerialized, is_transformer_block

TOWER = {"hidden_dim": 16, "num_layers": 2, "num_heads": 2, "mlp_dim": 32}
CLIP = {
    **{f"image_encoder.{k}": v for k, v in {**TOWER, "patch_size": 8}.items()},
    **{f"text_encoder.{k}": v for k, v in TOWER.items()},
    "model.embed_dim": 8, "data.image_size": 16, "data.vocabulary_size": 30, "data.sequence_length": 6,
}
CAPTIONER = {
    **{f"image_encoder.{k}": v for k, v in {**TOWER, "num_layers": 1}.items()},
    "image_encoder.stem": "linear", "image_encoder.patch_size": 8,
    "model.hidden_dim": 16, "model.num_layers": 2, "model.num_heads": 2, "model.mlp_dim": 32,
    "model.vocabulary_size": 30, "model.sequence_length": 6,
    "data.image_size": 16, "data.vocabulary_size": 30, "data.sequence_length": 6,
}
RNG = np.random.default_rng(0)
IMAGES = RNG.uniform(-1, 1, (4, 16, 16, 3)).astype("float32")
IDS = RNG.integers(4, 30, (4, 6)).astype("int32")
IDS[:, 0], IDS[:, -1] = 2, 3


def _build(preset, overrides, remat, like=None):
    model = build_from_config(zoo.config(preset, **overrides))
    apply_remat(model, remat)
    if like is not None:
        model.set_weights(like.get_weights())
    for layer in model._flatten_layers():  # the same dropout masks in both models
        for generator in layer._seed_generators:
            generator.state.assign(np.array([3, 0], generator.state.dtype))
    return model


def _clip_pair():
    keras.utils.set_random_seed(0)
    plain = _build("shapes-clip-tiny", CLIP, False)
    return plain, _build("shapes-clip-tiny", CLIP, True, like=plain)


def _captioner_pair(dropout=0.0):
    keras.utils.set_random_seed(0)
    overrides = {**CAPTIONER, "model.dropout": dropout}
    plain = _build("shapes-captioner-tiny", overrides, False)
    return plain, _build("shapes-captioner-tiny", overrides, True, like=plain)


def _clip_batch():
    return {"images": tf.constant(IMAGES), "token_ids": tf.constant(IDS)}


def _captioner_batch():
    inputs, targets = split_for_teacher_forcing({"images": IMAGES, "token_ids": np.pad(IDS, ((0, 0), (0, 1)))})
    return dict(inputs), targets


def _gradients(model, mode):
    if model.name == "dual_encoder":
        batch = _clip_batch()

        def loss_fn():
            return model.compute_loss(y_pred=model(batch, training=True))
    else:
        inputs, targets = _captioner_batch()
        loss = MaskedSequenceLoss()

        def loss_fn():
            return loss(targets, model(inputs, training=True))

    def step():
        with tf.GradientTape() as tape:
            value = loss_fn()
        return [value] + tape.gradient(value, model.trainable_variables)

    if mode != "eager":
        step = tf.function(step, jit_compile=mode == "xla")
    return [np.asarray(tf.convert_to_tensor(g)) for g in step()]


def _assert_same(plain_grads, remat_grads):
    assert len(plain_grads) == len(remat_grads)
    for plain, remat in zip(plain_grads, remat_grads):
        np.testing.assert_allclose(remat, plain, rtol=0, atol=1e-5)
    assert any(np.abs(g).max() > 1e-4 for g in plain_grads[1:])  # the comparison is not vacuous


@pytest.mark.parametrize("mode", ["eager", "graph", "xla"])
def test_dual_encoder_gradients_equal_without_remat(mode):
    plain, remat = _clip_pair()
    _assert_same(_gradients(plain, mode), _gradients(remat, mode))


@pytest.mark.parametrize("mode,dropout", [("eager", 0.0), ("xla", 0.0), ("graph", 0.3), ("xla", 0.3)])
def test_captioner_gradients_equal_without_remat(mode, dropout):
    # With dropout, the recomputation must replay the forward pass's masks.
    plain, remat = _captioner_pair(dropout)
    _assert_same(_gradients(plain, mode), _gradients(remat, mode))


def test_every_block_and_only_blocks_are_rematerialized():
    plain, remat = _clip_pair()
    blocks = [layer for layer in remat._flatten_layers() if is_transformer_block(layer)]
    assert len(blocks) == 4 and all(isinstance(b, TransformerEncoderBlock) for b in blocks)
    assert all(is_rematerialized(layer) == is_transformer_block(layer) for layer in remat._flatten_layers())
    assert not any(is_rematerialized(layer) for layer in plain._flatten_layers())
    _, captioner = _captioner_pair()
    decoders = [layer for layer in captioner._flatten_layers() if isinstance(layer, TransformerDecoderBlock)]
    assert len(decoders) == 2 and all(is_rematerialized(block) for block in decoders)
    expected = {id(layer) for layer in plain._flatten_layers() if is_transformer_block(layer)}
    assert {id(layer) for layer in apply_remat(plain)} == expected
    assert all(is_rematerialized(layer) == (id(layer) in expected) for layer in plain._flatten_layers())


def _count_calls(monkeypatch, cls):
    calls = []
    original = cls.call

    @functools.wraps(original)
    def counting(self, *args, **kwargs):
        calls.append(self.name)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(cls, "call", counting)
    return calls


def test_blocks_are_recomputed_in_the_backward_pass(monkeypatch):
    plain, remat = _clip_pair()
    calls = _count_calls(monkeypatch, TransformerEncoderBlock)
    _gradients(plain, "eager")
    assert len(calls) == 4  # forward only
    calls.clear()
    _gradients(remat, "eager")
    assert len(calls) == 8  # forward, then each block once more for its gradient
    assert sorted(calls[:4]) == sorted(calls[4:])
    calls.clear()
    remat(_clip_batch())  # inference (no tape): nothing to recompute
    assert len(calls) == 4


@pytest.mark.parametrize("jit", [True, False])
def test_fit_with_accumulation_and_steps_per_execution(jit, accumulate=2, steps_per_execution=2):
    plain, remat = _clip_pair()
    for model in (plain, remat):
        model.compile(
            optimizer=default_optimizer(2, accumulate=accumulate, warmup_fraction=0.0),
            jit_compile=jit, steps_per_execution=steps_per_execution,
        )
        history = model.fit(
            tf.data.Dataset.from_tensors({"images": IMAGES, "token_ids": IDS}).repeat(2), epochs=1, verbose=0
        ).history
        assert np.isfinite(history["loss"][-1])
    before = _clip_pair()[0].get_weights()
    changed = False
    for start, plain_weight, remat_weight in zip(before, plain.get_weights(), remat.get_weights()):
        # Adam turns gradient differences of float rounding (~1e-7) on near-zero gradients into
        # differences of a fraction of the learning rate (1e-3): 1e-4 still tells the steps apart.
        np.testing.assert_allclose(remat_weight, plain_weight, rtol=0, atol=1e-4)
        changed = changed or not np.allclose(start, plain_weight)
    assert changed


def test_captioner_fit_with_remat():
    _, model = _captioner_pair(dropout=0.1)
    model.compile(optimizer=default_optimizer(2, accumulate=2), loss=MaskedSequenceLoss(), jit_compile=True,
                  steps_per_execution=2)
    inputs, targets = _captioner_batch()
    history = model.fit(tf.data.Dataset.from_tensors((inputs, targets)).repeat(2), epochs=1, verbose=0).history
    assert np.isfinite(history["loss"][-1])


def test_keras_hub_tower_blocks_are_rematerialized(monkeypatch):
    import keras_hub

    from mmkeras.encoders.keras_hub_encoder import KerasHubEncoder

    keras.utils.set_random_seed(0)
    tower = keras_hub.models.CLIPVisionEncoder(
        patch_size=8, image_shape=(16, 16, 3), hidden_dim=16, num_layers=2, num_heads=2, intermediate_dim=32
    )
    plain = KerasHubEncoder(tower=tower, modality="image")
    blocks = [layer for layer in tower._flatten_layers() if type(layer).__name__ == "CLIPEncoderLayer"]
    assert len(blocks) == 2 and not any(is_rematerialized(block) for block in blocks)
    images = tf.constant(IMAGES)

    def gradients(model, mode):
        def step():
            with tf.GradientTape() as tape:
                out = model(images, training=True)
                value = tf.reduce_sum(out["pooled"] ** 2) + tf.reduce_mean(out["sequence"])
            return [value] + tape.gradient(value, model.trainable_variables)

        if mode != "eager":
            step = tf.function(step, jit_compile=mode == "xla")
        return [np.asarray(tf.convert_to_tensor(g)) for g in step()]

    expected = {mode: gradients(plain, mode) for mode in ("eager", "xla")}
    remat = KerasHubEncoder(tower=tower, modality="image")
    apply_remat(remat)
    assert all(is_rematerialized(block) for block in blocks)
    assert sum(is_rematerialized(layer) for layer in remat._flatten_layers()) == 2
    for mode in ("eager", "xla"):
        _assert_same(expected[mode], gradients(remat, mode))
    calls = _count_calls(monkeypatch, type(blocks[0]))
    gradients(remat, "eager")
    assert len(calls) == 4  # two blocks, each run forward and once more backward


def test_a_run_with_remat_and_lora_trains(tmp_path, capsys):
    from mmkeras.tasks import task_for_config

    config = zoo.config("shapes-clip-tiny", **{
        "data.num_train": 16, "data.num_val": 8, "data.num_test": 8, "data.image_size": 32,
        "image_encoder.num_layers": 2, "text_encoder.num_layers": 1, "train.epochs": 1, "train.global_batch_size": 8,
        "train.remat": True, "train.lora_rank": 2, "train.accumulate": 2, "train.tower_pretraining_steps": 0})
    task = task_for_config(config, str(tmp_path))
    model = task.train(verbose=1)
    out = capsys.readouterr().out
    assert "3 Transformer blocks recompute their activations" in out and "LoRA of rank 2" in out
    blocks = [layer for layer in model._flatten_layers() if is_transformer_block(layer)]
    assert len(blocks) == 3 and all(is_rematerialized(block) for block in blocks)
    assert np.isfinite(task.run_dir.read_json("history.json")["loss"]).all()
