import keras
import numpy as np
import tensorflow as tf

from mmkeras.generation.decoder_steps import cached_step
from mmkeras.generation.decoder_steps import reorder_caches
from mmkeras.generation.decoder_steps import uncached_step
from mmkeras.preprocessing.special_tokens import BOS_ID
from mmkeras.testing.decoding import tiny_captioner


def _model_images_tokens(seed, num_layers=2, rows=2):
    """A tiny captioner (6 positions), 2 images and `rows` random token rows that start with [BOS]."""
    keras.utils.set_random_seed(seed)
    model = tiny_captioner(vocabulary_size=20, sequence_length=6, num_layers=num_layers, mlp_dim=32, dropout=0.0)
    images = np.random.default_rng(seed).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    tokens = np.random.default_rng(seed + 1).integers(4, 20, (rows, 7)).astype("int32")
    tokens[:, 0] = BOS_ID
    return model, images, tokens


def test_cached_and_uncached_steps_match_the_full_forward_pass():
    model, images, tokens = _model_images_tokens(0)
    full = model({"images": images, "token_ids": tokens[:, :6]}).numpy()
    image_tokens = model.encode_images(images)
    for num_beams in (1, 2):
        beam_tokens = np.repeat(tokens, num_beams, axis=0)
        expected = np.repeat(full, num_beams, axis=0)
        cached, caches = cached_step(model, image_tokens, 6, num_beams=num_beams)
        uncached, _ = uncached_step(model, image_tokens, 6, num_beams=num_beams)
        # The origin table, then keys [images, heads, head_dim, positions * beams] and values
        # [images, heads, positions * beams, head_dim] of each of the 2 blocks.
        assert len(caches) == 5 and caches[0].shape == (2 * num_beams, 6)
        assert [c.shape for c in caches[1:]] == [(2, 2, 8, 6 * num_beams), (2, 2, 6 * num_beams, 8)] * 2
        for index in range(6):
            logits, caches = cached(beam_tokens, index, caches)
            np.testing.assert_allclose(logits.numpy(), expected[:, index], atol=1e-4)
            np.testing.assert_allclose(uncached(beam_tokens, index, ())[0].numpy(), expected[:, index], atol=1e-4)


def test_compiled_cached_step_equals_the_full_forward_pass():
    """One token at a time through the KV cache under XLA, as the decoding loops run it."""
    model, images, tokens = _model_images_tokens(2, num_layers=1)
    full = model({"images": images, "token_ids": tokens[:, :6]}).numpy()
    step, caches = cached_step(model, model.encode_images(images), 6)
    compiled = tf.function(step, jit_compile=True)
    for index in range(6):
        logits, caches = compiled(tokens, tf.constant(index), caches)
        np.testing.assert_allclose(logits.numpy(), full[:, index], atol=1e-4)


def test_reordered_caches_give_each_row_its_new_parents_past():
    """Rows that change parents mid-decode see their new past, as if recomputed from scratch."""
    beams = 3
    model, images, tokens = _model_images_tokens(1, rows=2 * beams)
    image_tokens = model.encode_images(images)
    step, caches = cached_step(model, image_tokens, 6, num_beams=beams)
    # Parents stay within their image (rows b * beams + j); one row keeps itself, one swaps, one is duplicated.
    reorders = {1: [2, 2, 0, 4, 3, 5], 3: [1, 0, 0, 5, 5, 4]}
    for index in range(6):
        logits, caches = step(tokens, index, caches)
        full = model({"images": np.repeat(images, beams, axis=0), "token_ids": tokens[:, :6]}).numpy()
        np.testing.assert_allclose(logits.numpy(), full[:, index], atol=1e-4)
        if index in reorders:
            source = np.array(reorders[index], "int32")
            caches = reorder_caches(caches, source)
            tokens = tokens[source].copy()
            # The new rows continue with fresh tokens after their parents' past.
            tokens[:, index + 1 :] = np.random.default_rng(index).integers(4, 20, (2 * beams, 6 - index))
