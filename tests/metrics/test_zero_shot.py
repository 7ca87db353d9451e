import numpy as np
import pytest

from mmkeras.metrics import DEFAULT_TEMPLATES
from mmkeras.metrics import zero_shot_accuracy
from mmkeras.metrics import zero_shot_classifier

# A toy text tower: the embedding of a prompt is fixed per (template, class) pair.
CLASS_DIRECTIONS = {"cat": [1.0, 0.0, 0.0], "dog": [0.0, 1.0, 0.0], "bird": [0.0, 0.0, 1.0]}
TEMPLATE_OFFSETS = {"a photo of a {}.": [0.0, 0.0, 0.0], "a sketch of a {}.": [0.5, 0.5, 0.0]}


def _embed(texts, calls=None):
    if calls is not None:
        calls.append(list(texts))
    rows = []
    for text in texts:
        for template, offset in TEMPLATE_OFFSETS.items():
            for name, direction in CLASS_DIRECTIONS.items():
                if text == template.replace("{}", name):
                    # Template scales differ: normalisation must remove them.
                    scale = 3.0 if template.startswith("a sketch") else 1.0
                    rows.append(scale * (np.array(direction) + np.array(offset)))
    assert len(rows) == len(texts), texts
    return np.array(rows, np.float32)


def test_classifier_is_renormalised_mean_of_normalised_templates():
    names = ["cat", "dog", "bird"]
    templates = list(TEMPLATE_OFFSETS)
    classes = zero_shot_classifier(_embed, names, templates)
    assert classes.shape == (3, 3) and classes.dtype == np.float32
    for row, name in zip(classes, names):
        d = np.array(CLASS_DIRECTIONS[name])
        sketch = d + np.array([0.5, 0.5, 0.0])
        mean = (d / np.linalg.norm(d) + sketch / np.linalg.norm(sketch)) / 2
        np.testing.assert_allclose(row, mean / np.linalg.norm(mean), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(classes, axis=1), 1.0, atol=1e-6)


def test_classifier_batches_prompts_class_major():
    calls = []
    zero_shot_classifier(
        lambda t: _embed(t, calls), ["cat", "dog", "bird"], list(TEMPLATE_OFFSETS), batch_size=4
    )
    assert [len(c) for c in calls] == [4, 2]
    assert calls[0][:2] == ["a photo of a cat.", "a sketch of a cat."]


def test_accuracy_on_constructed_example():
    classes = zero_shot_classifier(_embed, ["cat", "dog", "bird"], ["a photo of a {}."])
    np.testing.assert_allclose(classes, np.eye(3), atol=1e-7)
    images = np.array(
        [
            [0.9, 0.1, 0.0],  # cat, right
            [0.1, 0.8, 0.3],  # dog, right
            [0.5, 0.1, 0.4],  # bird, second
            [0.2, 0.5, 0.1],  # bird, third
            [2.0, 0.0, 0.0],  # cat, right (norm does not matter)
        ],
        np.float32,
    )
    labels = np.array([0, 1, 2, 2, 0])
    result = zero_shot_accuracy(images, labels, classes, ks=(1, 2, 5))
    assert result == {"top1": 0.6, "top2": 0.8, "top5": 1.0}
    # Chunking does not change anything.
    assert zero_shot_accuracy(images, labels, classes, ks=(1, 2), chunk_size=2) == {
        "top1": 0.6,
        "top2": 0.8,
    }


def test_ties_count_against_the_image():
    classes = np.eye(2, dtype=np.float32)
    images = np.array([[1.0, 1.0]], np.float32)  # equally close to both classes
    assert zero_shot_accuracy(images, [0], classes, ks=(1, 2)) == {"top1": 0.0, "top2": 1.0}


def test_default_templates_all_have_a_placeholder():
    assert len(DEFAULT_TEMPLATES) >= 1 and all("{}" in t for t in DEFAULT_TEMPLATES)
    classes = zero_shot_classifier(
        lambda texts: np.array([[len(t), 1.0 + t.count("cat")] for t in texts]), ["cat", "dog"]
    )
    assert classes.shape == (2, 2)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"class_names": []}, "class_names"),
        ({"class_names": "cat"}, "class_names"),
        ({"class_names": ["cat", 3]}, "class_names"),
        ({"templates": []}, "templates"),
        ({"templates": ["a photo"]}, "templates"),
        ({"batch_size": 0}, "batch_size"),
        ({"embed_text_fn": lambda t: np.ones((len(t) + 1, 3))}, "embed_text_fn"),
        ({"embed_text_fn": lambda t: np.ones((len(t),))}, "embed_text_fn"),
        ({"embed_text_fn": lambda t: np.zeros((len(t), 3))}, "all-zero"),
        ({"embed_text_fn": lambda t: np.full((len(t), 3), np.nan)}, "NaN"),
    ],
)
def test_classifier_bad_input_raises(kwargs, match):
    args = {
        "embed_text_fn": _embed,
        "class_names": ["cat", "dog"],
        "templates": ["a photo of a {}."],
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        zero_shot_classifier(**args)


@pytest.mark.parametrize(
    "images, labels, classes, kwargs, match",
    [
        (np.ones((2, 3)), [0, 1], np.ones((2, 4)), {}, "same width D"),
        (np.ones((2, 3)), [0], np.ones((2, 3)), {}, "labels` must have shape"),
        (np.ones((2, 3)), [0, 2], np.ones((2, 3)), {}, r"labels` must be in \[0, C\)"),
        (np.ones((2, 3)), [0.0, 1.0], np.ones((2, 3)), {}, "integer class indices"),
        (np.ones((2, 3)), [0, 1], np.ones((2, 3)), {"ks": (0,)}, "ks"),
        (np.ones((2, 3)), [0, 1], np.ones((2, 3)), {"chunk_size": 0}, "chunk_size"),
        (np.ones((3,)), [0, 1], np.ones((2, 3)), {}, "image_embeddings"),
    ],
)
def test_accuracy_bad_input_raises(images, labels, classes, kwargs, match):
    with pytest.raises(ValueError, match=match):
        zero_shot_accuracy(images, labels, classes, **kwargs)
