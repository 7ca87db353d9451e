"""Fine-tune a pretrained image tower (keras-hub preset directory or TF-Hub SavedModel) on your data.

The image tower of a zoo preset is replaced by a pretrained one loaded from a **local** directory
(nothing is downloaded): a keras-hub preset (`KerasHubEncoder`: a ViT, CLIP or SigLIP backbone
saved with `save_to_preset`) or a TF2 SavedModel / TF-Hub module (`TFHubEncoder`). The text side
(or the caption decoder) trains from scratch with a WordPiece tokenizer learned on your captions.
`--freeze` keeps the image tower fixed (LiT-style locked-image tuning, dual encoders only).

    # A dual encoder on COCO from a local keras-hub CLIP preset (224 px):
    python examples/finetune_pretrained.py --keras-hub-preset presets/clip_vit_b16 --family matching \\
        --data coco:annotations/captions_train2017.json --images train2017 --image-size 224 \\
        --output runs/clip-finetune

    # A captioner from a TF-Hub image feature extractor (expects [0, 1] pixels):
    python examples/finetune_pretrained.py --tf-hub hub/efficientnet_b0 --family captioning \\
        --data csv:captions.csv --image-size 224 --image-scale 0.5 --image-offset 0.5 --output runs/cap

    # Smoke test: writes a tiny keras-hub ViT preset (or, with --tf-hub-smoke, a tiny TF-Hub
    # SavedModel) and Shapes files in the COCO layout, then trains a few CPU steps:
    python examples/finetune_pretrained.py --smoke --output /tmp/finetune-smoke
"""

import argparse
import json
import os
import tempfile

from mmkeras import zoo
from mmkeras.config import resolve_config
from mmkeras.tasks import task_for_config

PRESETS = {"matching": "shapes-clip-tiny", "captioning": "shapes-captioner-tiny"}
SMOKE_SIZE = 32
SMOKE = {"data.vocabulary_size": 60, "eval.batch_size": 16, "eval.max_length": 8, "eval.num_beams": 2,
         "train.epochs": 1, "train.global_batch_size": 8, "train.jit_compile": False, "train.strategy": "cpu",
         "data.val_fraction": 0.25}
SMOKE_MATCHING = {"text_encoder.num_layers": 1, "text_encoder.hidden_dim": 16, "text_encoder.mlp_dim": 32,
                  "text_encoder.num_heads": 2, "model.embed_dim": 16}
SMOKE_CAPTIONING = {"model.num_layers": 1, "model.hidden_dim": 16, "model.mlp_dim": 32, "model.num_heads": 2}


def write_smoke_files(folder, tf_hub=False):
    """Writes a tiny pretrained image tower and Shapes COCO-layout files; returns (tower dir, paths)."""
    from mmkeras.data import Shapes

    tower = os.path.join(folder, "tower")
    if tf_hub:
        from mmkeras.encoders import ViTEncoder
        from mmkeras.export import export_encoder

        vit = ViTEncoder(image_size=SMOKE_SIZE, patch_size=16, hidden_dim=16, num_layers=1, num_heads=2, mlp_dim=32)
        export_encoder(vit, tower, include_sequence=True)
    else:
        import keras_hub

        keras_hub.models.ViTBackbone(
            image_shape=(SMOKE_SIZE, SMOKE_SIZE, 3), patch_size=16, num_layers=1, num_heads=2, hidden_dim=16,
            mlp_dim=32,
        ).save_to_preset(tower)
    paths = Shapes(image_size=SMOKE_SIZE, num_train=24, num_val=1, num_test=1).write(os.path.join(folder, "coco"), "train")
    return tower, paths


def image_tower_spec(args):
    """The `image_encoder` config of the pretrained tower."""
    if args.keras_hub_preset:
        spec = {"type": "keras_hub", "preset": args.keras_hub_preset, "modality": "image"}
    else:
        spec = {"type": "tf_hub", "handle": args.tf_hub, "modality": "image",
                "input_shape": [args.image_size, args.image_size, 3]}
    if args.image_scale is not None:
        spec["image_scale"] = args.image_scale
    if args.image_offset is not None:
        spec["image_offset"] = args.image_offset
    return spec


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    tower = parser.add_mutually_exclusive_group()
    tower.add_argument("--keras-hub-preset", help="a local keras-hub preset directory")
    tower.add_argument("--tf-hub", help="a local TF2 SavedModel / TF-Hub module directory")
    parser.add_argument("--family", choices=sorted(PRESETS), default="matching")
    parser.add_argument("--preset", help="the zoo preset whose other parts are used (default: its Shapes tiny one)")
    parser.add_argument("--data", help="KIND:PATH as for `mmkeras train --data` (coco:, flickr:, csv:, jsonl:, tfds:)")
    parser.add_argument("--images", help="images folder")
    parser.add_argument("--image-size", type=int, default=224, help="input size of the pretrained tower")
    parser.add_argument("--image-scale", type=float, help="tower inputs are images * scale + offset (images in [-1, 1])")
    parser.add_argument("--image-offset", type=float)
    parser.add_argument("--freeze", action="store_true", help="keep the image tower fixed (matching only)")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument("--output", required=True, help="run directory")
    parser.add_argument("--smoke", action="store_true", help="a tiny local tower and Shapes files, a few CPU steps")
    parser.add_argument("--tf-hub-smoke", action="store_true", help="with --smoke: a TF-Hub SavedModel tower")
    args = parser.parse_args(argv)

    overrides = {}
    if args.smoke:
        folder = tempfile.mkdtemp(prefix="finetune-")
        tower_dir, paths = write_smoke_files(folder, tf_hub=args.tf_hub_smoke)
        args.keras_hub_preset, args.tf_hub = (None, tower_dir) if args.tf_hub_smoke else (tower_dir, None)
        args.data, args.images, args.image_size = f"coco:{paths['captions_json']}", paths["image_dir"], SMOKE_SIZE
        overrides.update(SMOKE, **(SMOKE_MATCHING if args.family == "matching" else SMOKE_CAPTIONING))
    if not (args.keras_hub_preset or args.tf_hub) or not args.data:
        parser.error("give --keras-hub-preset or --tf-hub, and --data KIND:PATH (or use --smoke)")
    if args.freeze and args.family != "matching":
        parser.error("--freeze applies to --family matching")
    kind, _, path = args.data.partition(":")
    overrides.update({"data.dataset": kind, "data.path": path, "data.images": args.images,
                      "data.image_size": args.image_size, "data.augment": False})
    if args.freeze:
        overrides["model.freeze_image_encoder"] = True
    for key, value in (("train.epochs", args.epochs), ("train.learning_rate", args.learning_rate)):
        if value is not None:
            overrides[key] = value

    preset = dict(zoo.get(args.preset or PRESETS[args.family]))
    preset["image_encoder"] = image_tower_spec(args)  # replaces the preset's tower as a whole
    config = resolve_config(preset, overrides)
    task = task_for_config(config, args.output)
    if not args.smoke:
        print(task.describe(task.run()))
        return 0
    model = task.train(verbose=0)
    print(task.data.skip_report().summary())
    history = task.run_dir.read_json("history.json")
    print(json.dumps({"family": args.family, "image_tower": config["image_encoder"]["type"],
                      "loss": history["loss"], "num_train_records": task.data.num_records("train"),
                      "num_params": int(model.count_params())}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
