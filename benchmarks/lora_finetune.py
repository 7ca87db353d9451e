"""LoRA against full fine-tuning: trainable parameters, peak memory and step time, per preset.

For each preset (default `clip-vit-b16`, mmkeras' own ViT-B/16 + text Transformer towers, and
`siglip-base-patch16-224`, the architecture of an imported SigLIP checkpoint with keras-hub towers;
random weights: the cost does not depend on them), each mode runs in its own subprocess:

- "full": every weight trains;
- "lora": `train.lora_rank` (default 8) on the attention and MLP projections of both towers
  (`mmkeras.training.enable_lora`), the towers otherwise frozen; projections and logit scale train.

It prints the trainable and total parameter counts, the peak resident memory of the process
(`ru_maxrss`: weights, optimizer slots, activations and the runtime; on a GPU also TensorFlow's
peak device memory) and the steady-state train step time (best of `--rounds` rounds of `--steps`
steps after two warm-up steps), with the dual encoder's own loss, AdamW, fp32 with XLA unless
`--no-jit`.

    python benchmarks/lora_finetune.py                       # both presets, batch 8
    python benchmarks/lora_finetune.py --presets clip-vit-b16 --batch 32 --rank 16

Quality (a CLIP-trained tower fine-tuned with LoRA against full fine-tuning on Shapes) is measured
with `mmkeras train ... --init RUN --set train.lora_rank=8` and reported in docs/benchmarks.md.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time


def run_mode(preset, mode, rank, batch, steps, rounds, jit):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import numpy as np
    import tensorflow as tf

    from mmkeras import zoo
    from mmkeras.training.lora import enable_lora, trainable_parameter_count

    config = zoo.config(preset, **{"train.precision": "float32"})
    size = config["data"]["image_size"]
    length = config["data"]["sequence_length"]
    vocabulary = config["data"]["vocabulary_size"]
    model = zoo.build(preset, **{"train.precision": "float32"})
    if mode == "lora":
        enable_lora(model, rank)
    trainable, total = trainable_parameter_count(model)
    optimizer = keras.optimizers.AdamW(1e-4)
    rng = np.random.default_rng(0)
    images = tf.constant(rng.uniform(-1, 1, (batch, size, size, 3)).astype("float32"))
    ids = tf.constant(rng.integers(1, vocabulary, (batch, length)).astype("int32"))

    @tf.function(jit_compile=jit)
    def step():
        with tf.GradientTape() as tape:
            loss = model.compute_loss(y_pred=model({"images": images, "token_ids": ids}, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    for _ in range(2):
        step().numpy()
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(steps):
            loss = step()
        loss.numpy()
        best = min(best, (time.perf_counter() - start) / steps)
    result = {"preset": preset, "mode": mode, "trainable_params": trainable, "total_params": total,
              "step_s": round(best, 3), "samples_per_s": round(batch / best, 2),
              "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}
    if tf.config.list_physical_devices("GPU"):
        result["peak_gpu_mib"] = round(tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", default="clip-vit-b16,siglip-base-patch16-224")
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--no-jit", action="store_true")
    parser.add_argument("--child", nargs=2, metavar=("PRESET", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_mode(*args.child, args.rank, args.batch, args.steps, args.rounds, not args.no_jit)))
        return
    rows = []
    for preset in args.presets.split(","):
        for mode in ("full", "lora"):
            command = [sys.executable, __file__, "--child", preset, mode, "--rank", str(args.rank), "--batch",
                       str(args.batch), "--steps", str(args.steps), "--rounds", str(args.rounds)]
            command += ["--no-jit"] if args.no_jit else []
            out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            rows.append(json.loads(out.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), flush=True)
    print(f"\nbatch {args.batch}, LoRA rank {args.rank}, fp32, {'no XLA' if args.no_jit else 'XLA'}")
    print("| preset | mode | trainable / total parameters | peak memory (MiB) | step (s) |")
    print("|---|---|---|---|---|")
    for row in rows:
        memory = row.get("peak_gpu_mib", row["peak_rss_mib"])
        print(f"| {row['preset']} | {row['mode']} | {row['trainable_params']:,} / {row['total_params']:,} "
              f"({100 * row['trainable_params'] / row['total_params']:.2f}%) | {memory:,} | {row['step_s']} |")
    for preset in args.presets.split(","):
        full, lora = (next(r for r in rows if r["preset"] == preset and r["mode"] == m) for m in ("full", "lora"))
        print(f"{preset}: LoRA / full fine-tuning: step time {lora['step_s'] / full['step_s']:.2f}x, peak memory "
              f"{lora['peak_rss_mib'] / full['peak_rss_mib']:.2f}x, trainable parameters "
              f"{lora['trainable_params'] / full['trainable_params']:.4f}x")


if __name__ == "__main__":
    main()
