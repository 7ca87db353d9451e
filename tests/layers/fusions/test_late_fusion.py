import numpy as np
import pytest
import tensorflow as tf

from mmkeras.layers.fusions import LateFusion


def softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(x, axis=-1):
    return np.log(softmax(x, axis))


def _per_modality(layer, inputs):
    return layer.modality_logits_for(inputs).numpy().astype("float64")  # [B, M, C]


def test_softmax_combinations_match_their_definitions(kit):
    inputs = kit.make_inputs(numeric=True)
    present = np.array([[1, 1, 1], [1, 0, 1]], bool)  # sorted: image, numeric, text
    presence = {"image": present[:, 0], "numeric": present[:, 1], "text": present[:, 2]}
    for combine in ("mean", "learned", "product"):
        layer = LateFusion(num_classes=3, combine=combine)
        layer(inputs)
        if combine == "learned":
            layer.modality_logits.assign(np.array([0.5, -1.0, 2.0], "float32"))
        probs = softmax(layer(inputs, presence=presence).numpy(), axis=-1)
        per = softmax(_per_modality(layer, inputs), axis=-1)
        for row in range(2):
            p = per[row][present[row]]
            if combine == "mean":
                expected = p.mean(0)
            elif combine == "learned":
                w = softmax(np.array([0.5, -1.0, 2.0])[present[row]])
                expected = (w[:, None] * p).sum(0)
            else:
                expected = np.prod(p, axis=0) / np.prod(p, axis=0).sum()
            np.testing.assert_allclose(probs[row], expected, atol=1e-5, err_msg=combine)


def test_sigmoid_combinations_match_their_definitions(kit):
    inputs = kit.make_inputs()
    for combine in ("mean", "product"):
        layer = LateFusion(
            num_classes=3, combine=combine, activation="sigmoid", return_probabilities=True
        )
        probs = layer(inputs).numpy()
        p = 1 / (1 + np.exp(-_per_modality(layer, inputs)))
        if combine == "mean":
            expected = p.mean(1)
        else:
            on, off = np.prod(p, axis=1), np.prod(1 - p, axis=1)
            expected = on / (on + off)
        np.testing.assert_allclose(probs, expected, atol=1e-5, err_msg=combine)


@pytest.mark.parametrize("combine", ["mean", "learned", "product"])
def test_single_present_modality_gives_its_own_prediction(kit, combine):
    inputs = kit.make_inputs()
    layer = LateFusion(num_classes=3, combine=combine)
    logits = layer(inputs, presence=kit.presence_of(inputs, absent="text", rows=(0, 1))).numpy()
    image = _per_modality(layer, inputs)[:, 0]
    np.testing.assert_allclose(log_softmax(logits, -1), log_softmax(image, -1), atol=1e-5)


def test_nothing_present_is_uniform_and_probabilities_sum_to_one(kit):
    inputs = kit.make_inputs()
    layer = LateFusion(num_classes=3, return_probabilities=True)
    presence = {"image": np.array([0.0, 1.0], "float32"), "text": np.array([0.0, 1.0], "float32")}
    probs = layer(inputs, presence=presence).numpy()
    np.testing.assert_allclose(probs[0], np.full(3, 1 / 3), atol=1e-6)
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)


def test_learned_weights_get_gradient_only_from_present(kit):
    inputs = kit.make_inputs()
    layer = LateFusion(num_classes=3, combine="learned")
    presence = kit.presence_of(inputs, absent="text", rows=(0, 1))
    layer(inputs)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(inputs, presence=presence))
    grad = tape.gradient(loss, layer.modality_logits)
    np.testing.assert_allclose(grad.numpy(), 0.0, atol=1e-6)  # one present: weight is 1 anyway


def test_bad_arguments():
    with pytest.raises(ValueError, match="`combine`"):
        LateFusion(num_classes=2, combine="max")
    with pytest.raises(ValueError, match="`activation`"):
        LateFusion(num_classes=2, activation="relu")
    with pytest.raises(ValueError, match="`num_classes`"):
        LateFusion(num_classes=0)
