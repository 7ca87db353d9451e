import keras
import numpy as np

from mmkeras.encoders import ViTEncoder
from mmkeras.generation.decoder_steps import cached_step
from mmkeras.generation.decoder_steps import reorder_caches
from mmkeras.generation.decoder_steps import uncached_step
from mmkeras.models.captioner import captioner


def test_cached_and_uncached_steps_match_the_full_forward_pass():
    keras.utils.set_random_seed(0)
    vit = ViTEncoder(image_size=32, patch_size=16, hidden_dim=16, num_layers=1, num_heads=2, mlp_dim=32)
    model = captioner(vit, vocabulary_size=20, sequence_length=6, num_layers=2, num_heads=2, mlp_dim=32, dropout=0.0)
    images = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    tokens = np.random.default_rng(1).integers(4, 20, (2, 7)).astype("int32")
    tokens[:, 0] = 2
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
    # The model's own (unfused) cached step, through the blocks' `call`.
    self_caches, cross_caches = model.init_cache(image_tokens, 6)
    for index in range(6):
        logits, self_caches = model.decode_step(tokens[:, index : index + 1], index, self_caches, cross_caches,
                                                image_tokens)
        np.testing.assert_allclose(logits.numpy(), full[:, index], atol=1e-4)


def test_reordered_caches_give_each_row_its_new_parents_past():
    """Rows that change parents mid-decode see their new past, as if recomputed from scratch."""
    keras.utils.set_random_seed(1)
    vit = ViTEncoder(image_size=32, patch_size=16, hidden_dim=16, num_layers=1, num_heads=2, mlp_dim=32)
    model = captioner(vit, vocabulary_size=20, sequence_length=6, num_layers=2, num_heads=2, mlp_dim=32, dropout=0.0)
    images = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    image_tokens = model.encode_images(images)
    beams = 3
    tokens = np.random.default_rng(2).integers(4, 20, (2 * beams, 7)).astype("int32")
    tokens[:, 0] = 2
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
