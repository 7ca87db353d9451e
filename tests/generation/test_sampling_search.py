import numpy as np
import tensorflow as tf
from keras import ops

from mmkeras.generation.sampling_search import sampling_search
from mmkeras.testing.decoding import bigram_step

V, EOS = 8, 3


def _table(seed):
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2.0, (V, V)).astype("float32")
    return logits - np.log(np.exp(logits).sum(-1, keepdims=True))


def _greedy(logits, index):
    return ops.argmax(logits, axis=-1)


def test_greedy_chain_scores_and_per_row_stop():
    tables = np.stack([_table(s) for s in range(5)])
    tables[:, :, [0, 2]] = -1e9

    def step(tokens, index, caches):
        rows = ops.arange(ops.shape(tokens)[0])
        last = ops.take(tokens, index, axis=1)
        return tf.gather_nd(tables, ops.stack([rows, last], axis=1)), caches

    ids, scores = sampling_search(step, (), 5, 7, _greedy, length_penalty=0.5)
    for b, (row, score) in enumerate(zip(ids.numpy().tolist(), scores.numpy())):
        prev, total, expected = 2, 0.0, []
        table = tables[b] - np.log(np.exp(tables[b]).sum(-1, keepdims=True))
        while len(expected) < 7:
            token = int(np.argmax(tables[b, prev]))
            total += table[prev, token]
            expected.append(token)
            prev = token
            if token == EOS:
                break
        assert row == expected + [0] * (7 - len(expected))
        np.testing.assert_allclose(score, total / len(expected) ** 0.5, rtol=1e-5)


def test_stops_early_when_every_row_is_done():
    calls = []
    table = np.full((V, V), -5.0, "float32")
    table[2, 4] = table[4, EOS] = 5.0

    def step(tokens, index, caches):
        calls.append(1)  # eager loop: one Python call per step
        return ops.take(table, ops.take(tokens, index, axis=1), axis=0), caches

    ids, _ = sampling_search(step, (), 2, 6, _greedy)
    assert ids.numpy().tolist() == [[4, EOS, 0, 0, 0, 0]] * 2
    assert len(calls) == 2


def test_min_length():
    table = np.full((V, V), -5.0, "float32")
    table[:, EOS] = 5.0
    table[:, 5] = 1.0
    ids, _ = sampling_search(bigram_step(table), (), 1, 6, _greedy, min_length=3)
    assert ids.numpy().tolist() == [[5, 5, EOS, 0, 0, 0]]
