"""`mmkeras index EXPORT_DIR --images DIR --out INDEX`: embed a folder of images for search."""

import json

from mmkeras.commands.serving import error_reason, load_export

NAME = "index"
HELP = "embed a folder of images with an exported dual encoder into an on-disk index"
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp")


def add_arguments(parser):
    parser.add_argument("export_dir", help="a dual-encoder export (RUN_DIR/export)")
    parser.add_argument("--images", required=True, help="folder of images (searched recursively)")
    parser.add_argument("--out", required=True, help="index directory to write")
    parser.add_argument("--batch-size", type=int, default=64)


def image_files(folder):
    """Every image file below `folder` (by extension), sorted, through `tf.io.gfile`."""
    import tensorflow as tf

    if not tf.io.gfile.isdir(folder):
        raise ValueError(f"--images {folder!r} is not a folder.")
    paths = []
    for root, _, files in tf.io.gfile.walk(folder):
        paths += [f"{root.rstrip('/')}/{name}" for name in files if name.lower().endswith(IMAGE_EXTENSIONS)]
    if not paths:
        raise ValueError(f"--images {folder!r} holds no image files ({', '.join(IMAGE_EXTENSIONS)}).")
    return sorted(paths)


def run(args):
    import keras
    import numpy as np
    import tensorflow as tf

    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}.")
    embed_image = load_export(args.export_dir, "embed_image")
    paths = image_files(args.images)
    kept, embeddings, skipped = [], [], []
    progress = keras.utils.Progbar(len(paths), unit_name="image")
    for start in range(0, len(paths), args.batch_size):
        batch = paths[start : start + args.batch_size]
        data = [tf.io.gfile.GFile(p, "rb").read() for p in batch]
        try:
            vectors = embed_image(image_bytes=tf.constant(data))["embeddings"].numpy()
            kept += batch
            embeddings.append(vectors)
        except tf.errors.InvalidArgumentError:
            # One bad file fails its batch: embed that batch one image at a time.
            for path, item in zip(batch, data):
                try:
                    embeddings.append(embed_image(image_bytes=tf.constant([item]))["embeddings"].numpy())
                    kept.append(path)
                except tf.errors.InvalidArgumentError as error:
                    skipped.append((path, error_reason(error)))
        progress.add(len(batch))
    if not kept:
        raise ValueError(f"none of the {len(paths)} files in {args.images!r} could be read as an image.")
    matrix = np.concatenate(embeddings).astype("float32")
    tf.io.gfile.makedirs(args.out)
    with tf.io.gfile.GFile(f"{args.out}/embeddings.npy", "wb") as f:
        np.save(f, matrix)
    info = {"export_dir": args.export_dir, "paths": kept, "dim": int(matrix.shape[1]),
            "skipped": [{"path": p, "reason": r} for p, r in skipped]}
    with tf.io.gfile.GFile(f"{args.out}/index.json", "w") as f:
        json.dump(info, f, indent=1)
    print(f"Indexed {len(kept)} images into {args.out}", end="")
    print(f"; skipped {len(skipped)} unreadable files:" if skipped else ".")
    for path, reason in skipped:
        print(f"  {path}: {reason}")
    return 0
