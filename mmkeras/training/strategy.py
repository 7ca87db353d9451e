"""`tf.distribute` strategy factory and global-batch handling."""

import json
import os

import tensorflow as tf

STRATEGIES = ("auto", "cpu", "gpu", "mirrored", "multi_worker", "tpu")

# Collective strategies made by `get_strategy`, reused for the same devices / cluster:
# every new MirroredStrategy restarts TensorFlow's collective group and instance keys
# at 1, so a second one in the same process reuses the keys of the first and its
# all-reduces / all-gathers fail with "Shape mismatch in the collective instance".
_COLLECTIVE_STRATEGIES = {}


def get_strategy(name="auto", tpu=None):
    """Returns a `tf.distribute.Strategy` by name.

    - "auto": a TPU if `TPUClusterResolver` finds one, else all GPUs
      (`MirroredStrategy` if more than one), else the CPU;
    - "cpu" / "gpu": one device;
    - "mirrored": all local GPUs (or the logical CPUs if there are no GPUs);
    - "multi_worker": `MultiWorkerMirroredStrategy`, cluster from `TF_CONFIG`;

    "mirrored" and "multi_worker" return the same strategy object when asked
    again for the same devices / cluster in a process (TensorFlow's collective
    keys of two such strategies would collide).
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
        devices = tuple(d.name for d in (gpus or tf.config.list_logical_devices("CPU")))
        key = ("mirrored", devices)
        if key not in _COLLECTIVE_STRATEGIES:
            _COLLECTIVE_STRATEGIES[key] = tf.distribute.MirroredStrategy(list(devices))
        return _COLLECTIVE_STRATEGIES[key]
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError("Strategy 'multi_worker' needs the TF_CONFIG environment variable.")
        json.loads(os.environ["TF_CONFIG"])  # a clear JSON error before TF's own
        key = ("multi_worker", os.environ["TF_CONFIG"])
        if key not in _COLLECTIVE_STRATEGIES:
            _COLLECTIVE_STRATEGIES[key] = tf.distribute.MultiWorkerMirroredStrategy()
        return _COLLECTIVE_STRATEGIES[key]
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


def is_chief(strategy):
    """Whether this process is the chief of `strategy`'s cluster (True outside a cluster).

    The chief is the task of type "chief", or worker 0 when the cluster has no
    "chief" task (the `MultiWorkerMirroredStrategy` convention). Under a
    multi-worker strategy every worker must run the same saves (a checkpoint
    reads variables through collectives), but only the chief's files are kept:
    the others write to a scratch directory.

    Args:
        strategy: a `tf.distribute.Strategy`.

    Example:

    >>> is_chief(get_strategy("cpu"))
    True
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    task_type = getattr(resolver, "task_type", None)
    if resolver is None or not task_type:
        return True
    if task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type == "worker" and not has_chief and int(resolver.task_id or 0) == 0

