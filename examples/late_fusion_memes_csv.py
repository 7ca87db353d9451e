"""A late-fusion baseline on a Hateful-Memes-style manifest: image + text -> binary label.

The manifest is the Hateful Memes JSONL (`{"id", "img", "label", "text"}` per line, `img` relative
to the file's folder, e.g. `img/01235.png`) or a CSV with `img, text, label` columns (also
`image_path` / `image`). Rows without a label are skipped and counted; a row without text is kept
with the text marked missing. A deterministic 10% of the ids is held out (`--val-fraction`) for
accuracy, macro-F1 and AUROC, also with the image or the text masked out, next to the
majority-class accuracy. The export's `classify(image_bytes, text)` returns `label_probs` and
`label_label`.

    # Hateful Memes (train.jsonl and img/ in one folder):
    python examples/late_fusion_memes_csv.py --manifest hateful_memes/train.jsonl --output runs/memes

    # Smoke test: a memes-style JSONL of Shapes images and true / false captions, a few CPU steps:
    python examples/late_fusion_memes_csv.py --smoke --output /tmp/memes-smoke
"""

import argparse
import json
import os
import tempfile

from mmkeras import zoo
from mmkeras.tasks import task_for_config

# Tiny towers and one short epoch: what `--smoke` trains.
SMOKE = {"data.image_size": 32, "data.vocabulary_size": 60,
         "image_encoder.patch_size": 16, "model.fusion_kwargs": {"combine": "mean", "hidden_dim": 16},
         "eval.batch_size": 16, "train.epochs": 1, "train.global_batch_size": 8, "train.jit_compile": False,
         "train.strategy": "cpu"}
for _tower in ("image_encoder", "text_encoder"):
    SMOKE.update({f"{_tower}.num_layers": 1, f"{_tower}.hidden_dim": 16, f"{_tower}.mlp_dim": 32,
                  f"{_tower}.num_heads": 2})


def write_memes_jsonl(folder, num_scenes=20):
    """Writes a Hateful-Memes-style `train.jsonl` + `img/` from Shapes; returns the JSONL path.

    Each line pairs a Shapes image with a caption that is true (label 0) or false in exactly one
    attribute (label 1, "the text does not fit the image"), so the label depends on both inputs.
    """
    import tensorflow as tf

    from mmkeras.data import Shapes

    os.makedirs(os.path.join(folder, "img"), exist_ok=True)
    lines = []
    for i, scene in enumerate(Shapes(image_size=32, num_train=num_scenes, num_val=1, num_test=1).scenes("train")):
        name = f"img/{i:05d}.png"
        with open(os.path.join(folder, name), "wb") as f:
            f.write(tf.io.encode_png(scene["image"]).numpy())
        for j, pair in enumerate(scene["match"]):
            lines.append({"id": f"{i:04d}{j}", "img": name, "label": 1 - pair["label"], "text": pair["text"]})
    path = os.path.join(folder, "train.jsonl")
    with open(path, "w") as f:
        f.writelines(json.dumps(line) + "\n" for line in lines)
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", help="a JSONL (.jsonl) or CSV manifest with img, text, label")
    parser.add_argument("--images", help="folder the image paths are relative to (default: the manifest's)")
    parser.add_argument("--preset", default="fusion-late-resnet50-bert", help="a fusion preset (see `mmkeras list`)")
    parser.add_argument("--val-fraction", type=float, default=0.1)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--global-batch", type=int, default=None)
    parser.add_argument("--output", required=True, help="run directory (local or gs://)")
    parser.add_argument("--smoke", action="store_true", help="Shapes memes, a tiny late-fusion model, a few CPU steps")
    args = parser.parse_args(argv)

    overrides = {}
    if args.smoke:
        overrides.update(SMOKE)
        args.preset = "shapes-fusion-late-tiny"
        args.manifest = write_memes_jsonl(tempfile.mkdtemp(prefix="memes-"))
        args.val_fraction = 0.25
    elif not args.manifest:
        parser.error("--manifest is required")
    kind = "jsonl" if args.manifest.lower().endswith((".jsonl", ".json")) else "csv"
    overrides.update({"data.dataset": kind, "data.path": args.manifest, "data.images": args.images,
                      "data.val_fraction": args.val_fraction})
    for key, value in (("train.epochs", args.epochs), ("train.global_batch_size", args.global_batch)):
        if value is not None:
            overrides[key] = value
    task = task_for_config(zoo.config(args.preset, **overrides), args.output)
    if not args.smoke:
        metrics = task.run()
    else:  # no export: seconds matter in a smoke run
        model = task.train(verbose=0)
        metrics = task.evaluate(model)
        print(task.data.skip_report().summary())
    keys = ("accuracy", "macro_f1", "auroc", "accuracy_image_missing", "accuracy_text_missing",
            "baseline_majority_accuracy", "num_train_records", "num_held_out_records")
    print(json.dumps({k: metrics.get(k) for k in keys}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
