import numpy as np
import pytest
import tensorflow as tf

from mmkeras.generation.token_selection import greedy_tokens
from mmkeras.generation.token_selection import mask_logits
from mmkeras.generation.token_selection import sample_tokens
from mmkeras.generation.token_selection import top_k
from mmkeras.generation.token_selection import top_k_filter
from mmkeras.generation.token_selection import top_p_filter


def test_mask_logits():
    logits = np.zeros((2, 6), "float32")
    kept = mask_logits(logits, 0, pad_id=0, bos_id=2, eos_id=3, min_length=2).numpy() > -1e8
    assert kept.tolist() == [[False, True, False, False, True, True]] * 2
    kept = mask_logits(logits, 1, pad_id=0, bos_id=2, eos_id=3, min_length=2).numpy() > -1e8
    assert kept[0].tolist() == [False, True, False, True, True, True]


@pytest.mark.parametrize("jit_compile", [False, True])
def test_greedy_tokens_equal_argmax_first_on_ties(jit_compile):
    rng = np.random.default_rng(0)
    # Rounded logits give many ties, including ties for the maximum; -1e9 rows mimic masked entries.
    logits = np.round(rng.normal(size=(64, 50)), 1).astype("float32")
    logits[3] = 2.0
    logits[5, :10] = -1e9
    select = tf.function(greedy_tokens, jit_compile=jit_compile)
    tokens = select(logits).numpy()
    assert tokens.dtype == np.int32
    np.testing.assert_array_equal(tokens, np.argmax(logits, axis=-1))
    assert tokens[3] == 0


@pytest.mark.parametrize("jit_compile", [False, True])
@pytest.mark.parametrize("size", [4096, 5000, 300])  # blocks, blocks + padding, too short for blocks
def test_blocked_top_k_equals_top_k_ties_included(jit_compile, size):
    rng = np.random.default_rng(size)
    values = rng.normal(size=(6, size)).astype("float32")
    values[1] = np.round(values[1], 1)  # many ties, at the boundary too
    values[2] = 0.0  # all tied: the lowest indices win
    values[3, : size // 2] = -1e9  # masked entries
    values[4, -3:] = 50.0  # the largest in the padded last block
    values[5, ::2] = -np.inf
    select = tf.function(top_k, jit_compile=jit_compile)
    for k in (1, 8):
        top_values, top_indices = select(values, k)
        reference_values, reference_indices = tf.math.top_k(values, k)
        assert top_indices.dtype == tf.int32
        np.testing.assert_array_equal(top_values.numpy(), reference_values.numpy())
        np.testing.assert_array_equal(top_indices.numpy(), reference_indices.numpy())
    assert top_indices.numpy()[2].tolist() == list(range(8))


def test_top_k_and_top_p_filters():
    logits = np.log(np.array([[0.1, 0.4, 0.2, 0.3], [0.7, 0.1, 0.1, 0.1]], "float32"))
    assert (top_k_filter(logits, 2).numpy() > -1e8).tolist() == [[False, True, False, True], [True, True, True, True]]
    # p=0.65: row 0 keeps 0.4+0.3 (crosses at 0.7); row 1 keeps 0.7 only.
    assert (top_p_filter(logits, 0.65).numpy() > -1e8).tolist() == [[False, True, False, True], [True, False, False, False]]
    assert (top_p_filter(logits, 1e-9).numpy() > -1e8).sum(axis=1).tolist() == [1, 1]
    assert (top_p_filter(logits, 1.0).numpy() > -1e8).all()


def _nucleus_reference(logits, p):
    """The sorted definition, in float64: the top tokens up to the one that crosses `p`, and its ties.

    Also says which rows are too close to call in float32: the mass before or
    through the crossing token within `1e-5 * p` of `p`.
    """
    kept = np.zeros(logits.shape, bool)
    close = np.zeros(len(logits), bool)
    for row, values in enumerate(logits.astype("float64")):
        probs = np.exp(values - values.max())
        probs /= probs.sum()
        order = np.argsort(-values, kind="stable")
        mass_before = np.cumsum(probs[order]) - probs[order]
        crossing = max(int(np.sum(mass_before < p)), 1) - 1
        kept[row] = values >= values[order[crossing]]
        close[row] = min(abs(mass_before[crossing] - p), abs(mass_before[crossing] + probs[order[crossing]] - p)) < 1e-5 * p
    return kept, close


@pytest.mark.parametrize("jit_compile", [False, True])
def test_top_p_filter_equals_the_sorted_definition(jit_compile):
    rng = np.random.default_rng(0)
    logits = (rng.normal(size=(40, 3000)) * rng.uniform(0.1, 8.0, size=(40, 1))).astype("float32")
    logits[:10] = np.round(logits[:10], 1)  # many ties
    logits[10, :] = 0.0  # all tied: all kept
    logits[11, ::2] = -0.0
    logits[12, :2000] = -1e9  # masked tokens
    logits[13, 5] = 40.0  # one token holds nearly all the mass
    logits[14] = -logits[14]  # all negative
    select = tf.function(top_p_filter, jit_compile=jit_compile)
    close_calls = 0
    assert np.array_equal(select(logits, 1.0).numpy() > -1e8, logits > -1e8)  # p = 1 keeps every token
    for p in (1e-9, 0.1, 0.5, 0.9, 0.99):
        kept = select(logits, p).numpy() > -1e8
        reference, close = _nucleus_reference(logits, p)
        reference &= logits > -1e8
        np.testing.assert_array_equal(kept[~close], reference[~close])
        for row in np.where(close)[0]:  # at most the crossing token flips with the rounding
            assert abs(int(kept[row].sum()) - int(reference[row].sum())) <= 1
        close_calls += close.sum()
    assert close_calls <= 20  # of 200 rows: the other rows were compared exactly
    assert (select(logits, 1e-9).numpy()[13] > -1e8).sum() == 1


@pytest.mark.parametrize("k,p", [(None, None), (2, None), (None, 0.65)])
def test_sample_frequencies(k, p):
    probs = np.array([0.1, 0.4, 0.2, 0.3], "float32")
    logits = np.tile(np.log(probs), (4000, 1))
    draws = sample_tokens(logits, tf.constant([5, 6]), 3, k=k, p=p).numpy()
    expected = probs.copy()
    if k is not None or p is not None:
        expected[[0, 2]] = 0.0
    expected /= expected.sum()
    np.testing.assert_allclose(np.bincount(draws, minlength=4) / 4000, expected, atol=0.03)


def test_sampling_is_stateless_and_temperature_sharpens():
    logits = np.tile(np.log(np.array([[0.3, 0.35, 0.35]], "float32")), (2000, 1))
    seed = tf.constant([1, 2])
    a = sample_tokens(logits, seed, 0).numpy()
    np.testing.assert_array_equal(sample_tokens(logits, seed, 0).numpy(), a)
    assert not np.array_equal(sample_tokens(logits, seed, 1).numpy(), a)  # the step changes the draw
    cold = sample_tokens(logits, seed, 0, temperature=0.01).numpy()
    assert set(cold.tolist()) <= {1, 2} and (cold == 0).sum() == 0
    hot = np.bincount(sample_tokens(logits, seed, 0, temperature=50.0).numpy(), minlength=3) / 2000
    np.testing.assert_allclose(hot, [1 / 3] * 3, atol=0.04)
