"""`mmkeras index EXPORT_DIR --images DIR --out INDEX`: embed a folder of images for search.

The index folder holds `embeddings.npy` and `index.json`: the export, the image
paths, the files skipped with their reasons, and a manifest `mmkeras search`
checks before using the index (counts, the sha256 of the embeddings and of the
paths, and the export's fingerprint).
"""

import collections
import hashlib
import json
import os

from mmkeras.commands.serving import error_reason, load_export

NAME = "index"
HELP = "embed a folder of images with an exported dual encoder into an on-disk index"
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp")


def add_arguments(parser):
    parser.add_argument("export_dir", help="a dual-encoder export (RUN_DIR/export)")
    parser.add_argument("--images", required=True,
                        help="folder of images (searched recursively; each folder once, however many links lead to it)")
    parser.add_argument("--out", required=True, help="index directory to write")
    parser.add_argument("--batch-size", type=int, default=64)


def image_files(folder):
    """The image files below `folder` (by extension) and the entries left out, through `tf.io.gfile`.

    Each folder is listed once however many links lead to it, so link loops
    end (a folder reached again is left out as "link to a folder already
    indexed"), and a link to nothing is left out as "dangling link".

    Args:
        folder: the folder to search recursively (local, or any `tf.io.gfile` URL).

    Returns:
        `(paths, skipped)`: the sorted image paths and a list of `(path, reason)`.

    Example:

    >>> import os, tempfile
    >>> root = tempfile.mkdtemp()
    >>> open(f"{root}/a.png", "wb").close()
    >>> os.symlink(root, f"{root}/loop"); os.symlink(f"{root}/gone.jpg", f"{root}/b.jpg")
    >>> paths, skipped = image_files(root)
    >>> [os.path.basename(p) for p in paths], [(os.path.basename(p), r) for p, r in skipped]
    (['a.png'], [('b.jpg', 'dangling link'), ('loop', 'link to a folder already indexed')])
    """
    import tensorflow as tf

    if not tf.io.gfile.isdir(folder):
        raise ValueError(f"--images {folder!r} is not a folder.")
    local = "://" not in folder
    paths, skipped, seen = [], [], set()
    # Folders reached through a link wait until the others are listed, so a
    # folder is indexed under its own path rather than a link's.
    folders, linked = collections.deque([folder.rstrip("/") or "/"]), collections.deque()
    while folders or linked:
        directory = folders.popleft() if folders else linked.popleft()
        real = os.path.realpath(directory) if local else directory
        if real in seen:
            skipped.append((directory, "link to a folder already indexed"))
            continue
        seen.add(real)
        try:
            names = sorted(tf.io.gfile.listdir(directory))
        except tf.errors.OpError as error:
            skipped.append((directory, f"folder cannot be listed ({error.message.splitlines()[0]})"))
            continue
        for name in names:
            path = f"{directory.rstrip('/')}/{name.rstrip('/')}"
            if tf.io.gfile.isdir(path):
                (linked if local and os.path.islink(path) else folders).append(path)
            elif local and os.path.islink(path) and not os.path.exists(path):
                skipped.append((path, "dangling link"))
            elif name.lower().endswith(IMAGE_EXTENSIONS):
                paths.append(path)
    if not paths:
        raise ValueError(f"--images {folder!r} holds no image files ({', '.join(IMAGE_EXTENSIONS)}).")
    return sorted(paths), sorted(skipped)


def export_fingerprint(export_dir):
    """A sha256 of a SavedModel's graph, variables index (it holds their checksums) and assets.

    Args:
        export_dir: a SavedModel directory.

    Example:

    >>> import tempfile, tensorflow as tf
    >>> path = tempfile.mkdtemp()
    >>> tf.saved_model.save(tf.Module(), path)
    >>> len(export_fingerprint(path))
    64
    """
    import tensorflow as tf

    if not tf.io.gfile.exists(f"{export_dir}/saved_model.pb"):
        raise ValueError(f"{export_dir!r} is not a SavedModel directory (no saved_model.pb).")
    names = ["saved_model.pb", "variables/variables.index"]
    if tf.io.gfile.isdir(f"{export_dir}/assets"):
        names += sorted(
            os.path.relpath(f"{root}/{name}", export_dir)
            for root, _, files in tf.io.gfile.walk(f"{export_dir}/assets")
            for name in files
        )
    digest = hashlib.sha256()
    for name in names:
        if tf.io.gfile.exists(f"{export_dir}/{name}"):
            with tf.io.gfile.GFile(f"{export_dir}/{name}", "rb") as f:
                digest.update(name.encode() + b"\0" + hashlib.sha256(f.read()).digest())
    return digest.hexdigest()


def paths_sha256(paths):
    """The sha256 of a list of paths, as the manifest records it.

    Args:
        paths: the image paths of an index, in order.

    Example:

    >>> paths_sha256(["a.png"]) == paths_sha256(["a.png"]) != paths_sha256(["b.png"])
    True
    """
    return hashlib.sha256(json.dumps(list(paths)).encode()).hexdigest()


def _read(path):
    """The bytes of `path`, or `(None, reason)` when it cannot be read or is empty."""
    import tensorflow as tf

    try:
        with tf.io.gfile.GFile(path, "rb") as f:
            data = f.read()
    except tf.errors.OpError as error:
        return None, f"cannot be read ({error.message.splitlines()[0]})"
    return (data, None) if data else (None, "empty file")


def run(args):
    import keras
    import numpy as np
    import tensorflow as tf

    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}.")
    fingerprint = export_fingerprint(args.export_dir)
    embed_image = load_export(args.export_dir, "embed_image")
    paths, skipped = image_files(args.images)
    kept, embeddings = [], []
    progress = keras.utils.Progbar(len(paths), unit_name="image")
    for start in range(0, len(paths), args.batch_size):
        batch, data = [], []
        for path in paths[start : start + args.batch_size]:
            content, reason = _read(path)
            if reason:
                skipped.append((path, reason))
            else:
                batch.append(path)
                data.append(content)
        try:
            if batch:
                embeddings.append(embed_image(image_bytes=tf.constant(data))["embeddings"].numpy())
                kept += batch
        except tf.errors.InvalidArgumentError:
            # One bad file fails its batch: embed that batch one image at a time.
            for path, item in zip(batch, data):
                try:
                    embeddings.append(embed_image(image_bytes=tf.constant([item]))["embeddings"].numpy())
                    kept.append(path)
                except tf.errors.InvalidArgumentError as error:
                    skipped.append((path, error_reason(error)))
        progress.add(min(args.batch_size, len(paths) - start))
    if not kept:
        raise ValueError(f"none of the {len(paths)} files in {args.images!r} could be read as an image.")
    matrix = np.concatenate(embeddings).astype("float32")
    tf.io.gfile.makedirs(args.out)
    with tf.io.gfile.GFile(f"{args.out}/embeddings.npy", "wb") as f:
        np.save(f, matrix)
    with tf.io.gfile.GFile(f"{args.out}/embeddings.npy", "rb") as f:
        embeddings_sha256 = hashlib.sha256(f.read()).hexdigest()
    manifest = {"count": len(kept), "dim": int(matrix.shape[1]), "embeddings_sha256": embeddings_sha256,
                "paths_sha256": paths_sha256(kept), "export_fingerprint": fingerprint}
    info = {"export_dir": args.export_dir, "paths": kept, "dim": int(matrix.shape[1]),
            "skipped": [{"path": p, "reason": r} for p, r in skipped], "manifest": manifest}
    with tf.io.gfile.GFile(f"{args.out}/index.json", "w") as f:
        json.dump(info, f, indent=1)
    print(f"Indexed {len(kept)} images into {args.out}", end="")
    print(f"; skipped {len(skipped)}:" if skipped else ".")
    for path, reason in skipped:
        print(f"  {path}: {reason}")
    return 0
