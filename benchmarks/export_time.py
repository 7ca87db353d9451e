"""Export time: `save_signatures` (ours, one trace per signature) vs `keras.export.ExportArchive`.

Both write the same fusion-classifier signature, `classify(image_bytes, text)`,
for the same (untrained) `shapes-fusion-early-tiny` model in one process,
after one untimed warm-up export, alternating which goes first, each in a
fresh directory; the loaded SavedModels give the same
probabilities. Prints the seconds of each and their ratio.

    python benchmarks/export_time.py            # the preset's model
    python benchmarks/export_time.py --quick    # the demo's --quick model (32-px, one layer)
"""

import statistics
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf
from early_fusion_task import NAME, early_fusion_task

import mmkeras.export.fusion_export as fusion_export


class _ExportArchiveWriter:
    """`save_signatures`' interface over `keras.export.ExportArchive`, Keras' own exporter."""

    @staticmethod
    def save(path, endpoints, *, models=(), layers=()):
        archive = keras.export.ExportArchive()
        for obj in (*models, *layers):
            archive.track(obj)
        for name, (fn, specs) in endpoints.items():
            archive.add_endpoint(name, fn, specs)
        archive.write_out(path, verbose=False)
        return path


def _export_seconds(task, model, writer):
    fusion_export.save_signatures = writer
    path = tempfile.mkdtemp(prefix="mmkeras-export-bench-")
    start = time.perf_counter()
    task.export(model, path)
    return time.perf_counter() - start, path


def main():
    args, task = early_fusion_task(__doc__.splitlines()[0])
    model = task.build_model()
    ours_writer = fusion_export.save_signatures
    png = tf.io.encode_png(np.random.default_rng(0).integers(0, 255, (40, 40, 3), np.uint8)).numpy()
    inputs = {"image_bytes": tf.constant([png, b""]), "text": tf.constant(["is there a red circle?", ""])}
    times = {"save_signatures": [], "ExportArchive": []}
    outputs = {}
    # One untimed export first: it traces the image decoder and tokenizer graphs that later exports
    # reuse; then the two writers alternate, each going first in turn.
    _export_seconds(task, model, ours_writer)
    writers = [("save_signatures", ours_writer), ("ExportArchive", _ExportArchiveWriter.save)]
    for repeat in range(args.repeats):
        for label, writer in writers if repeat % 2 == 0 else writers[::-1]:
            seconds, path = _export_seconds(task, model, writer)
            times[label].append(seconds)
            outputs[label] = tf.saved_model.load(path).signatures["classify"](**inputs)["answer_probs"].numpy()
    fusion_export.save_signatures = ours_writer
    np.testing.assert_allclose(outputs["save_signatures"], outputs["ExportArchive"], atol=1e-6)
    ours, theirs = statistics.median(times["save_signatures"]), statistics.median(times["ExportArchive"])
    print(f"model: {NAME}{' (--quick)' if args.quick else ''}, {args.repeats} exports each, median seconds")
    print(f"save_signatures  {ours:6.2f} s   {['%.2f' % t for t in times['save_signatures']]}")
    print(f"ExportArchive    {theirs:6.2f} s   {['%.2f' % t for t in times['ExportArchive']]}")
    print(f"ratio            {theirs / ours:6.2f}x faster; same outputs (max |diff| <= 1e-6)")


if __name__ == "__main__":
    main()
