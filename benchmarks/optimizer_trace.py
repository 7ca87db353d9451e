"""Optimizer cost: `FusedAdamW` (one `ResourceApplyAdam` per variable) vs `keras.optimizers.AdamW`.

Both optimizers have the default optimizer's settings (warmup-cosine schedule,
weight decay 0.05 with biases and norms excluded, `clipnorm` 1.0, beta_2 0.98)
and update the trainable variables of the same (untrained) model, in one
process, alternating which goes first. For each, as a plain `tf.function` and
under XLA (`jit_compile=True`, the training default), it prints:

- the seconds of the first `optimizer.apply` (tracing, and compiling under XLA:
  paid once per train function);
- the milliseconds per `apply` in steady state: after one more warm-up call,
  the two traced steps are called in turn, 100 times each per repeat, so
  that a neighbouring pair of calls sees the same load on the machine.

    python benchmarks/optimizer_trace.py            # shapes-fusion-early-tiny at preset size
    python benchmarks/optimizer_trace.py --quick    # the demo's --quick model
    python benchmarks/optimizer_trace.py --repeats 2   # fewer repeats (about 50 s each on 2 CPU cores)
"""

import statistics
import time

import keras
import tensorflow as tf
from early_fusion_task import NAME, early_fusion_task

from mmkeras.training import FusedAdamW

SETTINGS = dict(weight_decay=0.05, clipnorm=1.0, beta_2=0.98)
EXCLUDED = ["bias", "gamma", "beta", "log_scale", "norm"]
STEPS = 100


def _schedule():
    return keras.optimizers.schedules.CosineDecay(0.0, 1000, alpha=0.01, warmup_target=1e-3, warmup_steps=100)


def _keras_adamw():
    optimizer = keras.optimizers.AdamW(_schedule(), **SETTINGS)
    optimizer.exclude_from_weight_decay(var_names=EXCLUDED)
    return optimizer


def _fused():
    return FusedAdamW(_schedule(), exclude_from_weight_decay=EXCLUDED, **SETTINGS)


def _traced(make, variables, jit_compile):
    """`(step, seconds)`: a `tf.function` applying `make()` to `variables`, and the time of its first call."""
    optimizer = make()
    optimizer.build(variables)
    grads = [tf.random.normal(v.shape, stddev=1e-2, seed=i) for i, v in enumerate(variables)]
    step = tf.function(lambda: optimizer.apply(grads, variables), jit_compile=jit_compile)
    start = time.perf_counter()
    step()
    first = time.perf_counter() - start
    step()
    return step, first


def _seconds(step):
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def main():
    args, task = early_fusion_task(__doc__.splitlines()[0])
    variables = task.build_model().trainable_variables
    makers = [("FusedAdamW", _fused), ("keras AdamW", _keras_adamw)]
    print(f"model: {NAME}{' (--quick)' if args.quick else ''}, {len(variables)} trainable variables, "
          f"{args.repeats} repeats of {STEPS} alternating applies, medians")
    for jit_compile in (False, True):
        mode = "XLA" if jit_compile else "tf.function"
        first = {label: [] for label, _ in makers}
        steady = {label: [] for label, _ in makers}
        for repeat in range(args.repeats):
            order = makers if repeat % 2 == 0 else makers[::-1]
            steps = {}
            for label, make in order:
                steps[label], seconds = _traced(make, variables, jit_compile)
                first[label].append(seconds)
            for _ in range(STEPS):
                for label, _ in order:
                    steady[label].append(_seconds(steps[label]))
        for label, _ in makers:
            print(f"{mode:11s} {label:11s}  first apply {statistics.median(first[label]):5.2f} s   "
                  f"steady {statistics.median(steady[label]) * 1e3:6.2f} ms")
        # Each pair of neighbouring calls ran under the same load: the median of their ratios.
        paired = statistics.median(k / f for f, k in zip(steady["FusedAdamW"], steady["keras AdamW"]))
        print(f"{mode:11s} keras/fused: first apply "
              f"{statistics.median(first['keras AdamW']) / statistics.median(first['FusedAdamW']):.2f}x, "
              f"steady {paired:.2f}x (median of paired ratios)")


if __name__ == "__main__":
    main()
