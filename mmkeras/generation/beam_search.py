"""Beam search with a length penalty, per-sequence `[EOS]`, and scores."""

from keras import ops

from mmkeras.generation.token_selection import NEG_INF
from mmkeras.generation.token_selection import mask_logits
from mmkeras.generation.token_selection import top_k
from mmkeras.preprocessing.special_tokens import BOS_ID
from mmkeras.preprocessing.special_tokens import EOS_ID
from mmkeras.preprocessing.special_tokens import PAD_ID


def beam_search(
    step,
    caches,
    batch_size,
    max_length,
    num_beams=4,
    *,
    length_penalty=1.0,
    bos_id=BOS_ID,
    eos_id=EOS_ID,
    pad_id=PAD_ID,
    min_length=0,
    reorder=None,
):
    """Beam search in an `ops.while_loop` with static shapes.

    Keeps, per image, `num_beams` *alive* beams and `num_beams` *finished*
    hypotheses. Each step expands every alive beam over the vocabulary and
    takes the `2 * num_beams` best continuations by summed log-probability; those
    ending in `[EOS]` compete (by length-penalised score) for the finished
    slots, the best `num_beams` others become the new alive beams, and the KV
    caches follow their parent beams. A finished hypothesis is frozen: it keeps
    its tokens, `[PAD]` after its `[EOS]`, and its score.

    Length penalty (Hugging Face convention): a hypothesis of `n` generated
    tokens (its `[EOS]` included) scores `sum(log p) / n ** length_penalty`;
    `0` ranks by raw log-likelihood (favours short captions), `1` by mean
    per-token log-probability, larger values favour longer captions.

    The loop stops early once, for every image, no alive beam can still beat
    its worst finished hypothesis (an exact bound, so stopping never changes
    the result). Alive beams that reach `max_length` without `[EOS]` are
    scored as complete hypotheses of length `max_length`.

    Args:
        step: `step(tokens, index, caches) -> (logits [B * num_beams, V], caches)`
            over rows laid out image-major (`b * num_beams + j`).
        caches: loop-carried caches for those rows, or `()`; by default
            tensors with the rows on axis 0 (see `reorder`).
        batch_size: int or scalar tensor, the number of images B.
        max_length: int, the most tokens to generate.
        num_beams: int, beam width.
        length_penalty: float, the exponent above.
        bos_id, eos_id, pad_id: special ids.
        min_length: int, `[EOS]` is forbidden before this many tokens.
        reorder: `reorder(caches, source_rows) -> caches`, called after each
            step with the parent row of every new row so that the caches
            follow their beams; by default every cache tensor is gathered
            along axis 0. `cached_step`'s caches need `reorder_caches`.

    Returns:
        `(token_ids [B, max_length] int32, scores [B] float32)`: the best
        hypothesis per image (no `[BOS]`; `[EOS]` then `[PAD]`) and its
        length-penalised score.

    Example:

    >>> import numpy as np
    >>> from mmkeras.testing.decoding import bigram_step
    >>> table = np.full((6, 6), -5.0, "float32")
    >>> table[2, 4] = table[4, 5] = table[5, 3] = 5.0  # BOS -> 4 -> 5 -> EOS
    >>> ids, scores = beam_search(bigram_step(table), (), 1, 5, num_beams=2)
    >>> ids.numpy().tolist()
    [[4, 5, 3, 0, 0]]
    """
    k = int(num_beams)
    if reorder is None:
        reorder = _gather_rows
    rows = batch_size * k
    columns = ops.arange(max_length + 1, dtype="int32")
    bos = ops.full((rows, 1), bos_id, dtype="int32")
    tokens = ops.concatenate([bos, ops.zeros((rows, max_length), dtype="int32")], axis=1)
    # Only the first beam of each image is live at the start.
    first = ops.convert_to_tensor([[0.0] + [NEG_INF] * (k - 1)], dtype="float32")
    alive_log_likelihood = ops.tile(first, (batch_size, 1))
    finished_tokens = ops.zeros((batch_size, k, max_length + 1), dtype="int32")
    finished_scores = ops.full((batch_size, k), NEG_INF, dtype="float32")
    max_norm = float(max_length) ** length_penalty
    batch_offsets = ops.arange(batch_size, dtype="int32")[:, None] * k

    def cond(tokens, caches, index, alive_log_likelihood, finished_tokens, finished_scores):
        # Any future hypothesis has n in [index + 1, max_length] tokens and a
        # log-likelihood <= the best alive one (<= 0), so its score is at most
        # best / max(n ** alpha).
        norm = ops.maximum(ops.power(ops.cast(index + 1, "float32"), length_penalty), max_norm)
        best_possible = ops.max(alive_log_likelihood, axis=1) / norm
        done = ops.min(finished_scores, axis=1) > best_possible
        return ops.logical_not(ops.all(done))

    def body(tokens, caches, index, alive_log_likelihood, finished_tokens, finished_scores):
        logits, caches = step(tokens, index, caches)
        logits = mask_logits(logits, index, pad_id=pad_id, bos_id=bos_id, eos_id=eos_id, min_length=min_length)
        log_probs = ops.log_softmax(logits, axis=-1)
        vocabulary_size = log_probs.shape[-1]
        candidates = alive_log_likelihood[:, :, None] + ops.reshape(log_probs, (-1, k, vocabulary_size))
        candidates = ops.reshape(candidates, (-1, k * vocabulary_size))
        top_log_likelihood, top_indices = top_k(candidates, 2 * k)
        parents = top_indices // vocabulary_size
        next_tokens = ops.cast(top_indices % vocabulary_size, "int32")

        beam_tokens = ops.reshape(tokens, (-1, k, max_length + 1))
        candidate_tokens = ops.take_along_axis(beam_tokens, parents[:, :, None], axis=1)
        write = ops.equal(columns, index + 1)[None, None, :]
        candidate_tokens = ops.where(write, next_tokens[:, :, None], candidate_tokens)
        is_eos = ops.equal(next_tokens, eos_id)

        # Finished pool: old finished hypotheses + candidates that just ended.
        length_norm = ops.power(ops.cast(index + 1, "float32"), length_penalty)
        eos_scores = ops.where(is_eos, top_log_likelihood / length_norm, NEG_INF)
        pool_scores = ops.concatenate([finished_scores, eos_scores], axis=1)
        pool_tokens = ops.concatenate([finished_tokens, candidate_tokens], axis=1)
        finished_scores, keep = ops.top_k(pool_scores, k=k, sorted=True)
        finished_tokens = ops.take_along_axis(pool_tokens, keep[:, :, None], axis=1)

        # Alive beams: the best non-[EOS] continuations.
        alive_candidates = ops.where(is_eos, NEG_INF, top_log_likelihood)
        alive_log_likelihood, keep = ops.top_k(alive_candidates, k=k, sorted=True)
        tokens = ops.reshape(ops.take_along_axis(candidate_tokens, keep[:, :, None], axis=1), (-1, max_length + 1))
        source_rows = ops.reshape(batch_offsets + ops.take_along_axis(parents, keep, axis=1), (-1,))
        caches = reorder(caches, source_rows)
        return tokens, caches, index + 1, alive_log_likelihood, finished_tokens, finished_scores

    tokens, _, steps, alive_log_likelihood, finished_tokens, finished_scores = ops.while_loop(
        cond,
        body,
        (
            tokens,
            tuple(caches),
            ops.convert_to_tensor(0, dtype="int32"),
            alive_log_likelihood,
            finished_tokens,
            finished_scores,
        ),
        maximum_iterations=max_length,
    )
    # Alive beams that reached max_length are complete (truncated) hypotheses;
    # after an early stop they are unfinished and cannot win, so drop them.
    alive_scores = alive_log_likelihood / max_norm
    alive_scores = ops.where(steps >= max_length, alive_scores, NEG_INF)
    pool_scores = ops.concatenate([finished_scores, alive_scores], axis=1)
    pool_tokens = ops.concatenate([finished_tokens, ops.reshape(tokens, (-1, k, max_length + 1))], axis=1)
    best = ops.argmax(pool_scores, axis=1)[:, None]
    best_tokens = ops.take_along_axis(pool_tokens, best[:, :, None], axis=1)[:, 0]
    best_scores = ops.take_along_axis(pool_scores, best, axis=1)[:, 0]
    return best_tokens[:, 1:], best_scores


def _gather_rows(caches, source_rows):
    return tuple(ops.take(cache, source_rows, axis=0) for cache in caches)
