"""Peak memory and step time of a dual-encoder train step with and without `train.remat`.

Rematerialisation per Transformer block (`--set train.remat=true`,
`mmkeras.training.remat`) keeps only each block's input for the backward
pass and recomputes the block's activations there. This script measures what
that buys and costs for one CLIP-loss dual-encoder train step (forward,
gradients, AdamW update), fp32, with XLA and without:

- peak memory: each (remat, XLA) setting runs in its own subprocess, which
  reports `resource.getrusage(RUSAGE_SELF).ru_maxrss` (peak resident host
  memory, MiB; it includes the ~0.5-1 GiB that TensorFlow itself takes) and,
  when a GPU exists, `tf.config.experimental.get_memory_info("GPU:0")["peak"]`
  (peak GPU memory of the step, MiB);
- steady-state step time: best of `--rounds` rounds of `--steps` steps, after
  two warm-up steps (which compile).

Default model ("bench-small", as benchmarks/dual_encoder_train_step.py): image
128 px, patch 16, width 256 x 4 layers x 4 heads (MLP 1024); text vocab 8192,
context 32, width 256 x 4 layers; projection 256; batch 64.

`--preset clip-vit-b16` builds the zoo's CLIP ViT-B/16 (224 px, 12 + 12
layers) instead; the largest batch that fits in a 24 GB GPU, with and
without remat, needs a GPU: run there with increasing `--batch N` (a setting
that does not fit reports "OOM").

    python benchmarks/remat_memory.py                       # bench-small, batch 64
    python benchmarks/remat_memory.py --steps 3 --rounds 2  # shorter
    python benchmarks/remat_memory.py --preset clip-vit-b16 --batch 256 --xla on
"""

import argparse
import json
import os
import subprocess
import sys
import time

SETTINGS = [(remat, jit) for jit in (True, False) for remat in (False, True)]


def _setting_name(remat, jit):
    return f"{'remat' if remat else 'plain'}-fp32-{'jit' if jit else 'nojit'}"


def build_model(preset, remat):
    """The dual encoder, its blocks rematerialised when `remat`; returns (model, image_size, context, vocab)."""
    from mmkeras.training.remat import apply_remat

    if preset == "bench-small":
        from mmkeras.encoders import TextTransformerEncoder, ViTEncoder
        from mmkeras.models import dual_encoder

        model = dual_encoder(
            ViTEncoder(image_size=128, patch_size=16, hidden_dim=256, num_layers=4, num_heads=4, mlp_dim=1024,
                       pooled_only=True),
            TextTransformerEncoder(vocabulary_size=8192, sequence_length=32, hidden_dim=256, num_layers=4,
                                   num_heads=4, mlp_dim=1024, pooled_only=True),
            embed_dim=256,
            loss="clip",
        )
        sizes = 128, 32, 8192
    else:
        from mmkeras import zoo
        from mmkeras.models import build_from_config

        config = zoo.config(preset, **{"train.precision": "float32"})
        model = build_from_config(config)
        sizes = config["data"]["image_size"], config["data"]["sequence_length"], config["data"]["vocabulary_size"]
    apply_remat(model, remat)
    return (model, *sizes)


def run_setting(preset, remat, jit, batch, steps, rounds):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import resource

    import keras
    import numpy as np
    import tensorflow as tf

    gpu = bool(tf.config.list_physical_devices("GPU"))
    model, image_size, context, vocab = build_model(preset, remat)
    optimizer = keras.optimizers.AdamW(1e-4)
    rng = np.random.default_rng(0)
    images = tf.constant(rng.uniform(-1, 1, (batch, image_size, image_size, 3)).astype("float32"))
    ids = tf.constant(rng.integers(1, vocab, (batch, context)), dtype=tf.int32)

    @tf.function(jit_compile=jit)
    def step(images, ids):
        with tf.GradientTape() as tape:
            out = model({"images": images, "token_ids": ids}, training=True)
            loss = model.compute_loss(y_pred=out)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    try:
        for _ in range(2):
            step(images, ids).numpy()
        best = float("inf")
        for _ in range(rounds):
            start = time.perf_counter()
            for _ in range(steps):
                loss = step(images, ids)
            loss.numpy()
            best = min(best, (time.perf_counter() - start) / steps)
    except tf.errors.ResourceExhaustedError:
        return {"remat": remat, "jit": jit, "oom": True}
    result = {
        "remat": remat, "jit": jit, "step_ms": round(1000 * best, 1),
        "host_peak_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    if gpu:
        result["gpu_peak_mib"] = round(tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20, 1)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="bench-small", help='"bench-small" or a zoo dual-encoder preset')
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--xla", choices=("both", "on", "off"), default="both", help="the XLA settings to run")
    parser.add_argument("--child", nargs=2, metavar=("REMAT", "JIT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = run_setting(args.preset, args.child[0] == "1", args.child[1] == "1", args.batch, args.steps,
                             args.rounds)
        print(json.dumps(result))
        return
    print(f"{args.preset}, batch {args.batch}, fp32; best of {args.rounds} rounds of {args.steps} steps")
    for remat, jit in (s for s in SETTINGS if args.xla == "both" or s[1] == (args.xla == "on")):
        command = [sys.executable, __file__, "--preset", args.preset, "--batch", str(args.batch),
                   "--steps", str(args.steps), "--rounds", str(args.rounds), "--child", str(int(remat)), str(int(jit))]
        out = subprocess.run(command, capture_output=True, text=True)
        if out.returncode != 0:
            print(f"{_setting_name(remat, jit):18s} failed (exit {out.returncode}): {out.stderr.strip()[-300:]}")
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        if r.get("oom"):
            print(f"{_setting_name(remat, jit):18s} OOM")
            continue
        gpu = f"  GPU peak {r['gpu_peak_mib']:9.1f} MiB" if "gpu_peak_mib" in r else ""
        print(f"{_setting_name(remat, jit):18s} step {r['step_ms']:8.1f} ms  host peak RSS {r['host_peak_mib']:8.1f} MiB"
              f"{gpu}", flush=True)


if __name__ == "__main__":
    main()
