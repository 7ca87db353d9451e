"""`model.fit` under a 2-replica `MirroredStrategy` equals single-device training.

For every family (CLIP and SigLIP dual encoders, the captioner, a fusion
classifier), a tiny model trains `STEPS` steps of plain `model.fit` (SGD, no
shuffling, no dropout) on the same global batches, from the same initial
weights, once on one device and once under `MirroredStrategy` over two logical
CPUs; the per-step losses, every logged metric and the final weights must agree
within 1e-5. (That `Task.train` builds every variable inside the strategy scope
is checked under `MultiWorkerMirroredStrategy` in `test_multi_worker.py`.)

Logical CPUs must be configured before TensorFlow initialises, so everything
runs in one child process (this file run as a script); the tests compare what it
reports.
"""

import time

import numpy as np
import pytest

from mmkeras.testing.distributed import run_python

STEPS = 3
GLOBAL_BATCH = 8
LEARNING_RATE = 0.1
ATOL = 1e-5
FAMILIES = ("clip", "siglip", "captioner", "fusion")


# --- child process -----------------------------------------------------------
def _build(family):
    from mmkeras.encoders import TextTransformerEncoder, ViTEncoder
    from mmkeras.losses.masked_sequence_loss import MaskedSequenceLoss
    from mmkeras.metrics import MaskedPerplexity, MaskedTokenAccuracy
    from mmkeras.models import captioner, dual_encoder, fusion_classifier

    def vit():
        return ViTEncoder(image_size=16, patch_size=8, hidden_dim=16, num_layers=1, num_heads=2, mlp_dim=32)

    def text(causal=True):
        return TextTransformerEncoder(
            vocabulary_size=30, sequence_length=6, hidden_dim=16, num_layers=1, num_heads=2, mlp_dim=32,
            causal=causal,
        )

    compile_args = {}
    if family in ("clip", "siglip"):
        model = dual_encoder(vit(), text(), embed_dim=8, loss=family)
    elif family == "captioner":
        model = captioner(vit(), vocabulary_size=30, sequence_length=6, num_layers=1, num_heads=2,
                          mlp_dim=32, dropout=0.0)
        compile_args = {"loss": MaskedSequenceLoss(), "metrics": [MaskedTokenAccuracy(), MaskedPerplexity()]}
    else:
        model = fusion_classifier(
            vit(), text(causal=False), fusion="concat", fusion_kwargs={"output_dim": 16},
            heads={"answer": {"type": "multiclass", "num_classes": 5},
                   "match": {"type": "binary", "loss_weight": 2.0}},
            modality_dropout=0.0,
        )
    return model, compile_args


def _data(family):
    """`STEPS` global batches; captions of varying length, so replicas hold different token counts."""
    rng = np.random.default_rng(1)
    n = STEPS * GLOBAL_BATCH
    images = rng.uniform(-1, 1, size=(n, 16, 16, 3)).astype("float32")
    lengths = rng.integers(1, 6, size=n)
    tokens = np.zeros((n, 7), "int32")
    for i, length in enumerate(lengths):
        tokens[i, 0] = 2
        tokens[i, 1 : length + 1] = rng.integers(4, 30, size=length)
        tokens[i, length + 1] = 3
    if family in ("clip", "siglip"):
        return {"images": images, "token_ids": tokens[:, :6]}, None, None
    if family == "captioner":
        return {"images": images, "token_ids": tokens[:, :-1]}, tokens[:, 1:], None
    x = {"images": images, "token_ids": tokens[:, :6]}
    y = {"answer": rng.integers(0, 5, size=n), "match": rng.integers(0, 2, size=n).astype("float32")}
    task = rng.integers(0, 2, size=n)
    weights = {"answer": (task == 0).astype("float32"), "match": (task == 1).astype("float32")}
    return x, y, weights


def _fit(family, strategy, initial_weights):
    import keras

    keras.utils.set_random_seed(0)
    with strategy.scope():
        model, compile_args = _build(family)
        if initial_weights is not None:
            model.set_weights(initial_weights)
        # The single-device reference runs eagerly (no tracing: faster for 3 steps).
        model.compile(optimizer=keras.optimizers.SGD(LEARNING_RATE), jit_compile=False,
                      run_eagerly=initial_weights is None, **compile_args)
    start = [w.copy() for w in model.get_weights()]
    records = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            records.append({k: float(v) for k, v in (logs or {}).items()})

    x, y, sample_weight = _data(family)
    model.fit(x, y, sample_weight=sample_weight, batch_size=GLOBAL_BATCH, epochs=1, shuffle=False,
              verbose=0, callbacks=[Record()])
    final = model.get_weights()
    return start, final, records


def _worker():
    import tensorflow as tf

    from mmkeras.testing.distributed import print_results, split_cpu

    split_cpu(2)
    from mmkeras.training import get_strategy

    mirrored = get_strategy("mirrored")
    assert mirrored.num_replicas_in_sync == 2
    results = {"fit": {}, "seconds": {}}
    for family in FAMILIES:
        started = time.time()
        start, single, single_logs = _fit(family, tf.distribute.get_strategy(), None)
        _, distributed, distributed_logs = _fit(family, mirrored, start)
        results["fit"][family] = {
            "weight_diff": max(float(np.max(np.abs(a - b))) for a, b in zip(single, distributed)),
            "update_norm": float(np.sqrt(sum(np.sum((a - b) ** 2) for a, b in zip(single, start)))),
            "single_logs": single_logs,
            "mirrored_logs": distributed_logs,
        }
        results["seconds"][family] = time.time() - started

    print_results(results)


# --- tests --------------------------------------------------------------------
@pytest.fixture(scope="module")
def results():
    return run_python([__file__], timeout=400)


def _step_losses(logs, key="loss"):
    """Per-step values from Keras' running means."""
    running = np.array([entry[key] for entry in logs])
    steps = np.arange(1, len(running) + 1)
    return running * steps - np.concatenate([[0.0], running[:-1] * steps[:-1]])


@pytest.mark.parametrize("family", FAMILIES)
def test_mirrored_fit_equals_single_device(results, family):
    fit = results["fit"][family]
    single, mirrored = fit["single_logs"], fit["mirrored_logs"]
    assert len(single) == len(mirrored) == STEPS
    assert fit["update_norm"] > 1e-2, "the steps barely moved the weights: equality would prove nothing"
    assert set(single[0]) == set(mirrored[0]), (sorted(single[0]), sorted(mirrored[0]))
    for key in single[0]:
        np.testing.assert_allclose(
            [e[key] for e in mirrored], [e[key] for e in single], atol=ATOL, rtol=1e-6, err_msg=key
        )
    losses = _step_losses(single)
    assert np.all(np.isfinite(losses)) and np.ptp(losses) > 0  # three different batches
    assert fit["weight_diff"] <= ATOL, f"max |w_single - w_mirrored| = {fit['weight_diff']:.3g}"


if __name__ == "__main__":
    _worker()
