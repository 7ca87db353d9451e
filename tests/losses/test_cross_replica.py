"""Cross-replica contrastive losses equal the single-device global-batch loss.

TensorFlow's logical CPU devices must be configured before it initialises, so the
distributed part runs in a subprocess: this file is also a script whose `_worker()`
trains one real `model.fit` step (SGD) under `MirroredStrategy(["/cpu:0",
"/cpu:1"])` and on a single device from the same weights and the same global
batch, and prints the results as JSON for the tests below to compare.
"""

import os

import numpy as np
import pytest

from mmkeras.testing.distributed import run_python

GLOBAL_BATCH = 8
LEARNING_RATE = 0.5
LOSS_CASES = {
    # name: (loss class name, constructor kwargs, LogitScale kwargs)
    "clip": ("ClipLoss", {}, {}),
    "siglip": ("SigLipLoss", {}, {"init_scale": 10.0, "max_scale": None, "init_bias": -10.0}),
    "siglip_chunked": (
        "SigLipLoss",
        {"chunk_size": 3},
        {"init_scale": 10.0, "max_scale": None, "init_bias": -10.0},
    ),
    # Negative control: local negatives only must NOT match the global batch.
    "clip_local_only": ("ClipLoss", {"gather_across_replicas": False}, {}),
}


def _worker():
    import tensorflow as tf

    from mmkeras.testing.distributed import print_results, split_cpu

    split_cpu(2)
    import keras
    from keras import ops

    import mmkeras.losses as mm_losses

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert strategy.num_replicas_in_sync == 2

    def make_loss(case):
        class_name, loss_kwargs, scale_kwargs = LOSS_CASES[case]
        return getattr(mm_losses, class_name)(**loss_kwargs), scale_kwargs

    results = {}

    # --- Part A: one real `model.fit` step, single device vs MirroredStrategy. ---
    # One tower pair + LogitScale per loss, disjoint weights, so each loss's
    # gradients are checked through its own weights.
    fit_cases = list(LOSS_CASES)

    class DualTowers(keras.Model):
        def __init__(self):
            super().__init__()
            self.towers = {}
            for case in fit_cases:
                loss_fn, scale_kwargs = make_loss(case)
                self.towers[case] = (
                    keras.layers.Dense(4, name=f"{case}_image_tower"),
                    keras.layers.Dense(4, name=f"{case}_text_tower"),
                    mm_losses.LogitScale(name=f"{case}_logit_scale", **scale_kwargs),
                    loss_fn,
                )

        def call(self, inputs):
            outputs = {}
            for case, (image_tower, text_tower, _, _) in self.towers.items():
                outputs[case] = {
                    "image_embeddings": ops.normalize(image_tower(inputs["image"]), axis=-1),
                    "text_embeddings": ops.normalize(text_tower(inputs["text"]), axis=-1),
                }
            return outputs

        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
            total = 0.0
            for case, (_, _, logit_scale, loss_fn) in self.towers.items():
                pred = y_pred[case]
                total += loss_fn(pred["image_embeddings"], pred["text_embeddings"], **logit_scale())
            return total

    rng = np.random.default_rng(0)
    data = {
        "image": rng.normal(size=(GLOBAL_BATCH, 6)).astype("float32"),
        "text": rng.normal(size=(GLOBAL_BATCH, 5)).astype("float32"),
    }
    init_weights = None

    def fit_one_step(scope):
        nonlocal init_weights
        with scope:
            model = DualTowers()
            model(data)
            for _, _, logit_scale, _ in model.towers.values():
                logit_scale.build()
            if init_weights is None:
                init_weights = [w.copy() for w in model.get_weights()]
            model.set_weights(init_weights)
            model.compile(optimizer=keras.optimizers.SGD(LEARNING_RATE), jit_compile=False)
        model.fit(data, batch_size=GLOBAL_BATCH, epochs=1, shuffle=False, verbose=0)
        out = {}
        for case, (image_tower, text_tower, logit_scale, _) in model.towers.items():
            variables = image_tower.weights + text_tower.weights + logit_scale.weights
            position = {id(w): i for i, w in enumerate(model.weights)}
            initial = [init_weights[position[id(v)]] for v in variables]
            out[case] = {
                "weights": [v.numpy().tolist() for v in variables],
                "update_norm": float(
                    np.sqrt(sum(np.sum((v.numpy() - w) ** 2) for v, w in zip(variables, initial)))
                ),
            }
        return out

    results["fit"] = {
        "single": fit_one_step(tf.distribute.get_strategy().scope()),
        "mirrored": fit_one_step(strategy.scope()),
    }

    # --- Part B: loss and gradients w.r.t. the embeddings, scale and bias. ---
    # Replicas hold uneven local batches (5 + 3 rows) to exercise the offsets.
    image = rng.normal(size=(GLOBAL_BATCH, 4)).astype("float32")
    text = rng.normal(size=(GLOBAL_BATCH, 4)).astype("float32")
    image /= np.linalg.norm(image, axis=1, keepdims=True)
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    splits = [(0, 5), (5, 8)]
    scale_value, bias_value = 7.0, -3.0

    def loss_and_grads(loss_fn, img, txt):
        scale, bias = tf.constant(scale_value), tf.constant(bias_value)
        with tf.GradientTape() as tape:
            tape.watch([img, txt, scale, bias])
            value = loss_fn(img, txt, scale, bias)
        grads = tape.gradient(value, [img, txt, scale, bias])
        # CLIP ignores the bias: no gradient.
        return (value, *[tf.zeros(()) if g is None else g for g in grads])

    loss_fns = {case: make_loss(case)[0] for case in ("clip", "siglip", "siglip_chunked")}

    def local_rows(ctx, array):
        start, stop = splits[ctx.replica_id_in_sync_group]
        return tf.constant(array[start:stop])

    local_image = strategy.experimental_distribute_values_from_function(
        lambda ctx: local_rows(ctx, image)
    )
    local_text = strategy.experimental_distribute_values_from_function(
        lambda ctx: local_rows(ctx, text)
    )
    per_replica = strategy.run(
        tf.function(lambda i, t: {c: loss_and_grads(fn, i, t) for c, fn in loss_fns.items()}),
        args=(local_image, local_text),
    )
    results["grads"] = {}
    for case, loss_fn in loss_fns.items():
        single = loss_and_grads(loss_fn, tf.constant(image), tf.constant(text))
        value, d_image, d_text, d_scale, d_bias = (
            strategy.experimental_local_results(v) for v in per_replica[case]
        )
        results["grads"][case] = {
            "single": [np.asarray(v).tolist() for v in single],
            "mirrored": [
                float(sum(value)),  # the replicas' shares add up to the loss
                np.concatenate([np.asarray(g) for g in d_image]).tolist(),
                np.concatenate([np.asarray(g) for g in d_text]).tolist(),
                float(sum(d_scale)),
                float(sum(d_bias)),
            ],
        }

    # --- Part C: all_gather_with_grad alone. ---
    # Replica r weights the gathered rows by (r + 1) * w; the gradient of each
    # replica's local rows must be the sum over replicas, (1 + 2) * w, of its rows.
    local_values = [np.arange(6, dtype="float32").reshape(3, 2) + 10 * r for r in range(2)]
    row_weights = np.arange(12, dtype="float32").reshape(6, 2)

    def gather_grad_step(_):
        ctx = tf.distribute.get_replica_context()
        replica = ctx.replica_id_in_sync_group
        value = tf.constant(local_values[0]) + 10.0 * tf.cast(replica, tf.float32)
        with tf.GradientTape() as tape:
            tape.watch(value)
            gathered = mm_losses.all_gather_with_grad(value)
            objective = tf.reduce_sum(gathered * row_weights * tf.cast(replica + 1, tf.float32))
        (_, offset, size) = mm_losses.gather_global_batch([value])
        return gathered, tape.gradient(objective, value), offset, size

    per_replica = strategy.run(tf.function(gather_grad_step), args=(0,))
    gathered, grads, offsets, sizes = (strategy.experimental_local_results(v) for v in per_replica)
    results["gather"] = {
        "gathered": [g.numpy().tolist() for g in gathered],
        "grads": [g.numpy().tolist() for g in grads],
        "offsets": [int(o) for o in offsets],
        "sizes": [int(s) for s in sizes],
    }
    print_results(results)


def _run_worker():
    return run_python([os.path.abspath(__file__)], timeout=300)


def _max_abs_diff(a, b):
    return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y)))) for x, y in zip(a, b))


def _check_fit_step(results, case):
    """One `fit` step under MirroredStrategy == one single-device step."""
    single, mirrored = results["fit"]["single"][case], results["fit"]["mirrored"][case]
    # The step must really move the weights (towers and LogitScale), else
    # equality would prove nothing.
    assert single["update_norm"] > 1e-1, f"{case}: the step barely moved the weights"
    assert len(single["weights"]) == (5 if case == "clip" else 6)
    for w_single, w_mirrored in zip(single["weights"], mirrored["weights"]):
        np.testing.assert_allclose(w_mirrored, w_single, atol=1e-5, rtol=0, err_msg=f"{case} weights")


def _check_shares_and_gradients(results, case):
    """Uneven 5 + 3 split: shares add up to the loss; gradients are the global ones."""
    single, mirrored = results["grads"][case]["single"], results["grads"][case]["mirrored"]
    names = ["loss", "d_image_embeddings", "d_text_embeddings", "d_logit_scale", "d_logit_bias"]
    for name, s, m in zip(names, single, mirrored):
        np.testing.assert_allclose(m, s, atol=1e-5, rtol=0, err_msg=f"{case} {name}")
    assert np.max(np.abs(single[1])) > 1e-2 and abs(single[3]) > 1e-2


def _check_all_gather_gradient(results):
    """Each replica's rows get the upstream gradients of both replicas, summed."""
    gather = results["gather"]
    local_values = [np.arange(6, dtype="float32").reshape(3, 2) + 10 * r for r in range(2)]
    expected_gathered = np.concatenate(local_values)
    row_weights = np.arange(12, dtype="float32").reshape(6, 2)
    for replica in range(2):
        np.testing.assert_allclose(gather["gathered"][replica], expected_gathered)
        np.testing.assert_allclose(
            gather["grads"][replica], 3.0 * row_weights[3 * replica : 3 * replica + 3]
        )
    assert gather["offsets"] == [0, 3]
    assert gather["sizes"] == [6, 6]


def test_mirrored_strategy_equals_single_device_global_batch():
    # One test (one subprocess), so that `pytest -n 2` does not run the
    # worker once per xdist process; every check below runs and is reported.
    results = _run_worker()
    checks = [(f"fit step, {case}", _check_fit_step, case) for case in ("clip", "siglip", "siglip_chunked")]
    checks += [
        (f"uneven split, {case}", _check_shares_and_gradients, case)
        for case in ("clip", "siglip", "siglip_chunked")
    ]
    failures = []
    for label, check, case in checks:
        try:
            check(results, case)
        except AssertionError as error:
            failures.append(f"{label}: {error}")
    try:
        _check_all_gather_gradient(results)
    except AssertionError as error:
        failures.append(f"all_gather_with_grad gradient: {error}")
    # Control: the same fit comparison sees that per-replica negatives (what
    # plain Keras code gets under MirroredStrategy) are not the global batch.
    control = results["fit"]
    if _max_abs_diff(
        control["single"]["clip_local_only"]["weights"], control["mirrored"]["clip_local_only"]["weights"]
    ) <= 1e-3:
        failures.append("control: local-only negatives unexpectedly matched the global batch")
    assert not failures, "\n\n".join(failures)


def test_single_replica_helpers_are_identity():
    import tensorflow as tf

    from mmkeras.losses import all_gather_with_grad, gather_global_batch, replica_info

    x = tf.constant(np.arange(6, dtype="float32").reshape(3, 2))
    assert replica_info() == (1, 0)
    assert all_gather_with_grad(x) is x
    (gathered,), offset, size = gather_global_batch([x])
    assert gathered is x and int(offset) == 0 and int(size) == 3
    (gathered,), offset, size = gather_global_batch([x], gather=False)
    assert int(offset) == 0 and int(size) == 3


def test_helpers_reject_bad_input():
    from mmkeras.losses import all_gather_with_grad, gather_global_batch

    with pytest.raises(ValueError, match="tensor"):
        all_gather_with_grad(np.float32(1.0))
    with pytest.raises(ValueError, match="tensors"):
        gather_global_batch([])


if __name__ == "__main__":
    _worker()
