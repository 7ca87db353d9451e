import keras
import numpy as np

from mmkeras.encoders import ViTEncoder
from mmkeras.generation.decoder_steps import cached_step
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
        # keys and values of each of the 2 blocks, head-major: [rows, heads, max_length, head_dim]
        assert len(caches) == 4 and all(c.shape == (2 * num_beams, 2, 6, 8) for c in caches)
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
