import keras
import numpy as np
import pytest
import tensorflow as tf

from mmkeras import zoo
from mmkeras.encoders import TextTransformerEncoder, ViTEncoder
from mmkeras.layers.fusions import FUSIONS, LateFusion
from mmkeras.models.fusion_classifier import FusionClassifier, fusion_classifier
from mmkeras.testing.layer_checks import run_model_checks

HEADS = {
    "answer": {"type": "multiclass", "num_classes": 4, "labels": ["a", "b", "c", "d"], "loss_weight": 1.0},
    "match": {"type": "binary", "labels": ["no", "yes"], "loss_weight": 0.5},
    "tags": {"type": "multilabel", "num_classes": 3},
    "score": {"type": "regression", "loss_weight": 2.0},
}
WIDTH = {"early": "hidden_dim", "cross_attention": "hidden_dim", "hybrid": "hidden_dim"}


def _towers(dtype=None):
    image = ViTEncoder(
        image_size=16, patch_size=8, hidden_dim=8, num_layers=1, num_heads=2, mlp_dim=16, dtype=dtype
    )
    text = TextTransformerEncoder(
        vocabulary_size=20, sequence_length=5, hidden_dim=8, num_layers=1, num_heads=2, mlp_dim=16,
        causal=False, dtype=dtype,
    )
    return image, text


def _fusion_kwargs(fusion):
    if fusion == "late":
        return {"combine": "mean"}
    kwargs = {WIDTH.get(fusion, "output_dim"): 8}
    if fusion in WIDTH:
        kwargs.update(num_heads=2, mlp_dim=16)
        if fusion != "cross_attention":
            kwargs["num_layers"] = 1
    return kwargs


def _model(fusion="concat", numeric=True, heads=HEADS, dtype=None, **kwargs):
    image, text = _towers(dtype)
    return fusion_classifier(
        image, text, extra_inputs={"numeric": 3} if numeric else None, fusion=fusion,
        fusion_kwargs=_fusion_kwargs(fusion), heads=heads, dtype=dtype, **kwargs,
    )


def _batch(n=6, seed=0, numeric=True):
    rng = np.random.default_rng(seed)
    ids = rng.integers(4, 20, (n, 5)).astype("int32")
    ids[:, 0], ids[:, -1] = 2, 3
    ids[0, 3:] = 0  # some padding
    batch = {"images": rng.uniform(-1, 1, (n, 16, 16, 3)).astype("float32"), "token_ids": ids}
    if numeric:
        batch["numeric"] = rng.normal(size=(n, 3)).astype("float32")
    return batch


def _labels(n=6, seed=1):
    rng = np.random.default_rng(seed)
    return {
        "answer": rng.integers(0, 4, n),
        "match": rng.integers(0, 2, n).astype("float32"),
        "tags": rng.integers(0, 2, (n, 3)).astype("float32"),
        "score": rng.normal(size=n).astype("float32"),
    }


def _complete(model, batch):
    return {k: np.asarray(v) for k, v in model.with_presence(batch).items()}


@pytest.mark.parametrize("fusion", ["early", "late"])
def test_outputs_round_trips_and_xla(fusion, tmp_path):
    model = _model(fusion)
    batch = _batch()
    # XLA once (late: per-head LateFusion + SumFusion regression); early fusion's XLA is in its own tests.
    out = run_model_checks(model, _complete(model, batch), str(tmp_path), check_jit=fusion == "late")
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "answer": (6, 4), "match": (6, 1), "tags": (6, 3), "score": (6, 1)
    }
    restored = keras.saving.load_model(str(tmp_path / "fusion_classifier.keras"))
    assert isinstance(restored, FusionClassifier)
    assert restored.heads == model.heads and restored.fusion_name == fusion
    assert restored.modalities == ["image", "text", "numeric"]
    if fusion == "late":
        late = [layer for layer in model.layers if isinstance(layer, LateFusion)]
        assert sorted(layer.name for layer in late) == ["answer_late_fusion", "match_late_fusion", "tags_late_fusion"]


@pytest.mark.parametrize("fusion", sorted(FUSIONS))
def test_missing_modality_gives_valid_predictions_from_the_others(fusion):
    numeric = fusion != "cross_attention"  # exactly two modalities there
    model = _model(fusion, numeric=numeric)
    batch = _batch(numeric=numeric)
    full = model.probabilities(model(model.with_presence(batch)))
    other = _batch(seed=7, numeric=numeric)
    for modality, key in (("image", "images"), ("text", "token_ids")):
        absent = model.with_presence(batch, absent=[modality])
        out = model.probabilities(model(absent))
        # Replacing the absent modality's features by anything changes nothing.
        swapped = dict(absent, **{key: other[key]})
        again = model.probabilities(model(swapped))
        for head in HEADS:
            assert np.all(np.isfinite(out[head])), (fusion, modality, head)
            np.testing.assert_allclose(again[head], out[head], atol=1e-5, err_msg=f"{fusion}/{modality}/{head}")
        # ... while the prediction still depends on the modality that is present.
        assert not np.allclose(out["answer"], full["answer"], atol=1e-6)
        np.testing.assert_allclose(np.sum(out["answer"], axis=-1), 1.0, atol=1e-5)
    # Per-example masks: only the masked example changes.
    mask = np.ones(6, "float32")
    mask[2] = 0.0
    partial = model.probabilities(model(dict(batch, image_present=mask)))
    keep = mask.astype(bool)
    np.testing.assert_allclose(partial["answer"][keep], full["answer"][keep], atol=1e-5)


@pytest.mark.parametrize("fusion", sorted(FUSIONS))
def test_several_texts_per_image_share_one_image_encoding(fusion):
    """`images [B]` with the other inputs `[B * K]` equals repeating each image K times, also under XLA."""
    numeric = fusion != "cross_attention"
    model = _model(fusion, numeric=numeric, modality_dropout=0.0)
    batch = _batch(n=6, numeric=numeric)  # 3 images x K = 2 texts
    shared = dict(batch, images=batch["images"][:3])
    repeated = dict(batch, images=np.repeat(shared["images"], 2, axis=0))
    expected = model(model.with_presence(repeated))
    out = model(model.with_presence(shared))
    jitted = tf.function(lambda x: model(x), jit_compile=True)(model.with_presence(shared))
    for head in HEADS:
        np.testing.assert_allclose(out[head], expected[head], atol=1e-5, err_msg=f"{fusion}/{head}")
        np.testing.assert_allclose(jitted[head], expected[head], atol=1e-5, err_msg=f"{fusion}/{head}")
    assert model.with_presence(shared)["image_present"].shape == (6,)  # masks follow the text rows
    with pytest.raises(ValueError, match="K rows per image"):
        model(dict(shared, images=batch["images"][:4]))


def test_three_modalities_and_cross_attention_limit():
    model = _model("early", numeric=True)
    batch = _batch()
    full = model(model.with_presence(batch))["answer"]
    no_numeric = model(model.with_presence(batch, absent="numeric"))["answer"]
    assert not np.allclose(full, no_numeric, atol=1e-6)  # the numeric input is used
    with pytest.raises(ValueError, match="exactly two modalities"):
        _model("cross_attention", numeric=True)


def test_presence_masks_default_to_present():
    model = _model("gated")
    batch = _batch()
    implicit = model(batch)
    explicit = model(model.with_presence(batch))
    for head in HEADS:
        np.testing.assert_allclose(implicit[head], explicit[head], atol=1e-6)
    assert model.presence_names == {"image": "image_present", "text": "text_present", "numeric": "numeric_present"}
    symbolic = model({"images": keras.Input((16, 16, 3)), "token_ids": keras.Input((5,), dtype="int32"),
                      "numeric": keras.Input((3,))})
    assert symbolic["answer"].shape == (None, 4)


def test_compile_sets_per_head_losses_and_weights():
    model = _model("concat")
    model.compile(optimizer="adam")
    batch, labels = model.with_presence(_batch()), _labels()
    out = model(batch)
    expected = (
        1.0 * keras.losses.SparseCategoricalCrossentropy(from_logits=True)(labels["answer"], out["answer"])
        + 0.5 * keras.losses.BinaryCrossentropy(from_logits=True)(labels["match"][:, None], out["match"])
        + 1.0 * keras.losses.BinaryCrossentropy(from_logits=True)(labels["tags"], out["tags"])
        + 2.0 * keras.losses.MeanSquaredError()(labels["score"][:, None], out["score"])
    )
    loss = model.compute_loss(x=batch, y=labels, y_pred=out)
    np.testing.assert_allclose(float(loss), float(expected), rtol=1e-5)
    with pytest.raises(ValueError, match="unknown heads"):
        model.compile(optimizer="adam", loss={"answers": "mse"})


def test_keras_file_keeps_the_compiled_state(tmp_path):
    model = _model("concat", numeric=False)
    model.compile(optimizer="adam", loss_weights={"score": 0.0})
    batch, labels = model.with_presence(_batch(numeric=False)), _labels()
    model.train_on_batch(batch, labels)
    model.save(str(tmp_path / "compiled.keras"))
    restored = keras.saving.load_model(str(tmp_path / "compiled.keras"))
    assert restored.compiled and int(restored.optimizer.iterations) == 1
    expected = model.evaluate(batch, labels, verbose=0, return_dict=True)
    again = restored.evaluate(batch, labels, verbose=0, return_dict=True)
    assert again.keys() == expected.keys()
    np.testing.assert_allclose(again["loss"], expected["loss"], rtol=1e-5)


def test_fit_trains_each_head_only_on_its_weighted_examples():
    model = _model("sum", modality_dropout=0.3)
    model.compile(optimizer="adam", run_eagerly=True)  # eager: no tracing cost for a few steps
    batch, labels = _batch(), _labels()
    weights = {"answer": np.ones(6, "float32"), "match": np.ones(6, "float32"),
               "tags": np.ones(6, "float32"), "score": np.zeros(6, "float32")}
    score_before = [w.copy() for w in model.get_layer("score_logits").get_weights()]
    answer_before = model.get_layer("answer_logits").get_weights()[0].copy()
    data = tf.data.Dataset.from_tensors((batch, labels, weights)).repeat(12)
    first = float(model.evaluate(batch, labels, sample_weight=weights, verbose=0, return_dict=True)["loss"])
    history = model.fit(data, epochs=1, verbose=0)
    assert history.history["loss"][-1] < first
    # The regression head saw only zero-weight examples: no gradient reached it.
    for a, b in zip(score_before, model.get_layer("score_logits").get_weights()):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(answer_before, model.get_layer("answer_logits").get_weights()[0])


def test_head_accuracy_counts_only_the_examples_that_train_the_head():
    # Multi-task batches give every example a placeholder label for the heads it does not train
    # (weight 0); a head's accuracy must not count those.
    model = _model("sum", numeric=False)
    model.compile(optimizer="adam", run_eagerly=True)
    batch, labels = _batch(numeric=False), _labels()
    predicted = np.argmax(model.predict(batch, verbose=0)["answer"], axis=-1)
    labels["answer"] = np.where(np.arange(6) < 3, predicted, (predicted + 1) % 4)  # right on 0-2 only
    weights = {"answer": np.array([1, 1, 1, 0, 0, 0], "float32"), "match": np.ones(6, "float32"),
               "tags": np.ones(6, "float32"), "score": np.ones(6, "float32")}
    weighted = model.evaluate(batch, labels, sample_weight=weights, verbose=0, return_dict=True)
    assert weighted["answer_accuracy"] == 1.0
    weights["answer"] = np.array([1, 0, 0, 1, 1, 1], "float32")
    weighted = model.evaluate(batch, labels, sample_weight=weights, verbose=0, return_dict=True)
    np.testing.assert_allclose(weighted["answer_accuracy"], 0.25)
    unweighted = model.evaluate(batch, labels, verbose=0, return_dict=True)
    np.testing.assert_allclose(unweighted["answer_accuracy"], 0.5)


def test_a_locked_image_tower_does_not_train_and_survives_a_round_trip(tmp_path):
    model = _model("cross_attention", numeric=False, freeze_image_encoder=True)
    tower_before = [w.copy() for w in model.image_encoder.get_weights()]
    text_before = [w.copy() for w in model.text_encoder.get_weights()]
    model.compile(optimizer="adam", run_eagerly=True)
    batch = _batch(numeric=False)
    model.fit(tf.data.Dataset.from_tensors((batch, _labels())).repeat(3), epochs=1, verbose=0)
    for a, b in zip(tower_before, model.image_encoder.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(text_before, model.text_encoder.get_weights()))
    model.save(tmp_path / "locked.keras")
    restored = keras.saving.load_model(tmp_path / "locked.keras")
    assert restored.freeze_image_encoder and not restored.image_encoder.trainable
    np.testing.assert_allclose(restored.predict(batch, verbose=0)["answer"], model.predict(batch, verbose=0)["answer"],
                               atol=1e-6)
    assert _model("concat").image_encoder.trainable  # unlocked by default


def test_modality_dropout_only_in_training():
    model = _model("late", numeric=False, modality_dropout=0.9)
    batch = model.with_presence(_batch(numeric=False))
    inference = [model(batch)["answer"].numpy() for _ in range(2)]
    np.testing.assert_array_equal(inference[0], inference[1])
    training = model(batch, training=True)["answer"].numpy()
    assert not np.allclose(training, inference[0], atol=1e-6)
    assert np.all(np.isfinite(training))


def test_late_fusion_regression_is_the_mean_of_per_modality_regressors():
    heads = {"score": {"type": "regression"}}
    model = _model("late", numeric=False, heads=heads)
    batch = _batch(numeric=False)
    both = model(model.with_presence(batch))["score"].numpy()
    image_only = model(model.with_presence(batch, absent="text"))["score"].numpy()
    text_only = model(model.with_presence(batch, absent="image"))["score"].numpy()
    np.testing.assert_allclose(both, (image_only + text_only) / 2, atol=1e-5)


def test_mixed_bfloat16_outputs_float32():
    model = _model("hybrid", dtype="mixed_bfloat16")
    batch, labels = _batch(), _labels()
    out = model(batch)
    for head in HEADS:
        assert out[head].dtype == "float32" and np.all(np.isfinite(out[head].numpy()))
    model.compile(optimizer="adam")
    loss = model.compute_loss(x=batch, y=labels, y_pred=out)
    assert loss.dtype == "float32" and np.isfinite(float(loss))


def test_builds_from_presets_and_config():
    model = zoo.build("shapes-fusion-late-tiny")
    assert isinstance(model, FusionClassifier) and model.fusion_name == "late"
    assert model.heads["answer"]["labels"][:2] == ["no", "yes"]
    assert model.heads["match"]["type"] == "binary"
    image, text = _towers()
    same = fusion_classifier(encoders={"image": image, "text": text}, heads={"m": {"type": "binary"}})
    assert same.modalities == ["image", "text"]


def test_bad_arguments():
    image, text = _towers()
    with pytest.raises(ValueError, match="`fusion` must be one of"):
        fusion_classifier(image, text, fusion="attention", heads=HEADS)
    with pytest.raises(ValueError, match="`heads` must be a non-empty dict"):
        fusion_classifier(image, text)
    with pytest.raises(ValueError, match=r"heads\['x'\]\['type'\]"):
        fusion_classifier(image, text, heads={"x": {"type": "ranking"}})
    with pytest.raises(ValueError, match="num_classes"):
        fusion_classifier(image, text, heads={"x": {"type": "multiclass"}})
    with pytest.raises(ValueError, match="labels"):
        fusion_classifier(image, text, heads={"x": {"type": "multiclass", "num_classes": 3, "labels": ["a"]}})
    with pytest.raises(ValueError, match="unknown keys"):
        fusion_classifier(image, text, heads={"x": {"type": "binary", "weight": 2}})
    with pytest.raises(ValueError, match="`extra_inputs`.*reserved"):
        fusion_classifier(image, text, extra_inputs={"text": 3}, heads=HEADS)
    with pytest.raises(ValueError, match="`modality_dropout`"):
        fusion_classifier(image, text, heads=HEADS, modality_dropout=1.5)
    with pytest.raises(ValueError, match="at least one modality"):
        fusion_classifier(heads=HEADS)
    with pytest.raises(ValueError, match="Unknown `fusion_kwargs` \\['width'\\]"):
        fusion_classifier(image, text, fusion="concat", fusion_kwargs={"width": 3}, heads=HEADS)
    model = fusion_classifier(image, text, heads=HEADS)
    with pytest.raises(ValueError, match="`absent`"):
        model.with_presence(_batch(numeric=False), absent=["audio"])
