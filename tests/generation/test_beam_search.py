import itertools

import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from mmkeras.generation.beam_search import beam_search
from mmkeras.testing.decoding import bigram_step

V, EOS = 8, 3


def _table(seed):
    """A Markov 'model': next-token log-probs depend on the last token only."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 1.5, (V, V)).astype("float32")
    logits[:, [0, 2]] = -1e9  # [PAD] and [BOS] are never generated
    return logits - np.log(np.exp(logits).sum(-1, keepdims=True))


def _brute_force(table, max_length, alpha):
    """Best complete hypothesis by exhaustive enumeration (no [PAD]/[BOS] tokens)."""
    best = (-np.inf, None)
    tokens = [t for t in range(V) if t not in (0, 2)]
    for length in range(1, max_length + 1):
        for seq in itertools.product(tokens, repeat=length):
            if EOS in seq[:-1] or (length < max_length and seq[-1] != EOS):
                continue
            prev, total = 2, 0.0
            for t in seq:
                total += table[prev, t]
                prev = t
            score = total / length**alpha
            if score > best[0]:
                best = (score, list(seq) + [0] * (max_length - length))
    return best


@pytest.mark.parametrize("alpha", [0.0, 1.0, 2.5])
def test_exhaustive_beam_equals_brute_force(alpha):
    # 30 beams keep every live prefix (5 non-[EOS] tokens: at most 5^2 = 25 prefixes
    # before the last of 3 steps), so the search is exhaustive.
    for seed in range(3):
        table = _table(seed)
        ids, scores = beam_search(bigram_step(table), (), 1, 3, num_beams=30, length_penalty=alpha)
        best_score, best_ids = _brute_force(table, 3, alpha)
        assert ids.numpy()[0].tolist() == best_ids, (seed, alpha)
        np.testing.assert_allclose(scores.numpy()[0], best_score, rtol=1e-5)


def test_length_penalty_changes_the_winner():
    table = _table(0)
    short = beam_search(bigram_step(table), (), 1, 5, num_beams=4, length_penalty=0.0)[0].numpy()
    long = beam_search(bigram_step(table), (), 1, 5, num_beams=4, length_penalty=3.0)[0].numpy()
    assert (short[0] != 0).sum() < (long[0] != 0).sum()


def test_scores_and_padding_per_row():
    tables = np.stack([_table(s) for s in range(4)])  # one table per image

    def step(tokens, index, caches):
        image = ops.arange(ops.shape(tokens)[0]) // 3
        last = ops.take(tokens, index, axis=1)
        return tf.gather_nd(tables, ops.stack([image, last], axis=1)), caches

    ids, scores = beam_search(step, (), 4, 6, num_beams=3, length_penalty=1.0)
    ids, scores = ids.numpy(), scores.numpy()
    for b in range(4):
        row = ids[b].tolist()
        length = row.index(EOS) + 1 if EOS in row else 6
        assert all(t == 0 for t in row[length:]) and all(t != 0 for t in row[:length])
        prev, total = 2, 0.0
        for t in row[:length]:
            total += tables[b, prev, t]
            prev = t
        np.testing.assert_allclose(scores[b], total / length, rtol=1e-5)


def test_caches_follow_their_parent_beams():
    table = _table(1)

    def cache_step(tokens, index, caches):
        # Reads the previous token from its own cache instead of `tokens`:
        # correct only if the cache rows are reordered with the beams.
        (history,) = caches
        last = ops.take(history, index, axis=1)
        logits = ops.take(table, last, axis=0)
        return logits, (history,)

    # The cache mirrors the token buffer: the loop writes tokens, so make the
    # step write them into its cache too, one step late.
    def step(tokens, index, caches):
        (history,) = caches
        columns = ops.arange(history.shape[1])[None, :]
        history = ops.where(columns == index, ops.take(tokens, index, axis=1)[:, None], history)
        return cache_step(tokens, index, (history,))

    history = np.zeros((6, 7), "int32")
    ids_cache, scores_cache = beam_search(step, (history,), 2, 6, num_beams=3)
    ids_tokens, scores_tokens = beam_search(bigram_step(table), (), 2, 6, num_beams=3)
    np.testing.assert_array_equal(ids_cache.numpy(), ids_tokens.numpy())
    np.testing.assert_allclose(scores_cache.numpy(), scores_tokens.numpy(), rtol=1e-6)


def test_min_length_forbids_early_eos():
    table = _table(2)
    table[:, EOS] = 0.0  # EOS is by far the likeliest token
    ids = beam_search(bigram_step(table), (), 1, 6, num_beams=2, min_length=4)[0].numpy()[0].tolist()
    assert EOS not in ids[:3] and ids[3] == EOS and ids[4:] == [0, 0]
