"""One-candidate-per-row decoding: greedy, or sampling (temperature, top-k, top-p)."""

from keras import ops

from mmkeras.generation.token_selection import mask_logits
from mmkeras.preprocessing.special_tokens import BOS_ID
from mmkeras.preprocessing.special_tokens import EOS_ID
from mmkeras.preprocessing.special_tokens import PAD_ID


def _initial_tokens(batch_size, max_length, bos_id):
    bos = ops.full((batch_size, 1), bos_id, dtype="int32")
    return ops.concatenate([bos, ops.zeros((batch_size, max_length), dtype="int32")], axis=1)


def sampling_search(
    step,
    caches,
    batch_size,
    max_length,
    select,
    *,
    bos_id=BOS_ID,
    eos_id=EOS_ID,
    pad_id=PAD_ID,
    min_length=0,
    length_penalty=1.0,
):
    """Decodes one sequence per row in an `ops.while_loop` with static shapes.

    Each step asks `step` for the next-token logits, forbids `[PAD]`/`[BOS]`
    (and `[EOS]` before `min_length`), and lets `select(logits, index)` pick a
    token. A row stops at its first `[EOS]`: afterwards it emits `[PAD]` and
    its score no longer changes; the loop ends when every row has stopped or
    after `max_length` tokens.

    Args:
        step: `step(tokens, index, caches) -> (logits [N, V], caches)`, see
            `mmkeras.generation.decoder_steps`.
        caches: the loop-carried caches of `step` (may be `()`).
        batch_size: int or scalar tensor, N.
        max_length: int, the most tokens to generate.
        select: `select(logits, index) -> int32 [N]` (argmax for greedy,
            `sample_tokens` for sampling).
        bos_id, eos_id, pad_id: special ids.
        min_length: int, `[EOS]` is forbidden before this many tokens.
        length_penalty: float alpha; the score is
            `sum(log p(token)) / length ** alpha`, with `length` the number of
            generated tokens including `[EOS]`.

    Returns:
        `(token_ids [N, max_length] int32, scores [N] float32)`; token ids
        exclude `[BOS]`, include `[EOS]`, then `[PAD]`.

    Example:

    >>> import numpy as np
    >>> from keras import ops
    >>> from mmkeras.testing.decoding import bigram_step
    >>> table = np.full((6, 6), -5.0, "float32")
    >>> table[2, 4] = table[4, 5] = table[5, 3] = 5.0  # BOS -> 4 -> 5 -> EOS
    >>> ids, scores = sampling_search(bigram_step(table), (), 1, 5, lambda l, i: ops.argmax(l, -1))
    >>> ids.numpy().tolist()
    [[4, 5, 3, 0, 0]]
    """
    tokens = _initial_tokens(batch_size, max_length, bos_id)
    finished = ops.zeros((batch_size,), dtype="bool")
    log_likelihood = ops.zeros((batch_size,), dtype="float32")
    lengths = ops.zeros((batch_size,), dtype="int32")
    columns = ops.arange(max_length + 1, dtype="int32")

    def cond(tokens, caches, index, finished, log_likelihood, lengths):
        return ops.logical_not(ops.all(finished))

    def body(tokens, caches, index, finished, log_likelihood, lengths):
        logits, caches = step(tokens, index, caches)
        logits = mask_logits(logits, index, pad_id=pad_id, bos_id=bos_id, eos_id=eos_id, min_length=min_length)
        log_probs = ops.log_softmax(logits, axis=-1)
        token = ops.cast(select(logits, index), "int32")
        token = ops.where(finished, pad_id, token)
        token_log_prob = ops.take_along_axis(log_probs, token[:, None], axis=-1)[:, 0]
        log_likelihood = log_likelihood + ops.where(finished, 0.0, token_log_prob)
        lengths = lengths + ops.cast(ops.logical_not(finished), "int32")
        finished = ops.logical_or(finished, ops.equal(token, eos_id))
        write = ops.equal(columns, index + 1)[None, :]
        tokens = ops.where(write, token[:, None], tokens)
        return tokens, caches, index + 1, finished, log_likelihood, lengths

    tokens, _, _, _, log_likelihood, lengths = ops.while_loop(
        cond,
        body,
        (tokens, caches, ops.convert_to_tensor(0, dtype="int32"), finished, log_likelihood, lengths),
        maximum_iterations=max_length,
    )
    scores = log_likelihood / ops.power(ops.cast(ops.maximum(lengths, 1), "float32"), length_penalty)
    return tokens[:, 1:], scores
