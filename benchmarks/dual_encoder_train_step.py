"""Dual-encoder train step: mmkeras vs keras-hub CLIPBackbone, side by side in one run.

Config "bench-small": image 128 px, patch 16, vision width 256 x
4 layers x 4 heads (MLP 1024); text vocab 8192, context 32, width 256 x 4 layers; projection
256; batch 64; CLIP loss; AdamW. Each (precision, XLA) setting runs in its own subprocess
(the dtype policy is global); inside it the models are built and timed in alternating rounds,
so load on this shared machine hits them alike. The script prints samples/s (best round) for
every setting and the ratio of each model's best setting.

Models: "mmkeras" is the dual encoder as `mmkeras train` and the zoo build it: towers with
`pooled_only=True`, whose last block computes only the pooled token's output (the same weights
and the same loss as full towers). "mmkeras-full" is the same model with full towers (every
token's output in the last block, as keras-hub computes), to show what that saves.

    python benchmarks/dual_encoder_train_step.py            # all settings
    python benchmarks/dual_encoder_train_step.py --steps 5  # shorter
    python benchmarks/dual_encoder_train_step.py --settings bf16-nojit,fp32-jit
    python benchmarks/dual_encoder_train_step.py --create-peer-venv peer-venv  # + open_clip

open_clip, the PyTorch peer, runs from `benchmarks/peers/open_clip_train_step.py` in a virtual
environment of its own (PyTorch is never a dependency of mmkeras): `--peer-python` names its
Python, or `--create-peer-venv DIR` makes one first (`python -m venv DIR`, then pip installs
`PEER_REQUIREMENTS`) and uses it; an existing DIR is reused.

The last lines compare mmkeras' best setting with the best setting of each peer, and with the
best peer of all. Where that time goes, and how fast the step could be: `train_step_bound.py`.
"""

import argparse
import json
import os
import subprocess
import sys
import time

PEER_REQUIREMENTS = ("torch==2.14.1", "torchvision==0.29.1", "open_clip_torch")
SETTINGS = [(bf16, jit) for bf16 in (False, True) for jit in (True, False)]
MODELS = ("mmkeras", "mmkeras-full", "keras-hub")


def _setting_name(bf16, jit):
    return f"{'bf16' if bf16 else 'fp32'}-{'jit' if jit else 'nojit'}"


def _time_round(step, args, steps):
    start = time.perf_counter()
    for _ in range(steps):
        loss = step(*args)
    loss.numpy()
    return (time.perf_counter() - start) / steps


def build_step(which, jit, images, ids):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import tensorflow as tf

    optimizer = keras.optimizers.AdamW(1e-4)

    if which.startswith("mmkeras"):
        from mmkeras.encoders import TextTransformerEncoder, ViTEncoder
        from mmkeras.models import dual_encoder

        pooled_only = which == "mmkeras"
        model = dual_encoder(
            ViTEncoder(image_size=128, patch_size=16, hidden_dim=256, num_layers=4, num_heads=4, mlp_dim=1024,
                       pooled_only=pooled_only),
            TextTransformerEncoder(
                vocabulary_size=8192, sequence_length=32, hidden_dim=256, num_layers=4, num_heads=4, mlp_dim=1024,
                pooled_only=pooled_only,
            ),
            embed_dim=256,
            loss="clip",
        )

        def loss_fn(images, ids):
            out = model({"images": images, "token_ids": ids}, training=True)
            return model.compute_loss(y_pred=out)

    else:
        import keras_hub

        vision = keras_hub.models.CLIPVisionEncoder(
            patch_size=16, hidden_dim=256, num_layers=4, num_heads=4, intermediate_dim=1024,
            intermediate_activation="gelu", image_shape=(128, 128, 3),
        )
        text = keras_hub.models.CLIPTextEncoder(
            vocabulary_size=8192, embedding_dim=256, hidden_dim=256, num_layers=4, num_heads=4,
            intermediate_dim=1024, intermediate_activation="gelu", max_sequence_length=32,
        )
        model = keras_hub.models.CLIPBackbone(vision, text, projection_dim=256)
        ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

        def loss_fn(images, ids):
            out = model({"images": images, "token_ids": ids}, training=True)
            labels = tf.range(tf.shape(images)[0])
            return (
                ce(labels, tf.cast(out["vision_logits"], tf.float32))
                + ce(labels, tf.cast(out["text_logits"], tf.float32))
            ) / 2

    @tf.function(jit_compile=jit)
    def step(images, ids):
        with tf.GradientTape() as tape:
            loss = loss_fn(images, ids)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    return step


def run_setting(bf16, jit, batch, steps, rounds=3):
    import keras
    import numpy as np
    import tensorflow as tf

    if bf16:
        keras.config.set_dtype_policy("mixed_bfloat16")
    rng = np.random.default_rng(0)
    images = tf.constant(rng.random((batch, 128, 128, 3), dtype=np.float32))
    ids = tf.constant(rng.integers(1, 8192, (batch, 32)), dtype=tf.int32)
    steps_by_model = {w: build_step(w, jit, images, ids) for w in MODELS}
    for step in steps_by_model.values():  # compile and warm up
        for _ in range(2):
            step(images, ids).numpy()
    best = {w: float("inf") for w in steps_by_model}
    for _ in range(rounds):
        for which, step in steps_by_model.items():
            best[which] = min(best[which], _time_round(step, (images, ids), steps))
    return [
        {"model": w, "bf16": bf16, "jit": jit, "samples_per_s": round(batch / best[w], 1)}
        for w in steps_by_model
    ]


def peer_venv(directory):
    """The Python of a virtual environment in `directory` holding `PEER_REQUIREMENTS` (created if missing)."""
    python = os.path.join(directory, "bin", "python")
    if not os.path.exists(python):
        subprocess.run([sys.executable, "-m", "venv", directory], check=True)
    subprocess.run([python, "-m", "pip", "install", "--quiet", *PEER_REQUIREMENTS], check=True)
    return python


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--settings", default=",".join(_setting_name(*s) for s in SETTINGS),
                        help="comma-separated subset of " + ", ".join(_setting_name(*s) for s in SETTINGS))
    parser.add_argument("--peer-python", help="a Python with torch and open_clip_torch: also time the open_clip peer")
    parser.add_argument("--create-peer-venv", metavar="DIR",
                        help="create (or reuse) a virtual environment with torch and open_clip_torch for the peer")
    parser.add_argument("--child", nargs=2, metavar=("BF16", "JIT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_setting(args.child[0] == "1", args.child[1] == "1", args.batch, args.steps)))
        return
    if args.create_peer_venv:
        args.peer_python = peer_venv(args.create_peer_venv)
    wanted = args.settings.split(",")
    unknown = set(wanted) - {_setting_name(*s) for s in SETTINGS}
    if unknown:
        parser.error(f"unknown --settings {sorted(unknown)}")
    results = []
    for bf16, jit in (s for s in SETTINGS if _setting_name(*s) in wanted):
        command = [sys.executable, __file__, "--batch", str(args.batch), "--steps", str(args.steps),
                   "--child", str(int(bf16)), str(int(jit))]
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        for result in json.loads(out.strip().splitlines()[-1]):
            results.append(result)
            print(f"{result['model']:12s} {'bf16' if bf16 else 'fp32'} {'XLA   ' if jit else 'no XLA'} "
                  f"{result['samples_per_s']:8.1f} samples/s", flush=True)
    if args.peer_python:
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "peers", "open_clip_train_step.py")
        out = subprocess.run([args.peer_python, script, "--batch", str(args.batch), "--steps", str(args.steps)],
                             capture_output=True, text=True, check=True).stdout
        for result in json.loads(out.strip().splitlines()[-1]):
            results.append(result)
            print(f"{'open_clip':12s} {'bf16' if result['bf16'] else 'fp32'} eager  "
                  f"{result['samples_per_s']:8.1f} samples/s", flush=True)
    models = MODELS + (("open_clip",) if args.peer_python else ())
    best = {w: max((r for r in results if r["model"] == w), key=lambda r: r["samples_per_s"]) for w in models}
    peers = [w for w in models if not w.startswith("mmkeras")]
    ratios = {f"ratio_{w}_over_{p}".replace("-", "_"): round(best[w]["samples_per_s"] / best[p]["samples_per_s"], 2)
              for w in MODELS[:2] for p in peers}
    top = max(peers, key=lambda p: best[p]["samples_per_s"])
    ratios["best_peer"] = top
    ratios["ratio_mmkeras_over_best_peer"] = round(best["mmkeras"]["samples_per_s"] / best[top]["samples_per_s"], 2)
    print(json.dumps({"best": best, **ratios}, indent=2))


if __name__ == "__main__":
    main()
