import numpy as np
import pytest

from mmkeras.encoders import TextTransformerEncoder
from mmkeras.testing.layer_checks import run_model_checks

TINY = dict(vocabulary_size=40, sequence_length=6, hidden_dim=16, num_layers=2, num_heads=2, mlp_dim=32)
IDS = np.array([[2, 5, 6, 3, 0, 0], [2, 7, 8, 9, 10, 3]], "int32")


@pytest.mark.parametrize("causal,pooling", [(True, "last"), (False, "first"), (False, "mean"), (True, "attention")])
def test_outputs_and_round_trips(causal, pooling, tmp_path):
    encoder = TextTransformerEncoder(causal=causal, pooling=pooling, **TINY)
    out = run_model_checks(encoder, IDS, str(tmp_path))
    assert out["sequence"].shape == (2, 6, 16)
    assert out["pooled"].shape == (2, 16)
    np.testing.assert_array_equal(out["padding_mask"], IDS != 0)


def test_padding_does_not_change_pooled():
    encoder = TextTransformerEncoder(causal=False, pooling="mean", **TINY)
    a = encoder(IDS[:1])["pooled"].numpy()
    padded = IDS[:1].copy()
    padded[0, 4:] = 0
    np.testing.assert_allclose(encoder(padded)["pooled"].numpy(), a, atol=1e-5)


def test_last_pooling_picks_the_eos_token():
    encoder = TextTransformerEncoder(causal=True, **TINY)
    out = encoder(IDS)
    np.testing.assert_allclose(out["pooled"][0], out["sequence"][0, 3], atol=1e-6)
    np.testing.assert_allclose(out["pooled"][1], out["sequence"][1, 5], atol=1e-6)


def test_bf16():
    encoder = TextTransformerEncoder(dtype="mixed_bfloat16", **TINY)
    assert encoder(IDS)["pooled"].dtype == "bfloat16"


def test_bad_pooling():
    with pytest.raises(ValueError, match="pooling"):
        TextTransformerEncoder(pooling="max", **TINY)


@pytest.mark.parametrize("causal,pooling", [(True, "last"), (False, "first"), (True, "mean")])
def test_pooled_only_gives_the_same_pooled_vector(causal, pooling, tmp_path):
    full = TextTransformerEncoder(causal=causal, pooling=pooling, **TINY)
    fast = TextTransformerEncoder(causal=causal, pooling=pooling, pooled_only=True, **TINY)
    fast.set_weights(full.get_weights())
    out = run_model_checks(fast, IDS, str(tmp_path))
    assert set(out) == {"pooled", "padding_mask"}
    np.testing.assert_allclose(out["pooled"], full(IDS)["pooled"].numpy(), atol=1e-5)


# CLIP-style rows: id 0 is a real token; 9 ends the text; later positions pad with 9 or 0.
CLIP_IDS = np.array([[8, 0, 5, 9, 9, 9], [8, 5, 0, 0, 9, 0], [8, 1, 2, 3, 4, 5]], "int32")


def test_end_token_marks_the_text_and_pools_there(tmp_path):
    encoder = TextTransformerEncoder(
        end_token_id=9, layer_norm_epsilon=1e-5, activation="quick_gelu", **{**TINY, "vocabulary_size": 10}
    )
    out = run_model_checks(encoder, CLIP_IDS, str(tmp_path))
    np.testing.assert_array_equal(
        out["padding_mask"], [[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 1]]
    )
    for row, end in enumerate([3, 4, 5]):  # a row without the end token is all text
        np.testing.assert_allclose(out["pooled"][row], out["sequence"][row, end], atol=1e-6)
    # Causal: what follows the end token never reaches it.
    padded = CLIP_IDS.copy()
    padded[0, 4:] = [0, 7]
    np.testing.assert_allclose(encoder(padded)["pooled"][0], out["pooled"][0], atol=1e-5)
    config = TextTransformerEncoder.from_config(encoder.get_config()).get_config()
    assert (config["end_token_id"], config["activation"], config["layer_norm_epsilon"]) == (9, "quick_gelu", 1e-5)


def test_end_token_with_pooled_only(tmp_path):
    tiny = {**TINY, "vocabulary_size": 10}
    full = TextTransformerEncoder(end_token_id=9, **tiny)
    fast = TextTransformerEncoder(end_token_id=9, pooled_only=True, **tiny)
    fast.set_weights(full.get_weights())
    out = run_model_checks(fast, CLIP_IDS, str(tmp_path))
    np.testing.assert_allclose(out["pooled"], full(CLIP_IDS)["pooled"].numpy(), atol=1e-5)


def test_bad_end_token():
    with pytest.raises(ValueError, match="end_token_id"):
        TextTransformerEncoder(end_token_id=40, **TINY)
    with pytest.raises(ValueError, match="end_token_id"):
        TextTransformerEncoder(end_token_id=-1, **TINY)
