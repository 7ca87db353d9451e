"""Worker entry point of `test_multi_worker.py` (a script, not a test module).

`python multi_worker_train.py ROLE RUN_DIR RESULTS_DIR` trains the tiny Shapes CLIP
dual encoder of `CONFIG` with `mmkeras.tasks` (the code path of `mmkeras train`):

- ROLE "worker": under `MultiWorkerMirroredStrategy`, the cluster taken from
  `TF_CONFIG` (set by the test, one process per worker);
- ROLE "single": on one device, the same global batch, for comparison.

It then trains again in a fresh `Task` on the same run directory (everything
is already done: this only restores the newest checkpoint, on every worker
from the chief's files) and writes `RESULTS_DIR/{name}.json` (history, the
variables outside the strategy scope, files seen) and `RESULTS_DIR/{name}.npz`
(final and restored weights).
"""

import json
import os
import sys

import numpy as np

CONFIG = {
    "data.num_train": 24,  # 3 steps of 8
    "data.num_val": 2,
    "data.num_test": 2,
    "data.image_size": 32,
    "train.tower_pretraining_steps": 0,  # 32 px: a 2x2 token grid, not the 3x3 Shapes cells
    "data.vocabulary_size": 60,
    "data.sequence_length": 8,
    "image_encoder.patch_size": 16,
    "image_encoder.hidden_dim": 32,
    "image_encoder.num_layers": 1,
    "image_encoder.num_heads": 2,
    "image_encoder.mlp_dim": 64,
    "text_encoder.hidden_dim": 32,
    "text_encoder.num_layers": 1,
    "text_encoder.num_heads": 2,
    "text_encoder.mlp_dim": 64,
    "model.embed_dim": 16,
    "train.epochs": 1,
    "train.global_batch_size": 8,
    "train.learning_rate": 0.1,
    "train.warmup_fraction": 0.0,
    "train.jit_compile": False,
    # More than one, as the presets set: the workers still run one step per call (Keras' multi-step
    # loop cannot run under MultiWorkerMirroredStrategy), so they checkpoint after each of the 3 steps.
    "train.steps_per_execution": 3,
    "train.checkpoint_every": 1,
    "train.keep_checkpoints": 2,
}


def _outside_scope(model):
    import tensorflow as tf

    variables = list(model.variables) + list(model.optimizer.variables)
    for metric in model.metrics:
        variables += list(metric.variables)
    outside = [
        v.path for v in variables
        if not isinstance(getattr(v, "value", v), tf.distribute.DistributedValues)
    ]
    return len(variables), outside


def main(role, run_dir, results_dir):
    from mmkeras import zoo
    from mmkeras.tasks import task_for_config

    import keras

    import mmkeras.tasks.task

    # Plain SGD instead of AdamW: Adam divides each gradient by its own running
    # magnitude, so a parameter whose gradient is ~1e-9 moves by a full `lr` in
    # a direction set by float round-off, which differs between one all-reduce
    # order and another. SGD keeps round-off at round-off size, so the check
    # below compares the distributed arithmetic itself.
    mmkeras.tasks.task.default_optimizer = lambda total_steps, learning_rate, **_: keras.optimizers.SGD(
        learning_rate
    )
    strategy = "multi_worker" if role == "worker" else "cpu"
    config = zoo.config("shapes-clip-tiny", **CONFIG, **{"train.strategy": strategy})
    task = task_for_config(config, run_dir)
    model = task.train(verbose=0)
    num_variables, outside = _outside_scope(model)
    scratch = task.run_dir.path
    history = task.run_dir.read_json("history.json")

    # Again, with everything done: a fresh Task restores the newest checkpoint.
    again = task_for_config(config, run_dir)
    restored = again.train(verbose=0)

    name = f"worker{task.strategy.cluster_resolver.task_id}" if role == "worker" else "single"
    np.savez(
        os.path.join(results_dir, f"{name}.npz"),
        **{f"final_{i}": w for i, w in enumerate(model.get_weights())},
        **{f"restored_{i}": w for i, w in enumerate(restored.get_weights())},
    )
    results = {
        "is_chief": task.is_chief,
        "replicas": task.strategy.num_replicas_in_sync,
        "strategy": type(task.strategy).__name__,
        "steps_per_execution": model.steps_per_execution,
        "history": history,
        "num_variables": num_variables,
        "outside_scope": outside,
        "writes_to_run_dir": os.path.abspath(scratch) == os.path.abspath(run_dir),
        "scratch_checkpoints_left": os.path.isdir(os.path.join(scratch, "checkpoints"))
        and bool(os.listdir(os.path.join(scratch, "checkpoints"))),
    }
    with open(os.path.join(results_dir, f"{name}.json"), "w") as f:
        json.dump(results, f)


if __name__ == "__main__":
    main(*sys.argv[1:4])
