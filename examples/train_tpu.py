"""Train an mmkeras family on a Cloud TPU (or GPUs, or CPU) with one script.

The same code path as `mmkeras train` and the tests: a zoo preset resolved with
`mmkeras.zoo.config(...)`, run by `mmkeras.tasks.task_for_config(...)`.

    # Cloud TPU VM (single host), bfloat16:
    python examples/train_tpu.py --family matching --strategy tpu --tpu local \\
        --precision mixed_bfloat16 --global-batch 1024 --output gs://bucket/runs/clip

    # TPU pod slice: run the same command on every host.

    # Smoke test on CPU with tiny Shapes settings (seconds):
    python examples/train_tpu.py --family captioning --smoke --output /tmp/smoke
"""

import argparse
import json

from mmkeras import zoo
from mmkeras.tasks import task_for_config

PRESETS = {
    "matching": "shapes-clip-tiny",
    "captioning": "shapes-captioner-tiny",
    "fusion": "shapes-fusion-concat-tiny",
}
# A few steps of a tiny model: what `--smoke` trains.
SMOKE = {
    "data.num_train": 16,
    "data.num_val": 2,
    "data.num_test": 2,
    "data.image_size": 32,
    "data.vocabulary_size": 60,
    "image_encoder.patch_size": 16,
    "image_encoder.num_layers": 1,
    "train.epochs": 1,
    "train.global_batch_size": 8,
    "train.jit_compile": False,
    "train.tower_pretraining_steps": 0,  # 32-px images: a 2x2 token grid, not the 3x3 cells
}


def smoke_overrides(family):
    """The config overrides of `--smoke` for `family`."""
    if family == "fusion":  # whole scenes: 2 with the preset's 11 texts each
        return {**SMOKE, "train.global_batch_size": 22}
    return dict(SMOKE)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", choices=sorted(PRESETS), default="matching")
    parser.add_argument("--preset", help="a zoo preset of that family (default: its Shapes tiny preset)")
    parser.add_argument("--strategy", default="auto", help="auto|cpu|gpu|mirrored|multi_worker|tpu")
    parser.add_argument("--tpu", default=None, help='TPU name or address; "local" on a TPU VM')
    parser.add_argument("--precision", default=None, help="float32|mixed_bfloat16|mixed_float16")
    parser.add_argument("--global-batch", type=int, default=None)
    parser.add_argument("--accumulate", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--output", required=True, help="run directory (local or gs://)")
    parser.add_argument("--smoke", action="store_true", help="a few CPU steps of a tiny model; no eval/export")
    args = parser.parse_args(argv)

    overrides = smoke_overrides(args.family) if args.smoke else {}
    overrides["train.strategy"] = "cpu" if args.smoke and args.strategy == "auto" else args.strategy
    for key, value in (
        ("train.tpu", args.tpu),
        ("train.precision", args.precision),
        ("train.global_batch_size", args.global_batch),
        ("train.accumulate", args.accumulate),
        ("train.epochs", args.epochs),
    ):
        if value is not None:
            overrides[key] = value
    config = zoo.config(args.preset or PRESETS[args.family], **overrides)
    task = task_for_config(config, args.output)
    print(f"{config['name']}: {task.strategy.num_replicas_in_sync} replica(s), "
          f"{task.per_replica_batch} examples per replica per step")
    if args.smoke:
        task.train(verbose=0)
        history = task.run_dir.read_json("history.json")
        print(json.dumps({"family": args.family, "loss": history["loss"]}))
        return 0
    print(task.describe(task.run()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
