import keras
import tensorflow as tf
from keras import ops

from mmkeras.losses.contrastive_loss import ContrastiveLoss
from mmkeras.losses.contrastive_loss import _as_float32_scalar
from mmkeras.losses.cross_replica import gather_global_batch
from mmkeras.validation import check_int


def _pair_signs(row_ids, col_ids):
    """+1 where a local row meets its own text column, -1 elsewhere: `[rows, cols]`."""
    positive = ops.equal(ops.expand_dims(row_ids, 1), ops.expand_dims(col_ids, 0))
    return ops.where(positive, 1.0, -1.0)


def _chunked_sigmoid_nll(images, texts, scale, bias, row_ids, chunk_size):
    """`-sum log_sigmoid(z * (scale * images @ texts^T + bias))`, by column blocks.

    Loops (`tf.while_loop`) over blocks of `chunk_size` text rows (the last
    block zero-padded and masked), so only `[rows, chunk_size]` logits exist at
    a time. The gradient is written by hand and recomputes each block's logits
    in a second loop, so the backward pass is memory-bounded too (autodiff of
    the loop would keep every block's logits alive).
    """

    @tf.custom_gradient
    def nll(images, texts, scale, bias):
        # Static sizes where known keep every block's shape static (XLA, TPU).
        dim = texts.shape[1] if texts.shape[1] is not None else tf.shape(texts)[1]
        num_cols = texts.shape[0] if texts.shape[0] is not None else tf.shape(texts)[0]
        num_chunks = (num_cols + chunk_size - 1) // chunk_size
        padded = tf.pad(texts, [[0, num_chunks * chunk_size - num_cols], [0, 0]])

        def block(k):
            start = k * chunk_size
            texts_k = tf.slice(padded, [start, 0], [chunk_size, dim])
            col_ids = start + tf.range(chunk_size, dtype=tf.int32)
            raw = tf.matmul(images, texts_k, transpose_b=True)
            signs = _pair_signs(row_ids, col_ids)
            valid = tf.cast(col_ids < num_cols, images.dtype)[tf.newaxis, :]
            return texts_k, raw, signs, valid

        def forward_step(k, total):
            _, raw, signs, valid = block(k)
            terms = -tf.math.log_sigmoid(signs * (scale * raw + bias))
            return k + 1, total + tf.reduce_sum(terms * valid)

        _, total = tf.while_loop(
            lambda k, _: k < num_chunks, forward_step, (tf.constant(0), tf.zeros((), images.dtype))
        )

        def grad(upstream):
            def backward_step(k, d_images, d_texts, d_scale, d_bias):
                texts_k, raw, signs, valid = block(k)
                # d/dx of -log_sigmoid(s x) is -s * sigmoid(-s x).
                logits = scale * raw + bias
                d_logits = -signs * tf.sigmoid(-signs * logits) * valid * upstream
                d_images += scale * tf.matmul(d_logits, texts_k)
                d_texts = d_texts.write(k, scale * tf.matmul(d_logits, images, transpose_a=True))
                d_scale += tf.reduce_sum(d_logits * raw)
                d_bias += tf.reduce_sum(d_logits)
                return k + 1, d_images, d_texts, d_scale, d_bias

            zero = tf.zeros((), images.dtype)
            blocks = tf.TensorArray(
                images.dtype, size=num_chunks, element_shape=tf.TensorShape([chunk_size, texts.shape[1]])
            )
            _, d_images, blocks, d_scale, d_bias = tf.while_loop(
                lambda k, *_: k < num_chunks,
                backward_step,
                (tf.constant(0), tf.zeros_like(images), blocks, zero, zero),
            )
            d_texts = tf.reshape(blocks.stack(), [-1, dim])[:num_cols]
            return d_images, d_texts, d_scale, d_bias

        return total, grad

    return nll(images, texts, scale, bias)


@keras.saving.register_keras_serializable(package="mmkeras")
class SigLipLoss(ContrastiveLoss):
    """Pairwise sigmoid (SigLIP) loss with negatives from every replica.

    With `logits = logit_scale * image_embeddings @ text_embeddings^T +
    logit_bias` over the global batch of `B` pairs and labels `z = +1` on the
    diagonal (matching pairs), `-1` elsewhere:

        loss = -sum_{i, j} log_sigmoid(z_ij * logits_ij) / B

    Normalisation: the sum over all `B x B` pairs divided by the batch size `B`
    (not by `B^2`), as in the SigLIP paper and big_vision's trainer (summed over
    texts, averaged over images).

    The embeddings should be L2-normalised; they are cast to float32 before the
    logits, so bf16 inputs give a float32 loss.

    Chunked variant: with `chunk_size`, the logits are never formed in full:
    a `tf.while_loop` walks over blocks of `chunk_size` (gathered) texts and
    accumulates the loss, and a hand-written gradient recomputes each block, so
    memory is `O(local_batch * chunk_size)` in both passes. Any `chunk_size >= 1`
    works (the last block is padded and masked); loss and gradients equal the
    plain ones up to float rounding. It runs under `jit_compile=True`.

    Under a `tf.distribute` strategy with several replicas (inside
    `strategy.run`), each replica scores its local images against the texts
    gathered from all replicas (its rows of the global logits) and returns its
    share of the global loss (its terms divided by `B`); the summed replica
    gradients equal the single-device global-batch gradients. See
    `mmkeras.losses.cross_replica`.

    Call forms (all return a float32 scalar): `loss(image_embeddings,
    text_embeddings, logit_scale, logit_bias)` (`logit_bias=None` means 0),
    e.g. `loss(img, txt, **LogitScale(init_scale=10.0, max_scale=None,
    init_bias=-10.0)())`; `loss(y_pred)`; or the `keras.losses.Loss` form
    `loss(y_true, y_pred)` with `y_pred` a dict holding `"image_embeddings"`,
    `"text_embeddings"`, `"logit_scale"` and optionally `"logit_bias"`
    (`y_true` is ignored, `sample_weight` is not supported). Call it from
    `Model.compute_loss`: `Model.compile(loss=...)` maps a single loss onto
    each output of a dict-output model.

    Args:
        chunk_size: `None` (form the full logits) or a positive int, the
            number of text columns per block of the chunked loss.
        gather_across_replicas: bool. If `False`, each replica only uses its
            local batch as negatives (the loss keeps the same scale).
        name: name of the loss.

    Example:

    >>> import numpy as np
    >>> x = np.eye(4, dtype="float32")
    >>> plain = SigLipLoss()(x, x, logit_scale=10.0, logit_bias=-5.0)
    >>> chunked = SigLipLoss(chunk_size=3)(x, x, logit_scale=10.0, logit_bias=-5.0)
    >>> round(float(plain), 4), round(float(chunked), 4)
    (0.0269, 0.0269)
    """

    def __init__(self, chunk_size=None, gather_across_replicas=True, name="siglip_loss"):
        super().__init__(gather_across_replicas=gather_across_replicas, name=name)
        chunk_size = check_int("chunk_size", chunk_size, minimum=1, allow_none=True)
        self.chunk_size = chunk_size

    def batch_loss(self, image_embeddings, text_embeddings, logit_scale, logit_bias):
        logit_bias = _as_float32_scalar(0.0 if logit_bias is None else logit_bias, "logit_bias")
        (all_texts,), row_offset, global_size = gather_global_batch(
            [text_embeddings], gather=self.gather_across_replicas
        )
        local_size = ops.shape(image_embeddings)[0]
        row_ids = row_offset + ops.arange(local_size, dtype="int32")

        if self.chunk_size is None:
            logits = logit_scale * ops.matmul(image_embeddings, ops.transpose(all_texts)) + logit_bias
            col_ids = ops.arange(ops.shape(all_texts)[0], dtype="int32")
            total = -ops.sum(ops.log_sigmoid(_pair_signs(row_ids, col_ids) * logits))
        else:
            total = _chunked_sigmoid_nll(
                image_embeddings, all_texts, logit_scale, logit_bias, row_ids, self.chunk_size
            )
        return total / ops.cast(ops.maximum(global_size, 1), "float32")

    def get_config(self):
        return {**super().get_config(), "chunk_size": self.chunk_size}
