"""Input pipeline vs. train step: can the TFRecord pipeline feed the bench-small dual encoder?

Writes Shapes images as 128 px JPEGs into TFRecord shards (`mmkeras.data.write_shards`), then,
in one process:

1. the input pipeline: `ShardReader.dataset(...)`: interleaved shard reading, JPEG
   decode + resize (`ImagePreprocessor`, with bad-image checks), `RandomResizedCrop` augmentation
   and `SubwordTokenizer` tokenization (context 32), batched, in examples/s;
2. the bench-small dual-encoder train step (model code imported from
   `dual_encoder_train_step.py`; fp32, XLA) on fixed tensors, in examples/s;

and prints both and their ratio (the bar: pipeline >= 2x the train step). Each figure is the
best of `--rounds` timed windows of `--seconds`, alternating the two, so load on a shared
machine hits both alike.

    python benchmarks/input_pipeline.py                      # defaults
    python benchmarks/input_pipeline.py --seconds 3 --rounds 1 --num-images 256   # quick check
"""

import argparse
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

IMAGE_SIZE = 128
CONTEXT = 32
VOCABULARY = 8192


def _examples_per_second(next_batch, batch, seconds):
    """Runs `next_batch()` for about `seconds`; returns examples/s."""
    start, count = time.perf_counter(), 0
    while True:
        next_batch()
        count += batch
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return count / elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-images", type=int, default=1024, help="Shapes images written to shards")
    parser.add_argument("--num-shards", type=int, default=8)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each timed window")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--errors", choices=("catch", "check"), default="catch",
                        help="read-time bad-image handling of the pipeline (see ShardReader)")
    parser.add_argument("--skip-train-step", action="store_true")
    args = parser.parse_args()

    import numpy as np
    import tensorflow as tf

    from mmkeras.data import ShapesSource, ShardReader, write_shards
    from mmkeras.preprocessing import RandomResizedCrop, SubwordTokenizer

    work = tempfile.mkdtemp(prefix="mmkeras-input-pipeline-")
    start = time.perf_counter()
    source = ShapesSource("train", image_size=IMAGE_SIZE, num_examples=args.num_images, quality=90)
    records = list(source)
    write_shards(records, work, num_shards=args.num_shards)
    tokenizer = SubwordTokenizer.train(
        [t for r in records for t in r["texts"]], VOCABULARY, sequence_length=CONTEXT
    )
    print(f"wrote {len(records)} {IMAGE_SIZE} px JPEGs in {args.num_shards} shards "
          f"({time.perf_counter() - start:.1f} s); vocabulary {tokenizer.vocabulary_size()}", flush=True)

    reader = ShardReader(work)
    pipeline = reader.dataset(
        tokenizer, image_size=IMAGE_SIZE, batch_size=args.batch, drop_remainder=True,
        augment=RandomResizedCrop(IMAGE_SIZE, seed=0), shuffle=True, shuffle_buffer=256, repeat=True,
        errors=args.errors, seed=0,
    )
    batches = iter(pipeline)
    for _ in range(3):  # warm up (tracing, buffers)
        next(batches)

    step_fn = None
    if not args.skip_train_step:
        from dual_encoder_train_step import build_step

        rng = np.random.default_rng(0)
        images = tf.constant(rng.random((args.batch, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.float32))
        ids = tf.constant(rng.integers(1, VOCABULARY, (args.batch, CONTEXT)), dtype=tf.int32)
        step = build_step("mmkeras", True, images, ids)
        for _ in range(2):  # compile
            step(images, ids).numpy()

        def step_fn():
            step(images, ids).numpy()

    best_pipeline, best_step = 0.0, 0.0
    for _ in range(args.rounds):
        best_pipeline = max(best_pipeline, _examples_per_second(lambda: next(batches), args.batch, args.seconds))
        if step_fn is not None:
            best_step = max(best_step, _examples_per_second(step_fn, args.batch, args.seconds))
    print(f"input pipeline (decode+resize+RandomResizedCrop+tokenize, errors={args.errors}): "
          f"{best_pipeline:.1f} examples/s")
    print(f"bad images skipped at read time: {reader.num_bad_images}")
    if step_fn is not None:
        ratio = best_pipeline / best_step
        print(f"dual-encoder train step (bench-small, fp32, XLA): {best_step:.1f} examples/s")
        print(f"ratio pipeline / train step: {ratio:.2f}x ({'meets' if ratio >= 2 else 'misses'} the 2x bar)")


if __name__ == "__main__":
    main()
