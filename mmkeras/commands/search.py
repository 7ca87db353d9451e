"""`mmkeras search INDEX "a red circle"`: the images of an index that best match a text."""

import json

from mmkeras.commands.serving import load_export

NAME = "search"
HELP = "print the top-k images of an index (see `mmkeras index`) for a text query"


def add_arguments(parser):
    parser.add_argument("index", help="an index directory written by `mmkeras index`")
    parser.add_argument("query", nargs="+", help="one or more text queries")
    parser.add_argument("--top-k", type=int, default=5)


def run(args):
    import numpy as np
    import tensorflow as tf

    if args.top_k < 1:
        raise ValueError(f"--top-k must be >= 1, got {args.top_k}.")
    if not tf.io.gfile.exists(f"{args.index}/index.json"):
        raise ValueError(f"{args.index!r} is not an index directory (no index.json); build one with `mmkeras index`.")
    with tf.io.gfile.GFile(f"{args.index}/index.json") as f:
        info = json.load(f)
    with tf.io.gfile.GFile(f"{args.index}/embeddings.npy", "rb") as f:
        embeddings = np.load(f)
    embed_text = load_export(info["export_dir"], "embed_text")
    queries = embed_text(text=tf.constant(args.query))["embeddings"].numpy()
    scores = queries @ embeddings.T  # both L2-normalised: cosine similarity
    k = min(args.top_k, len(info["paths"]))
    for query, row in zip(args.query, scores):
        print(query)
        for index in np.argsort(-row, kind="stable")[:k]:
            print(f"  {row[index]:.4f}\t{info['paths'][index]}")
    return 0
