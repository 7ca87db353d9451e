"""Fusion train-step time: one text per image against several texts per image, side by side.

`data.texts_per_image=1` trains on `(image, text)` pairs, so every image is
encoded once per text; with `K > 1` a step holds `B` images and their `B * K`
texts and the image tower runs once per image. The two settings are timed in
one process, alternating, on the same preset (same towers, fusion and heads),
and the script prints ms per step, ms per 1,000 texts and the ratio.

    python3 benchmarks/fusion_step.py                       # early, cross-attention, late
    python3 benchmarks/fusion_step.py --types early --steps 20 --repeats 2
"""

import argparse
import statistics
import tempfile
import time

import mmkeras  # noqa: F401  (selects the TensorFlow backend)
from mmkeras import zoo
from mmkeras.tasks.fusion_task import FusionTask

SETTINGS = {"pairs": {"data.texts_per_image": 1, "train.global_batch_size": 64},
            "shared": {"data.texts_per_image": 11, "train.global_batch_size": 66}}


def fitted_steps(fusion, overrides):
    """A compiled model and its training stream, traced and warmed up by a few steps."""
    config = zoo.config(f"shapes-fusion-{fusion.replace('_', '-')}-tiny", **overrides)
    task = FusionTask(config, tempfile.mkdtemp(prefix="mmkeras-bench-fusion-"))
    with task.strategy.scope():
        model = task.build_model()
        task.compile_model(model, total_steps=10_000)
    stream = task.training_stream(0, 0).repeat()
    model.fit(stream, epochs=1, steps_per_epoch=3, verbose=0)
    rows = config["train"]["global_batch_size"]
    return model, stream, rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--types", default="early,cross_attention,late")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    for fusion in args.types.split(","):
        runs = {name: fitted_steps(fusion, overrides) for name, overrides in SETTINGS.items()}
        times = {name: [] for name in runs}
        for _ in range(args.repeats):
            for name, (model, stream, _) in runs.items():
                start = time.perf_counter()
                model.fit(stream, epochs=1, steps_per_epoch=args.steps, verbose=0)
                times[name].append((time.perf_counter() - start) / args.steps * 1000)
        per_step = {name: statistics.median(t) for name, t in times.items()}
        per_text = {name: per_step[name] / runs[name][2] * 1000 for name in runs}
        columns = []
        for name, overrides in SETTINGS.items():
            texts = overrides["train.global_batch_size"]
            images = texts // overrides["data.texts_per_image"]
            columns.append(f"{name} ({texts} texts, {images} images): {per_step[name]:6.1f} ms/step "
                           f"{per_text[name]:7.0f} ms/1k texts")
        print(f"{fusion:16s} " + " | ".join(columns) + f" | {per_text['pairs'] / per_text['shared']:.2f}x "
              f"per text (median of {args.repeats} x {args.steps} steps)")


if __name__ == "__main__":
    main()
