"""Gathering a batch across the replicas of a `tf.distribute` strategy.

Contrastive losses get better with more negatives. Under `MirroredStrategy`,
`MultiWorkerMirroredStrategy` or `TPUStrategy` each replica only sees its local
slice of the global batch, so the losses here contrast each replica's LOCAL rows
against the embeddings gathered from ALL replicas (the "gather with gradient +
local loss" scheme of large-scale CLIP training).

Gradients. `tf.distribute.ReplicaContext.all_gather` (and the TPU variant, which
is built on a cross-replica sum) defines its gradient as: SUM-all-reduce the
upstream gradient of the gathered tensor over the replicas, then keep this
replica's rows. That is exactly what is needed: the rows of replica `r` are used
as negatives by every other replica, and those replicas' gradients flow back to
`r`. `tests/losses/test_cross_replica.py` checks it numerically under a
two-replica `MirroredStrategy` against the single-device global-batch result.

Scaling. Keras 3 (TF backend) runs `train_step` inside `strategy.run` and
SUM-all-reduces the per-replica gradients. It divides by `num_replicas_in_sync`
only the losses it reduces itself (`keras.losses.Loss` returning per-sample
values, `add_loss`); a scalar returned by a loss or by `Model.compute_loss` is
used as is. The contrastive losses therefore return each replica's SHARE of the
global loss (`sum of local terms / global batch size`): the shares add up to the
global-batch loss, so the summed gradients equal the single-device gradients.
Keras's `loss` metric multiplies the share by the number of replicas, which gives
the global loss when the replicas hold equal batches.

Outside a replica context with more than one replica (no strategy, the default
strategy, `OneDeviceStrategy`, or code running in the cross-replica context)
nothing is gathered and the losses are the plain single-device losses.
"""

import tensorflow as tf
from keras import ops


def replica_info():
    """Returns `(num_replicas, replica_id)` of the current replica context.

    `(1, 0)` when there is no replica context (the cross-replica context of a
    strategy) or the strategy has a single replica. `replica_id` may be a scalar
    int32 tensor (it is one under `TPUStrategy`).

    Example:

    >>> replica_info()
    (1, 0)
    """
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync <= 1:
        return 1, 0
    return context.num_replicas_in_sync, context.replica_id_in_sync_group


def all_gather_with_grad(tensor, axis=0):
    """Concatenates `tensor` from every replica along `axis`, with gradients.

    In a replica context with several replicas it returns the concatenation, in
    replica order, of every replica's `tensor` (replicas may hold different
    sizes along `axis`). Its gradient SUM-all-reduces the upstream gradient and
    keeps this replica's slice, so a row contributes gradient from every
    replica that used it. With one replica (or no strategy) it returns `tensor`.

    Args:
        tensor: a dense tensor of rank >= 1.
        axis: int, the axis to concatenate along.

    Returns:
        The gathered tensor.

    Example:

    >>> import numpy as np
    >>> all_gather_with_grad(np.ones((2, 3), "float32")).shape
    TensorShape([2, 3])
    """
    tensor = tf.convert_to_tensor(tensor)
    if tensor.shape.rank == 0:
        raise ValueError("`tensor` must have rank >= 1 to be gathered, got a scalar.")
    num_replicas, _ = replica_info()
    if num_replicas == 1:
        return tensor
    return tf.distribute.get_replica_context().all_gather(tensor, axis=axis)


def gather_global_batch(tensors, gather=True):
    """Gathers batch-first tensors from all replicas and locates the local rows.

    Args:
        tensors: a list of tensors `[b, ...]` sharing the local batch size `b`.
        gather: bool. If `False`, nothing is gathered (each replica only sees
            its local rows) but the global batch size is still computed, so a
            loss divided by it keeps the same scale.

    Returns:
        A tuple `(gathered, row_offset, global_batch_size)`: `gathered` is the
        list of gathered tensors `[B, ...]` (the inputs when not gathering),
        `row_offset` an int32 scalar, the index of this replica's first row in
        the gathered tensors (0 when not gathering), and `global_batch_size`
        the int32 total batch size `B` over all replicas.

    Example:

    >>> import numpy as np
    >>> (x,), offset, size = gather_global_batch([np.ones((4, 2), "float32")])
    >>> int(offset), int(size), tuple(x.shape)
    (0, 4, (4, 2))
    """
    tensors = [tf.convert_to_tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("`tensors` must hold at least one tensor, got an empty list.")
    local_size = tf.shape(tensors[0], out_type=tf.int32)[0]
    num_replicas, replica_id = replica_info()
    if num_replicas == 1:
        return tensors, tf.constant(0, tf.int32), local_size
    context = tf.distribute.get_replica_context()
    # Per-replica batch sizes: the last batch of an epoch may be uneven.
    sizes = context.all_gather(tf.reshape(local_size, [1]), axis=0)
    global_size = ops.sum(sizes)
    if not gather:
        return tensors, tf.constant(0, tf.int32), global_size
    before = tf.range(num_replicas, dtype=tf.int32) < tf.cast(replica_id, tf.int32)
    row_offset = ops.sum(ops.where(before, sizes, ops.zeros_like(sizes)))
    gathered = [all_gather_with_grad(t, axis=0) for t in tensors]
    return gathered, row_offset, global_size
