"""`tf.distribute` strategy factory and global-batch handling."""

import json
import os

import tensorflow as tf

STRATEGIES = ("auto", "cpu", "gpu", "mirrored", "multi_worker", "tpu")


def get_strategy(name="auto", tpu=None):
    """Returns a `tf.distribute.Strategy` by name.

    - "auto": a TPU if `TPUClusterResolver` finds one, else all GPUs
      (`MirroredStrategy` if more than one), else the CPU;
    - "cpu" / "gpu": one device;
    - "mirrored": all local GPUs (or the logical CPUs if there are no GPUs);
    - "multi_worker": `MultiWorkerMirroredStrategy`, cluster from `TF_CONFIG`;
    - "tpu": `TPUStrategy` on `tpu` (a name, `grpc://` address, or "local" on a
      TPU VM).

    Args:
        name: one of `STRATEGIES`.
        tpu: TPU name or address for "tpu" (and tried by "auto").

    Example:

    >>> get_strategy("cpu").num_replicas_in_sync
    1
    """
    if name not in STRATEGIES:
        raise ValueError(f"Unknown strategy {name!r}; valid strategies: {', '.join(STRATEGIES)}.")
    if name == "auto":
        strategy = _try_tpu(tpu)
        if strategy is not None:
            return strategy
        gpus = tf.config.list_logical_devices("GPU")
        if len(gpus) > 1:
            return tf.distribute.MirroredStrategy()
        return tf.distribute.OneDeviceStrategy("/gpu:0" if gpus else "/cpu:0")
    if name == "cpu":
        return tf.distribute.OneDeviceStrategy("/cpu:0")
    if name == "gpu":
        if not tf.config.list_logical_devices("GPU"):
            raise ValueError("Strategy 'gpu' was asked for, but TensorFlow sees no GPU.")
        return tf.distribute.OneDeviceStrategy("/gpu:0")
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        return tf.distribute.MirroredStrategy(devices)
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError("Strategy 'multi_worker' needs the TF_CONFIG environment variable.")
        json.loads(os.environ["TF_CONFIG"])  # a clear JSON error before TF's own
        return tf.distribute.MultiWorkerMirroredStrategy()
    strategy = _try_tpu(tpu or "local", required=True)
    return strategy


def _try_tpu(tpu, required=False):
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    except (ValueError, tf.errors.OpError, RuntimeError) as error:
        if required:
            raise ValueError(f"Could not connect to the TPU {tpu!r}: {error}") from error
        return None


def per_replica_batch_size(global_batch_size, strategy):
    """Splits a global batch over the replicas; raises if it does not divide.

    Example:

    >>> per_replica_batch_size(64, get_strategy("cpu"))
    64
    """
    replicas = strategy.num_replicas_in_sync
    if global_batch_size < 1 or global_batch_size % replicas:
        raise ValueError(
            f"`train.global_batch_size`={global_batch_size} must be a positive multiple of the "
            f"number of replicas ({replicas})."
        )
    return global_batch_size // replicas
