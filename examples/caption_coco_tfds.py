"""Train an image captioner on COCO captions read through TensorFlow Datasets.

The TFDS `coco_captions` dataset must already be prepared in `--data-dir` (nothing is downloaded).
Its "train" split is converted once into TFRecord shards in the run directory, its "val" split is
held out for evaluation (BLEU-1..4 and CIDEr-D against all five references), and the captioner is
exported as a SavedModel with `caption(image_bytes) -> {captions, scores}`.

    # Real data (a GPU or TPU; prepare coco_captions with `tfds build coco_captions --data_dir ...`):
    python examples/caption_coco_tfds.py --data-dir ~/tensorflow_datasets --output runs/coco-cap

    # Smoke test: Shapes scenes served as `coco_captions` through `tfds.testing.mock_data`, a few CPU steps:
    python examples/caption_coco_tfds.py --smoke --output /tmp/coco-smoke
"""

import argparse
import json
import os
import tempfile

from mmkeras import zoo
from mmkeras.tasks import task_for_config

# A tiny captioner, one epoch of a few steps: what `--smoke` trains.
SMOKE = {
    "data.image_size": 32,
    "data.vocabulary_size": 60,
    "image_encoder.patch_size": 16,
    "image_encoder.num_layers": 1,
    "image_encoder.hidden_dim": 16,
    "image_encoder.mlp_dim": 32,
    "image_encoder.num_heads": 2,
    "model.num_layers": 1,
    "model.hidden_dim": 16,
    "model.mlp_dim": 32,
    "model.num_heads": 2,
    "eval.max_length": 8,
    "eval.num_beams": 2,
    "eval.batch_size": 16,
    "train.epochs": 1,
    "train.global_batch_size": 8,
    "train.jit_compile": False,
    "train.strategy": "cpu",
}


def shapes_as_coco_captions(num_train=24, num_val=8):
    """An `as_dataset_fn` for `tfds.testing.mock_data`: Shapes scenes in the `coco_captions` layout.

    Each example has the features the real dataset has and the loader reads: `image` (JPEG bytes,
    as read with `SkipDecoding`), `image/id`, `image/filename` and `captions: {"id", "text"}`.
    """
    import tensorflow as tf

    from mmkeras.data import Shapes

    shapes = Shapes(image_size=32, num_train=num_train, num_val=num_val, num_test=1)

    def as_dataset(builder, split, decoders=None, read_config=None, **kwargs):
        name = "val" if str(split).startswith("val") else "train"
        scenes = shapes.scenes(name)
        offset = 0 if name == "train" else 100_000
        return tf.data.Dataset.from_tensor_slices({
            "image": [tf.io.encode_jpeg(s["image"]).numpy() for s in scenes],
            "image/id": [offset + s["image_id"] for s in scenes],
            "image/filename": [f"COCO_{name}2014_{offset + s['image_id']:012d}.jpg" for s in scenes],
            "captions": {
                "id": [list(range(len(s["captions"]))) for s in scenes],
                "text": [s["captions"] for s in scenes],
            },
        })

    return as_dataset


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="TFDS data folder holding a prepared coco_captions")
    parser.add_argument("--preset", default="captioner-vit-b16", help="a captioning preset (see `mmkeras list`)")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--global-batch", type=int, default=None)
    parser.add_argument("--strategy", default=None, help="auto|cpu|gpu|mirrored|multi_worker|tpu")
    parser.add_argument("--output", required=True, help="run directory (local or gs://)")
    parser.add_argument("--smoke", action="store_true",
                        help="mock coco_captions from Shapes, train a tiny captioner a few steps, evaluate")
    args = parser.parse_args(argv)

    overrides = {"data.dataset": "tfds", "data.path": "coco_captions"}
    if args.smoke:
        overrides.update(SMOKE)
        args.preset = "shapes-captioner-tiny"
        args.data_dir = args.data_dir or tempfile.mkdtemp(prefix="tfds-")
        os.makedirs(args.data_dir, exist_ok=True)  # mock data: the folder only has to exist
    elif not args.data_dir:
        parser.error("--data-dir is required (the folder holding a prepared coco_captions)")
    overrides["data.data_dir"] = os.path.expanduser(args.data_dir)
    for key, value in (("train.epochs", args.epochs), ("train.global_batch_size", args.global_batch),
                       ("train.strategy", args.strategy)):
        if value is not None:
            overrides[key] = value
    config = zoo.config(args.preset, **overrides)
    task = task_for_config(config, args.output)
    if not args.smoke:
        metrics = task.run()
        print(json.dumps({k: metrics[k] for k in ("bleu_1", "bleu_4", "cider_d", "num_test_images")}, indent=2))
        return 0

    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(as_dataset_fn=shapes_as_coco_captions(), data_dir=args.data_dir):
        model = task.train(verbose=0)
        metrics = task.evaluate(model)
    print(task.data.skip_report().summary())
    print(json.dumps({"bleu_4": metrics["bleu_4"], "cider_d": metrics["cider_d"],
                      "num_train_records": metrics["num_train_records"],
                      "num_held_out_records": metrics["num_held_out_records"],
                      "loss": task.run_dir.read_json("history.json")["loss"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
