"""How fast can the bench-small dual-encoder train step be on this machine? A bound from its matmuls.

`dual_encoder_train_step.py` times the step of mmkeras and keras-hub side by side. This script
asks what any TensorFlow implementation of the same model could reach: it lists every matrix
product of one train step of the "bench-small" CLIP model (image 128 px, patch 16, vision
width 256 x 4 layers x 4 heads, MLP 1024; text context 32, width 256 x 4 layers; projection
256; batch 64), forward and backward (the gradient of a product `X @ W` is two more products,
`dY @ W^T` and `X^T @ dY`; the pixels need no gradient), as mmkeras computes them: the last
block of each tower computes only the pooled token's query, attention output and MLP, and the
query, key and value projections are one product. It times each distinct product alone, in
float32 and in bfloat16, with TensorFlow's own CPU kernels (oneDNN), and keeps the faster. The
sum is a lower bound on the step's time: a real step also spends time on softmax, LayerNorm,
GELU, the loss, the optimizer and moving activations, which this leaves out.

The bound is then set beside keras-hub's CLIPBackbone step measured in the same run at its
fastest setting on this CPU (bf16 without XLA, as `dual_encoder_train_step.py` finds), and the
script prints the largest speed-up over keras-hub that the matmuls alone would allow.

    python benchmarks/train_step_bound.py
    python benchmarks/train_step_bound.py --repeats 20 --no-peer   # the bound only

Where the time goes (2026-12-07, AMD EPYC, 2 cores with AVX512-BF16, otherwise idle): the
products take 335 ms of a step (297 GFLOP/s on average; the attention products and the pooled
token's run far below it), GELU 56 ms (bf16 is slower than fp32 there), LayerNorm 37 ms, AdamW
13 ms, softmax 7 ms, residual adds 3 ms: 451 ms, at most 141.8 samples/s.
keras-hub's step took 612 ms (104.6 samples/s) and mmkeras' 602 ms (106.3) in the same run, so a
step 1.3x keras-hub's (471 ms) leaves 20 ms, 4%, for everything the parts timed alone leave out:
op dispatch, casts between float32 and bfloat16, head reshapes and transposes, the loss.
"""

import argparse
import collections
import json
import os
import subprocess
import sys
import time

BATCH = 64
WIDTH, MLP, HEADS, LAYERS = 256, 1024, 4, 4
PATCHES, PATCH_FEATURES = (128 // 16) ** 2, 16 * 16 * 3
TEXT_TOKENS = 32
EMBED = 256


def tower_products(tokens, input_features=None):
    """Forward products `(batch_count, M, K, N)` of one tower; `input_features`: a patch projection."""
    products = []
    if input_features:
        products.append(("patch projection", 1, BATCH * (tokens - 1), input_features, WIDTH, False))
    head_dim = WIDTH // HEADS
    for layer in range(LAYERS):
        last = layer == LAYERS - 1  # pooled only: one query token
        rows = BATCH if last else BATCH * tokens
        if last:
            products.append(("key, value", 1, BATCH * tokens, WIDTH, 2 * WIDTH, True))
            products.append(("query", 1, BATCH, WIDTH, WIDTH, True))
        else:
            products.append(("query, key, value", 1, rows, WIDTH, 3 * WIDTH, True))
        queries = 1 if last else tokens
        products.append(("attention scores", BATCH * HEADS, queries, head_dim, tokens, True))
        products.append(("attention values", BATCH * HEADS, queries, tokens, head_dim, True))
        products.append(("attention output", 1, rows, WIDTH, WIDTH, True))
        products.append(("MLP in", 1, rows, WIDTH, MLP, True))
        products.append(("MLP out", 1, rows, MLP, WIDTH, True))
    products.append(("projection", 1, BATCH, WIDTH, EMBED, True))
    return products


def step_products():
    """Every product of one train step, forward and backward: `Counter((batch_count, M, K, N))`."""
    forward = tower_products(PATCHES + 1, PATCH_FEATURES) + tower_products(TEXT_TOKENS)
    forward.append(("logits", 1, BATCH, EMBED, BATCH, True))
    counts = collections.Counter()
    for _, count, m, k, n, input_gradient in forward:
        counts[(count, m, k, n)] += 1  # Y = X W
        counts[(count, k, m, n)] += 1  # dW = X^T dY
        if input_gradient:
            counts[(count, m, n, k)] += 1  # dX = dY W^T
    return counts


def best_seconds(call, repeats, rounds=3):
    """Seconds per call of `call()` (which returns a tensor), best of `rounds` after one warm-up call."""
    call().numpy()
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        outputs = [call() for _ in range(repeats)]
        outputs[-1].numpy()
        best = min(best, (time.perf_counter() - start) / repeats)
    return best


def time_product(shape, dtype, repeats):
    import numpy as np
    import tensorflow as tf

    count, m, k, n = shape
    rng = np.random.default_rng(0)
    a = tf.cast(rng.standard_normal((count, m, k) if count > 1 else (m, k)), dtype)
    b = tf.cast(rng.standard_normal((count, k, n) if count > 1 else (k, n)), dtype)
    product = tf.function(lambda a, b: tf.linalg.matmul(a, b))
    return best_seconds(lambda: product(a, b), repeats)


def matmul_bound(repeats):
    import tensorflow as tf

    counts = step_products()
    rows, total, flops = [], 0.0, 0
    for shape, uses in sorted(counts.items(), key=lambda item: -item[0][0] * item[0][1] * item[0][2] * item[0][3]):
        times = {name: time_product(shape, dtype, repeats) for name, dtype in (("fp32", tf.float32),
                                                                               ("bf16", tf.bfloat16))}
        faster = min(times, key=times.get)
        count, m, k, n = shape
        shape_flops = 2 * count * m * k * n
        rows.append({"shape": shape, "uses": uses, "fp32_ms": times["fp32"] * 1e3, "bf16_ms": times["bf16"] * 1e3,
                     "kept": faster, "gflop_per_s": shape_flops / times[faster] / 1e9})
        total += uses * times[faster]
        flops += uses * shape_flops
    return rows, total, flops


def elementwise_work():
    """The step's main non-matmul work: `(name, op, shape, uses)`, each op timed forward and backward."""
    work = []
    for name, tokens in (("vision", PATCHES + 1), ("text", TEXT_TOKENS)):
        rows = BATCH * tokens
        full = LAYERS - 1  # the last block normalises all tokens once (keys, values), the rest for one token
        work += [
            (f"{name} LayerNorm", "layer_norm", (rows, WIDTH), 2 * full + 1),
            (f"{name} LayerNorm, pooled token", "layer_norm", (BATCH, WIDTH), 1),
            (f"{name} residual add", "add", (rows, WIDTH), 2 * full),
            (f"{name} GELU", "gelu", (rows, MLP), full),
            (f"{name} softmax", "softmax", (BATCH * HEADS, tokens, tokens), full),
        ]
    return work


def parameter_count():
    block = 4 * (WIDTH * WIDTH + WIDTH) + 2 * WIDTH * MLP + MLP + WIDTH + 4 * WIDTH
    vision = PATCH_FEATURES * WIDTH + WIDTH + (PATCHES + 2) * WIDTH + LAYERS * block + 2 * WIDTH
    text = 8192 * WIDTH + TEXT_TOKENS * WIDTH + LAYERS * block + 2 * WIDTH
    return vision + text + 2 * WIDTH * EMBED + 1


def time_elementwise(op, shape, dtype, repeats):
    import keras
    import numpy as np
    import tensorflow as tf

    x = tf.Variable(tf.cast(np.random.default_rng(0).standard_normal(shape), dtype))
    y = tf.Variable(tf.cast(np.random.default_rng(1).standard_normal(shape), dtype))
    norm = keras.layers.LayerNormalization(epsilon=1e-6, dtype=dtype.name)
    functions = {
        "layer_norm": lambda x: norm(x),
        "add": lambda x: x + y,
        "gelu": lambda x: tf.nn.gelu(x, approximate=False),
        "softmax": lambda x: tf.nn.softmax(x),
    }

    @tf.function
    def forward_backward():
        with tf.GradientTape() as tape:
            out = functions[op](x)
        return tape.gradient(out, x, output_gradients=tf.ones_like(out))

    return best_seconds(forward_backward, repeats)


def time_adamw(count, repeats):
    """AdamW on `count` parameters held in one variable, with mmkeras' fused update (faster than Keras' here)."""
    import tensorflow as tf

    from mmkeras.training.fused_adamw import FusedAdamW

    variable = tf.Variable(tf.zeros([count]))
    gradient = tf.ones([count])
    optimizer = FusedAdamW(1e-4)
    optimizer.build([variable])

    @tf.function
    def step():
        optimizer.apply([gradient], [variable])
        return variable.read_value()[:1]

    return best_seconds(step, repeats)


def elementwise_bound(repeats):
    import tensorflow as tf

    rows, total = [], 0.0
    for name, op, shape, uses in elementwise_work():
        times = {label: time_elementwise(op, shape, dtype, repeats)
                 for label, dtype in (("fp32", tf.float32), ("bf16", tf.bfloat16))}
        kept = min(times, key=times.get)
        rows.append({"name": name, "shape": shape, "uses": uses, "fp32_ms": times["fp32"] * 1e3,
                     "bf16_ms": times["bf16"] * 1e3, "kept": kept})
        total += uses * times[kept]
    adamw = time_adamw(parameter_count(), repeats)
    rows.append({"name": f"AdamW, {parameter_count():,} parameters as one variable", "shape": (parameter_count(),),
                 "uses": 1, "fp32_ms": adamw * 1e3, "bf16_ms": float("nan"), "kept": "fp32"})
    return rows, total + adamw


def peer_samples_per_s(steps):
    """keras-hub's bf16, no-XLA step (its fastest here), timed by `dual_encoder_train_step.py` in a subprocess."""
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dual_encoder_train_step.py")
    out = subprocess.run([sys.executable, script, "--steps", str(steps), "--settings", "bf16-nojit"],
                         capture_output=True, text=True, check=True).stdout
    best = json.loads(out[out.index("{"):])["best"]
    return best["keras-hub"]["samples_per_s"], best["mmkeras"]["samples_per_s"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=10, help="timed calls of each product per round")
    parser.add_argument("--steps", type=int, default=6, help="steps per round of the side-by-side train step")
    parser.add_argument("--no-peer", action="store_true", help="print the bound only")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    rows, seconds, flops = matmul_bound(args.repeats)
    print(f"{'products (count x M x K x N)':32s} {'uses':>4s} {'fp32 ms':>8s} {'bf16 ms':>8s} {'GFLOP/s':>8s}")
    for row in rows:
        count, m, k, n = row["shape"]
        print(f"{f'{count} x {m} x {k} x {n}':32s} {row['uses']:4d} {row['fp32_ms']:8.3f} {row['bf16_ms']:8.3f} "
              f"{row['gflop_per_s']:8.1f}")
    print(f"\nmatmuls of one step: {flops / 1e9:.1f} GFLOP in {seconds * 1e3:.0f} ms at the faster precision of "
          f"each ({flops / seconds / 1e9:.0f} GFLOP/s): at most {BATCH / seconds:.1f} samples/s\n")
    elementwise_rows, elementwise = elementwise_bound(args.repeats)
    print(f"{'other work, forward and backward':44s} {'uses':>4s} {'fp32 ms':>8s} {'bf16 ms':>8s}")
    for row in elementwise_rows:
        print(f"{row['name'] + ' ' + 'x'.join(map(str, row['shape'])):44s} {row['uses']:4d} {row['fp32_ms']:8.3f} "
              f"{row['bf16_ms']:8.3f}")
    bound = BATCH / (seconds + elementwise)
    print(f"\nother work: {elementwise * 1e3:.0f} ms; matmuls and other work: {(seconds + elementwise) * 1e3:.0f} ms "
          f"a step, at most {bound:.1f} samples/s")
    result = {"matmul_gflop": round(flops / 1e9, 2), "matmul_ms": round(seconds * 1e3, 1),
              "other_ms": round(elementwise * 1e3, 1), "bound_samples_per_s": round(bound, 1),
              "matmul_only_samples_per_s": round(BATCH / seconds, 1)}
    if not args.no_peer:
        keras_hub, mmkeras = peer_samples_per_s(args.steps)
        print(f"measured now, bf16 without XLA: keras-hub {keras_hub:.1f} samples/s, mmkeras {mmkeras:.1f}")
        print(f"the matmuls alone allow at most {BATCH / seconds / keras_hub:.2f}x keras-hub, with the other work "
              f"{bound / keras_hub:.2f}x; mmkeras is at "
              f"{mmkeras / keras_hub:.2f}x, {mmkeras / bound:.0%} of the bound")
        result.update(keras_hub_samples_per_s=keras_hub, mmkeras_samples_per_s=mmkeras,
                      bound_over_keras_hub=round(bound / keras_hub, 2),
                      matmul_only_over_keras_hub=round(BATCH / seconds / keras_hub, 2),
                      mmkeras_share_of_bound=round(mmkeras / bound, 2))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
