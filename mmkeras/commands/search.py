"""`mmkeras search INDEX "a red circle"`: the images of an index that best match a text.

The index is checked against the manifest `mmkeras index` wrote before it is
used: the paths and `embeddings.npy` must have the recorded sha256, and the
export must have the recorded fingerprint before it is loaded.
"""

import hashlib
import io
import json

from mmkeras.commands.index import export_fingerprint, paths_sha256
from mmkeras.commands.serving import load_export

NAME = "search"
HELP = "print the top-k images of an index (see `mmkeras index`) for a text query"
REBUILD = "rebuild the index with `mmkeras index`"


def add_arguments(parser):
    parser.add_argument("index", help="an index directory written by `mmkeras index`")
    parser.add_argument(
        "query",
        nargs="+",
        help='a text query; quote a query of several words ("a dog running"). Each argument is one '
        'query ("a red circle" "two squares" runs two), but several arguments that are all one word '
        "are refused as the unquoted words of one query: search one-word queries one at a time",
    )
    parser.add_argument("--top-k", type=int, default=5)


def _queries(words):
    if any(not query.strip() for query in words):
        raise ValueError("a query is empty.")
    if len(words) > 1 and all(len(query.split()) == 1 for query in words):
        raise ValueError(
            f"got {len(words)} one-word queries {words}: quote a query of several words "
            f'("{" ".join(words)}"); search one-word queries one at a time.'
        )
    return list(words)


def _read_index(folder):
    """`(info, embeddings)` of the index in `folder`, checked against its manifest."""
    import numpy as np
    import tensorflow as tf

    index_json = f"{folder}/index.json"
    if not tf.io.gfile.exists(index_json):
        raise ValueError(f"{folder!r} is not an index directory (no index.json); build one with `mmkeras index`.")
    with tf.io.gfile.GFile(index_json) as f:
        try:
            info = json.load(f)
        except json.JSONDecodeError as error:
            raise ValueError(f"{index_json} is not valid JSON ({error}); {REBUILD}.") from None
    manifest = info.get("manifest") if isinstance(info, dict) else None
    if not isinstance(manifest, dict):
        raise ValueError(f"{index_json} has no manifest (written by an older mmkeras?); {REBUILD}.")
    paths = info.get("paths")
    if (not isinstance(paths, list) or not all(isinstance(p, str) for p in paths)
            or len(paths) != manifest.get("count") or paths_sha256(paths) != manifest.get("paths_sha256")):
        raise ValueError(f"{index_json}: `paths` does not match its manifest (edited?); {REBUILD}.")
    embeddings_npy = f"{folder}/embeddings.npy"
    if not tf.io.gfile.exists(embeddings_npy):
        raise ValueError(f"{embeddings_npy} is missing; {REBUILD}.")
    with tf.io.gfile.GFile(embeddings_npy, "rb") as f:
        data = f.read()
    if hashlib.sha256(data).hexdigest() != manifest.get("embeddings_sha256"):
        raise ValueError(f"{embeddings_npy} does not match the manifest in index.json (sha256 differs); {REBUILD}.")
    embeddings = np.load(io.BytesIO(data))
    if embeddings.shape != (len(paths), manifest.get("dim")):
        raise ValueError(f"{embeddings_npy} has shape {embeddings.shape}, not the manifest's; {REBUILD}.")
    return info, embeddings


def run(args):
    import numpy as np
    import tensorflow as tf

    if args.top_k < 1:
        raise ValueError(f"--top-k must be >= 1, got {args.top_k}.")
    queries = _queries(args.query)
    info, embeddings = _read_index(args.index)
    export_dir = info.get("export_dir")
    if not isinstance(export_dir, str) or export_fingerprint(export_dir) != info["manifest"].get("export_fingerprint"):
        raise ValueError(
            f"{args.index}/index.json: `export_dir` {export_dir!r} is not the export the index was built with "
            f"(its fingerprint differs); point it at that export, or {REBUILD}."
        )
    embed_text = load_export(export_dir, "embed_text")
    vectors = embed_text(text=tf.constant(queries))["embeddings"].numpy()
    scores = vectors @ embeddings.T  # both L2-normalised: cosine similarity
    k = min(args.top_k, len(info["paths"]))
    for query, row in zip(queries, scores):
        print(query)
        for index in np.argsort(-row, kind="stable")[:k]:
            print(f"  {row[index]:.4f}\t{info['paths'][index]}")
    return 0
