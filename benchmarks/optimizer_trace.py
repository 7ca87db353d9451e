"""Optimizer cost: `FusedAdamW` (ours, one `ResourceApplyAdam` per variable) vs `keras.optimizers.AdamW`.

Both optimizers have the default optimizer's settings (warmup-cosine schedule,
weight decay 0.05 with biases and norms excluded, `clipnorm` 1.0, beta_2 0.98)
and update the trainable variables of the same (untrained) model, in one
process, alternating which goes first. For each it prints:

- the seconds to trace `optimizer.apply` into a `tf.function` (paid on the
  first step of every `fit`, and again for every new train function);
- the ops in that graph;
- the milliseconds per `apply` once traced (median of 50).

    python benchmarks/optimizer_trace.py            # shapes-fusion-early-tiny at preset size
    python benchmarks/optimizer_trace.py --quick    # the demo's --quick model
"""

import statistics
import time

import keras
import tensorflow as tf
from early_fusion_task import NAME, early_fusion_task

from mmkeras.training import FusedAdamW

SETTINGS = dict(weight_decay=0.05, clipnorm=1.0, beta_2=0.98)
EXCLUDED = ["bias", "gamma", "beta", "log_scale", "norm"]


def _schedule():
    return keras.optimizers.schedules.CosineDecay(0.0, 1000, alpha=0.01, warmup_target=1e-3, warmup_steps=100)


def _keras_adamw():
    optimizer = keras.optimizers.AdamW(_schedule(), **SETTINGS)
    optimizer.exclude_from_weight_decay(var_names=EXCLUDED)
    return optimizer


def _fused():
    return FusedAdamW(_schedule(), exclude_from_weight_decay=EXCLUDED, **SETTINGS)


def _measure(make, variables):
    optimizer = make()
    optimizer.build(variables)
    grads = [tf.random.normal(v.shape, stddev=1e-2, seed=i) for i, v in enumerate(variables)]
    step = tf.function(lambda: optimizer.apply(grads, variables))
    start = time.perf_counter()
    graph = step.get_concrete_function().graph
    trace = time.perf_counter() - start
    step()
    runs = []
    for _ in range(50):
        start = time.perf_counter()
        step()
        runs.append(time.perf_counter() - start)
    return trace, len(graph.get_operations()), statistics.median(runs) * 1e3


def main():
    args, task = early_fusion_task(__doc__.splitlines()[0])
    model = task.build_model()
    variables = model.trainable_variables
    results = {"FusedAdamW": [], "keras AdamW": []}
    makers = [("FusedAdamW", _fused), ("keras AdamW", _keras_adamw)]
    for repeat in range(args.repeats):
        for label, make in makers if repeat % 2 == 0 else makers[::-1]:
            results[label].append(_measure(make, variables))
    print(f"model: {NAME}{' (--quick)' if args.quick else ''}, {len(variables)} trainable variables, "
          f"{args.repeats} repeats each, medians")
    medians = {}
    for label, rows in results.items():
        trace, ops, ms = (statistics.median(column) for column in zip(*rows))
        medians[label] = trace, ops, ms
        print(f"{label:12s} trace {trace:5.2f} s   {ops:5.0f} ops   apply {ms:6.2f} ms   "
              f"(traces: {', '.join('%.2f' % r[0] for r in rows)})")
    (ours_trace, ours_ops, ours_ms), (keras_trace, keras_ops, keras_ms) = medians.values()
    print(f"ratio        trace {keras_trace / ours_trace:5.2f}x faster, {keras_ops / ours_ops:.2f}x fewer ops, "
          f"apply {keras_ms / ours_ms:.2f}x faster")


if __name__ == "__main__":
    main()
