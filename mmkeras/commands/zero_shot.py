"""`mmkeras zero-shot RUN --images DIR --labels "a dog,a cat"`: a label per image, with its probability."""

NAME = "zero-shot"
HELP = "classify a folder of images among labels given as text, with a run's (or an import's) dual encoder"


def add_arguments(parser):
    parser.add_argument("run_dir", help="a run directory with a dual encoder's model.keras (mmkeras train or import)")
    parser.add_argument("--images", required=True, help="folder of images (searched recursively), or one image file")
    parser.add_argument("--labels", required=True, help='comma-separated labels, e.g. "a dog,a cat,a car"')
    parser.add_argument("--templates", default="{}",
                        help='comma-separated prompt templates with {} for the label, e.g. "a photo of {}.,a '
                        'drawing of {}." (default: the label alone); a label\'s prompts are averaged')
    parser.add_argument("--top-k", type=int, default=1, help="labels printed per image (default 1)")
    parser.add_argument("--batch-size", type=int, default=64)


def _split(text, flag):
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise ValueError(f"{flag} is empty: give comma-separated values.")
    return items


def run(args):
    import os

    import keras
    import numpy as np
    import tensorflow as tf

    from mmkeras.commands.index import image_files
    from mmkeras.models.dual_encoder import DualEncoder
    from mmkeras.models.zero_shot import zero_shot_predict
    from mmkeras.tasks.run_directory import RunDirectory

    labels, templates = _split(args.labels, "--labels"), _split(args.templates, "--templates")
    if len(set(labels)) != len(labels):
        raise ValueError(f"--labels repeats a label: {args.labels!r}.")
    if not 1 <= args.top_k <= len(labels):
        raise ValueError(f"--top-k must be in [1, {len(labels)}] (the number of labels), got {args.top_k}.")
    run_dir = RunDirectory(args.run_dir, create=False)
    if not tf.io.gfile.exists(run_dir.model):
        raise ValueError(f"{run_dir.model} does not exist: is {args.run_dir!r} a run or import directory?")
    model = keras.saving.load_model(run_dir.model)
    if not isinstance(model, DualEncoder):
        raise ValueError(f"{run_dir.model} holds a {type(model).__name__}, not a dual encoder (CLIP or SigLIP).")
    if tf.io.gfile.isdir(args.images):
        paths, skipped = image_files(args.images)
    elif tf.io.gfile.exists(args.images):
        paths, skipped = [args.images], []
    else:
        raise ValueError(f"--images {args.images!r} does not exist.")
    converter, kept, pixels = model.preprocessor.image_converter, [], []
    for start in range(0, len(paths), args.batch_size):
        chunk = paths[start:start + args.batch_size]
        data = [tf.io.gfile.GFile(path, "rb").read() for path in chunk]
        images, ok = converter.try_decode(tf.constant(data))
        for path, image, good in zip(chunk, images.numpy(), ok.numpy()):
            if good:
                kept.append(path)
                pixels.append(image)
            else:
                skipped.append((path, "not a decodable image (or over the pixel limit)"))
    if not kept:
        raise ValueError(f"--images {args.images!r}: no decodable image ({len(skipped)} skipped).")
    probabilities = zero_shot_predict(model, np.stack(pixels), labels, templates, args.batch_size)
    root = args.images if tf.io.gfile.isdir(args.images) else os.path.dirname(args.images)
    for path, row in zip(kept, probabilities):
        best = np.argsort(-row, kind="stable")[: args.top_k]
        print(os.path.relpath(path, root) + "\t" + "\t".join(f"{labels[i]} {row[i]:.3f}" for i in best))
    kind = "sigmoid per label" if model.loss_name == "siglip" else "softmax over the labels"
    print(f"{len(kept)} images, {len(labels)} labels ({kind}); {len(skipped)} skipped"
          + "".join(f"\n  skipped {path}: {reason}" for path, reason in skipped[:10]))
    return 0
