import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from mmkeras.encoders import ViTEncoder
from mmkeras.generation.caption_generator import CaptionGenerator
from mmkeras.models.captioner import captioner

VOCAB = 24
MAX_LENGTH = 8


class FakeDetokenizer:
    """`detokenize(ids) -> strings` by a vocabulary lookup (ids may be ragged)."""

    def __init__(self):
        self.vocabulary = tf.constant([f"w{i}" for i in range(VOCAB)])

    def detokenize(self, ids):
        return tf.strings.reduce_join(tf.gather(self.vocabulary, ids), axis=-1, separator=" ")


def _model(dtype=None):
    keras.utils.set_random_seed(0)
    vit = ViTEncoder(image_size=32, patch_size=16, hidden_dim=16, num_layers=1, num_heads=2, mlp_dim=32, dtype=dtype)
    model = captioner(vit, vocabulary_size=VOCAB, sequence_length=MAX_LENGTH, num_layers=2, num_heads=2,
                      hidden_dim=32, mlp_dim=32, dropout=0.0, tie_weights=False, dtype=dtype)
    # Larger random weights than the training init: peaked, varied next-token
    # distributions, so decoding paths differ between images and strategies.
    rng = np.random.default_rng(0)
    for weight in model.weights:
        if weight.path.startswith("embedding"):
            weight.assign(rng.normal(0, 0.3, weight.shape))
        elif weight.path.startswith("decoder_block") and "kernel" in weight.path:
            weight.assign(rng.normal(0, 0.3, weight.shape))
    return model


def _first_positions(token_ids, token):
    return [int(np.argmax(row == token)) if (row == token).any() else None for row in token_ids]


@pytest.fixture(scope="module")
def setup():
    model = _model()
    images = np.random.default_rng(0).uniform(-1, 1, (6, 32, 32, 3)).astype("float32")
    # Greedy decoding that never stops: the reference token chains.
    raw = CaptionGenerator(model, MAX_LENGTH, eos_id=-1, jit_compile=False).generate(images)
    raw_ids = raw["token_ids"].numpy()
    # An "[EOS]" id that ends some chains early, at different steps, and not others.
    best = None
    for token in range(4, VOCAB):
        firsts = _first_positions(raw_ids, token)
        found = [f for f in firsts if f is not None]
        if len(found) < len(firsts) and len(set(found)) >= 2 and (best is None or len(found) > best[1]):
            best = (token, len(found))
    assert best is not None, f"no usable stop token in {raw_ids.tolist()}"
    return {"model": model, "images": images, "raw": raw, "eos": best[0], "outputs": {}}


def _generate(setup, key, **kwargs):
    if key not in setup["outputs"]:
        generator = CaptionGenerator(setup["model"], MAX_LENGTH, **kwargs)
        setup["outputs"][key] = (generator, generator.generate(setup["images"]))
    return setup["outputs"][key]


@pytest.mark.parametrize("strategy", ["greedy", "beam"])
def test_cached_xla_decoding_equals_uncached_recomputation(setup, strategy):
    eos = setup["eos"]
    kwargs = dict(strategy=strategy, num_beams=3, eos_id=eos, length_penalty=0.7)
    generator, cached = _generate(setup, f"{strategy}-cached", jit_compile=True, **kwargs)
    _, uncached = _generate(setup, f"{strategy}-uncached", jit_compile=False, use_cache=False, **kwargs)
    np.testing.assert_array_equal(cached["token_ids"].numpy(), uncached["token_ids"].numpy())
    np.testing.assert_allclose(cached["scores"].numpy(), uncached["scores"].numpy(), atol=1e-5)
    ids = cached["token_ids"].numpy()
    assert ids.shape == (6, MAX_LENGTH) and cached["scores"].shape == (6,)
    lengths = [int(np.argmax(row == eos)) + 1 if (row == eos).any() else MAX_LENGTH for row in ids]
    assert len(set(lengths)) >= 2  # rows of the batch stop at different steps
    # One XLA computation with static shapes, the loop inside it.
    spec = tf.TensorSpec((6, 32, 32, 3), tf.float32)
    concrete = generator.generate_fn.get_concrete_function(spec, tf.TensorSpec((2,), tf.int32))
    assert concrete.structured_outputs["token_ids"].shape == (6, MAX_LENGTH)
    hlo = generator.generate_fn.experimental_get_compiler_ir(setup["images"], tf.constant([0, 0]))(stage="hlo")
    assert "while" in hlo


def test_eos_stops_each_sequence_and_pads(setup):
    eos = setup["eos"]
    _, out = _generate(setup, "greedy-cached", strategy="greedy", num_beams=3, eos_id=eos, length_penalty=0.7,
                       jit_compile=True)
    raw = setup["raw"]["token_ids"].numpy()
    ids = out["token_ids"].numpy()
    lengths = []
    for row_raw, row in zip(raw, ids):
        stop = int(np.argmax(row_raw == eos)) if (row_raw == eos).any() else MAX_LENGTH - 1
        expected = np.where(np.arange(MAX_LENGTH) <= stop, row_raw, 0)
        np.testing.assert_array_equal(row, expected)
        lengths.append(stop + 1)
    assert len(set(lengths)) >= 2  # rows of one batch stopped at different steps
    # Unstopped rows keep the raw chain's score (same log-probs, same length).
    raw_scores = setup["raw"]["scores"].numpy() * MAX_LENGTH  # raw: penalty 1.0 -> mean log-prob
    for i, length in enumerate(lengths):
        if length == MAX_LENGTH and not (raw[i] == eos).any():
            np.testing.assert_allclose(out["scores"].numpy()[i] * MAX_LENGTH**0.7, raw_scores[i], atol=1e-4)


def test_beam_search_finds_at_least_the_greedy_likelihood(setup):
    kwargs = dict(eos_id=-1, length_penalty=0.0, jit_compile=False)
    _, greedy = _generate(setup, "greedy-nostop-lp0", strategy="greedy", **kwargs)
    _, beam = _generate(setup, "beam-nostop-lp0", strategy="beam", num_beams=4, **kwargs)
    # With no [EOS] and no length penalty the scores are total log-likelihoods.
    assert np.all(beam["scores"].numpy() >= greedy["scores"].numpy() - 1e-5)
    assert np.any(beam["scores"].numpy() > greedy["scores"].numpy() + 1e-4)


def test_top_k_1_and_tiny_top_p_equal_greedy(setup):
    raw = setup["raw"]["token_ids"].numpy()
    for key, kwargs in (("top_k-1", dict(strategy="top_k", k=1)), ("top_p-tiny", dict(strategy="top_p", p=1e-6))):
        _, out = _generate(setup, key, eos_id=-1, seed=7, temperature=2.0, jit_compile=False, **kwargs)
        np.testing.assert_array_equal(out["token_ids"].numpy(), raw, err_msg=key)


def test_sampling_is_seeded_and_temperature_matters(setup):
    raw = setup["raw"]["token_ids"].numpy()
    generator, first = _generate(setup, "top_k-all", strategy="top_k", k=VOCAB, eos_id=-1, seed=3, jit_compile=True)
    again = generator.generate(setup["images"])
    np.testing.assert_array_equal(again["token_ids"].numpy(), first["token_ids"].numpy())
    explicit = generator.generate(setup["images"], seed=tf.constant([3, 0]))["token_ids"].numpy()
    np.testing.assert_array_equal(explicit, first["token_ids"].numpy())
    other = generator.generate(setup["images"], seed=4)["token_ids"].numpy()
    assert not np.array_equal(other, first["token_ids"].numpy())
    assert not np.array_equal(first["token_ids"].numpy(), raw)  # T=1 samples are not greedy
    _, cold = _generate(setup, "top_p-cold", strategy="top_p", p=1.0, temperature=1e-3, eos_id=-1, seed=3,
                        jit_compile=False)
    np.testing.assert_array_equal(cold["token_ids"].numpy(), raw)  # T -> 0 is greedy
    _, hot = _generate(setup, "top_p-hot", strategy="top_p", p=1.0, temperature=100.0, eos_id=-1, seed=3,
                       jit_compile=False)
    hot_matches = (hot["token_ids"].numpy() == raw).mean()
    assert hot_matches < 0.3  # T -> inf is near uniform over 21 allowed tokens


def test_captions_and_savedmodel_export(setup, tmp_path):
    # The compiled beam decoder of the first test, now with a detokenizer.
    generator, _ = _generate(setup, "beam-cached", strategy="beam", num_beams=3, eos_id=setup["eos"],
                             length_penalty=0.7, jit_compile=True)
    generator.detokenizer = FakeDetokenizer()
    out = generator.generate(setup["images"])
    expected = [" ".join(f"w{t}" for t in row if t not in (0, setup["eos"])) for row in out["token_ids"].numpy()]
    assert [c.decode() for c in out["captions"].numpy()] == expected

    class CaptionModule(tf.Module):
        def __init__(self, model, generator):
            super().__init__()
            self.model = model  # tracks the variables
            self._generator = generator

        @tf.function(input_signature=[tf.TensorSpec([None, 32, 32, 3], tf.float32)])
        def caption(self, images):
            result = self._generator.generate(images)
            return {"captions": result["captions"], "scores": result["scores"]}

    path = str(tmp_path / "captioner_savedmodel")
    module = CaptionModule(setup["model"], generator)
    tf.saved_model.save(module, path, signatures={"caption": module.caption})
    del module
    restored = tf.saved_model.load(path).signatures["caption"]
    served = restored(images=tf.constant(setup["images"]))
    assert served["captions"].numpy().tolist() == out["captions"].numpy().tolist()
    np.testing.assert_allclose(served["scores"].numpy(), out["scores"].numpy(), atol=1e-5)


def test_bf16_decoding():
    model = _model(dtype="mixed_bfloat16")
    images = np.random.default_rng(1).uniform(-1, 1, (3, 32, 32, 3)).astype("float32")
    out = CaptionGenerator(model, MAX_LENGTH, strategy="beam", num_beams=2).generate(images)
    assert out["token_ids"].shape == (3, MAX_LENGTH) and out["token_ids"].dtype == tf.int32
    assert out["scores"].dtype == tf.float32 and np.all(np.isfinite(out["scores"].numpy()))
    assert np.all((out["token_ids"].numpy() >= 0) & (out["token_ids"].numpy() < VOCAB))


def test_bad_arguments(setup):
    model = setup["model"]
    with pytest.raises(ValueError, match="strategy"):
        CaptionGenerator(model, strategy="nucleus")
    with pytest.raises(ValueError, match="max_length"):
        CaptionGenerator(model, max_length=MAX_LENGTH + 1)
    with pytest.raises(ValueError, match="num_beams"):
        CaptionGenerator(model, strategy="beam", num_beams=50)
    with pytest.raises(ValueError, match="`k`"):
        CaptionGenerator(model, strategy="top_k", k=0)
    with pytest.raises(ValueError, match="`p`"):
        CaptionGenerator(model, strategy="top_p", p=1.5)
    with pytest.raises(ValueError, match="temperature"):
        CaptionGenerator(model, strategy="top_k", temperature=0.0)
    with pytest.raises(ValueError, match="model"):
        CaptionGenerator(keras.Sequential([keras.layers.Dense(2)]))
    with pytest.raises(ValueError, match="images"):
        CaptionGenerator(model, jit_compile=False).generate(np.zeros((32, 32, 3), "float32"))
    for shape in ((1, 32, 32, 1), (1, 16, 32, 3)):  # the tower takes [batch, 32, 32, 3]
        with pytest.raises(ValueError, match=re.escape(f"`images` must have shape [batch, 32, 32, 3] for this model's "
                                                       f"image tower, got {shape}.")):
            CaptionGenerator(model, jit_compile=False).generate(np.zeros(shape, "float32"))
    with pytest.raises(ValueError, match="detokenizer"):
        CaptionGenerator(model, jit_compile=False).detokenize(np.zeros((1, 4), "int32"))
