import keras
import numpy as np
import pytest
import tensorflow as tf

from mmkeras.layers.fusions import ConcatFusion, ModalityDropout


def _presence(batch=2000, seed=0, names=("image", "text", "numeric")):
    rng = np.random.default_rng(seed)
    out = {n: (rng.random(batch) < 0.8).astype("float32") for n in names}
    for n in names:
        out[n][:5] = 0.0  # a few examples with nothing present
    return out


def test_checks(tmp_path, kit):
    presence = {"image": np.array([1.0, 0.0], "float32"), "text": np.ones(2, "float32")}
    out = kit.run_checks(
        ModalityDropout,
        {"rate": 0.5, "seed": 3},
        presence,
        str(tmp_path),
        expected_shape={"image": (2,), "text": (2,)},
    )
    np.testing.assert_array_equal(out["image"], presence["image"])


def test_identity_at_inference():
    presence = _presence()
    layer = ModalityDropout(rate=0.9)
    for training in (None, False):
        out = layer(presence, training=training)
        for name in presence:
            np.testing.assert_array_equal(np.asarray(out[name]), presence[name])


@pytest.mark.parametrize("rate, jit", [(0.3, False), (0.9, True), (1.0, False)])
def test_never_drops_all_and_never_revives(rate, jit):
    presence = _presence()
    layer = ModalityDropout(rate=rate, seed=1)
    if jit:
        out = tf.function(lambda p: layer(p, training=True), jit_compile=True)(presence)
    else:
        out = layer(presence, training=True)
    before = np.stack([presence[n] for n in presence], 1)
    after = np.stack([np.asarray(out[n]) for n in presence], 1)
    assert set(np.unique(after)) <= {0.0, 1.0}
    assert np.all(after <= before)  # only drops, never adds
    had_some = before.sum(1) > 0
    assert np.all(after[had_some].sum(1) >= 1)  # never all dropped
    assert np.all(after[~had_some].sum(1) == 0)
    if rate == 1.0:
        np.testing.assert_array_equal(after[had_some].sum(1), 1)  # exactly one rescued


def test_drop_rate_matches_expectation():
    # Two always-present modalities, rate p: a modality is absent after dropout if it was
    # dropped and the other kept (p(1-p)), or both were dropped and it lost the draw (p^2/2).
    p, batch = 0.3, 20000
    presence = {"a": np.ones(batch, "float32"), "b": np.ones(batch, "float32")}
    out = ModalityDropout(rate=p, seed=7)(presence, training=True)
    for name in presence:
        dropped = 1.0 - np.asarray(out[name]).mean()
        assert abs(dropped - (p - p * p / 2)) < 0.015


def test_per_modality_rates_and_bool_masks():
    batch = 500
    presence = {"image": np.ones(batch, bool), "text": np.ones(batch, bool)}
    out = ModalityDropout(rate={"image": 0.5}, seed=2)(presence, training=True)
    assert out["image"].dtype == tf.bool
    assert np.all(np.asarray(out["text"]))  # rate 0: never dropped
    assert 0.4 < 1 - np.asarray(out["image"]).mean() < 0.6


def test_bad_arguments():
    with pytest.raises(ValueError, match="`rate`"):
        ModalityDropout(rate=1.5)
    with pytest.raises(ValueError, match=r"`rate\['text'\]`"):
        ModalityDropout(rate={"text": -0.1})
    with pytest.raises(ValueError, match="`rate` names modalities"):
        ModalityDropout(rate={"audio": 0.1})({"text": np.ones(2, "float32")}, training=True)
    with pytest.raises(ValueError, match="`presence`"):
        ModalityDropout(rate=0.1)({}, training=True)


def test_trains_in_a_functional_model_with_fit(kit):
    inputs = kit.make_inputs(batch=8, numeric=True)
    symbolic = {
        m: {k: keras.Input(v.shape[1:], dtype=str(v.dtype)) for k, v in entry.items()}
        for m, entry in inputs.items()
    }
    presence_in = {m: keras.Input((), name=f"{m}_present") for m in inputs}
    presence = ModalityDropout(rate=0.5, seed=0)(presence_in)
    logits = keras.layers.Dense(3)(ConcatFusion(output_dim=8)(symbolic, presence=presence))
    model = keras.Model({"inputs": symbolic, "presence": presence_in}, logits)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    data = {"inputs": inputs, "presence": {m: np.ones(8, "float32") for m in inputs}}
    history = model.fit(data, np.arange(8) % 3, batch_size=4, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    # Inference is deterministic: dropout is off.
    np.testing.assert_allclose(model.predict(data, verbose=0), model.predict(data, verbose=0))
