"""Tests for the built-in Shapes dataset.

The caption / question checkers below are written from the documented grammar, independently
of the generator: every caption is parsed back into a claim and evaluated against the scene's
objects, and every question is answered from the objects.
"""

import collections
import csv
import json
import os
import re

import numpy as np
import pytest
import tensorflow as tf

from mmkeras.data import shapes as shapes_module
from mmkeras.data.shapes import ANSWER_VOCABULARY, COLORS, PALETTE, POSITIONS, RELATIONS, SHAPES, Shapes

# ---------------------------------------------------------------------------------------------
# An independent reader of the caption grammar.
# ---------------------------------------------------------------------------------------------

NOUNS = {
    "circle": ("circle", False),
    "circles": ("circle", True),
    "disk": ("circle", False),
    "disks": ("circle", True),
    "square": ("square", False),
    "squares": ("square", True),
    "box": ("square", False),
    "boxes": ("square", True),
    "triangle": ("triangle", False),
    "triangles": ("triangle", True),
    "star": ("star", False),
    "stars": ("star", True),
    "hexagon": ("hexagon", False),
    "hexagons": ("hexagon", True),
}
SIZE_WORDS = {"small": "small", "little": "small", "large": "large", "big": "large"}
COUNT_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4}
POSITION_CELL = {name: (i // 3, i % 3) for i, name in enumerate(POSITIONS)}
RELATION_WORDS = {
    "left of": "left of",
    "to the left of": "left of",
    "right of": "right of",
    "to the right of": "right of",
    "above": "above",
    "below": "below",
}
POS_RE = "|".join(sorted(POSITIONS, key=len, reverse=True))
REL_RE = "|".join(sorted(RELATION_WORDS, key=len, reverse=True))
COLOR_RE = "|".join(COLORS)


def parse_noun_phrase(text):
    """'a small red circle' / 'two blue stars' -> (count, size, color, shape); None if invalid."""
    words = text.split(" ")
    if len(words) < 2:
        return None
    det, rest = words[0], words[1:]
    if det in ("a", "an"):
        count = 1
        if (det == "an") != (rest[0][0] in "aeiou"):
            return None  # wrong article
    elif det in COUNT_WORDS:
        count = COUNT_WORDS[det]
        if count == 1:
            return None  # the grammar writes 'a'/'an' for single objects in phrases
    else:
        return None
    size = SIZE_WORDS.get(rest[0]) if len(rest) > 1 else None
    if size:
        rest = rest[1:]
    color = rest[0] if len(rest) > 1 and rest[0] in COLORS else None
    if color:
        rest = rest[1:]
    if len(rest) != 1 or rest[0] not in NOUNS:
        return None
    shape, plural = NOUNS[rest[0]]
    if plural != (count > 1):
        return None
    return (count, size, color, shape)


def _count_word(word, verb=None, noun_plural=None):
    n = COUNT_WORDS.get(word)
    if n is None:
        return None
    if verb is not None and (verb == "is") != (n == 1):
        return None
    if noun_plural is not None and noun_plural != (n > 1):
        return None
    return n


def parse_caption(text):
    """Parses a caption into a claim dict, or returns None."""
    m = re.fullmatch(r"there (is|are) (\w+) (shape|shapes|object|objects) in the (image|picture)", text)
    m = m or re.fullmatch(r"a (?:image|picture) with ()(\w+) (shape|shapes|object|objects)", text)
    m = m or re.fullmatch(r"()(\w+) (shape|shapes|object|objects) on a textured background", text)
    if m:
        n = _count_word(m.group(2), m.group(1) or None, m.group(3).endswith("s"))
        return None if n is None else {"kind": "total", "count": n}

    m = re.fullmatch(rf"there (is|are) (\w+) ({COLOR_RE}) (shape|shapes|object|objects)", text)
    m = m or re.fullmatch(
        rf"()(\w+) ({COLOR_RE}) (shape|shapes|object|objects) in the (?:image|picture)", text
    )
    if m:
        n = _count_word(m.group(2), m.group(1) or None, m.group(4).endswith("s"))
        return None if n is None else {"kind": "color_count", "color": m.group(3), "count": n}

    m = re.fullmatch(r"there (is|are) (\w+) (\w+)", text) or re.fullmatch(
        r"()(\w+) (\w+) in the (?:image|picture)", text
    )
    if m and m.group(3) in NOUNS:
        shape, plural = NOUNS[m.group(3)]
        n = _count_word(m.group(2), m.group(1) or None, plural)
        return None if n is None else {"kind": "shape_count", "shape": shape, "count": n}

    m = re.fullmatch(rf"(?:there is )?(.+) in the ({POS_RE})", text) or re.fullmatch(
        rf"(.+) at the ({POS_RE}) of the (?:image|picture)", text
    )
    if m:
        phrase = parse_noun_phrase(m.group(1))
        if phrase is not None and phrase[0] == 1 and phrase[2] is not None:
            return {"kind": "at", "phrase": phrase[1:], "cell": POSITION_CELL[m.group(2)]}

    m = re.fullmatch(rf"(?:there is )?(.+?) ({REL_RE}) (.+)", text)
    if m:
        a, b = parse_noun_phrase(m.group(1)), parse_noun_phrase(m.group(3))
        if a is None or b is None or a[0] != 1 or b[0] != 1 or a[2] is None or b[2] is None:
            return None
        return {"kind": "relation", "a": a[1:], "rel": RELATION_WORDS[m.group(2)], "b": b[1:]}

    m = re.fullmatch(r"(?:a picture of |an image of |a scene with )?(.+)", text)
    parts = re.split(r", | and ", m.group(1))
    groups = [parse_noun_phrase(p) for p in parts]
    if any(g is None or g[2] is None for g in groups):
        return None
    with_size = {g[1] is not None for g in groups}
    if len(with_size) != 1:
        return None  # sizes are given for every group or for none
    return {"kind": "inventory", "groups": groups}


def _fits(obj, size, color, shape):
    return (
        (size is None or obj["size"] == size)
        and (color is None or obj["color"] == color)
        and (shape is None or obj["shape"] == shape)
    )


def _related(a, rel, b):
    return {
        "left of": a["col"] < b["col"],
        "right of": a["col"] > b["col"],
        "above": a["row"] < b["row"],
        "below": a["row"] > b["row"],
    }[rel]


def claim_is_true(claim, objects, at_least=False):
    """Evaluates a parsed claim; counts are exact unless `at_least`."""

    def compare(have, want):
        return have >= want if at_least else have == want

    kind = claim["kind"]
    if kind == "total":
        return compare(len(objects), claim["count"])
    if kind == "color_count":
        return compare(sum(o["color"] == claim["color"] for o in objects), claim["count"])
    if kind == "shape_count":
        return compare(sum(o["shape"] == claim["shape"] for o in objects), claim["count"])
    if kind == "at":
        return any((o["row"], o["col"]) == claim["cell"] and _fits(o, *claim["phrase"]) for o in objects)
    if kind == "relation":
        return any(
            i != j and _fits(a, *claim["a"]) and _fits(b, *claim["b"]) and _related(a, claim["rel"], b)
            for i, a in enumerate(objects)
            for j, b in enumerate(objects)
        )
    with_size = claim["groups"][0][1] is not None
    have = collections.Counter(
        (o["size"] if with_size else None, o["color"], o["shape"]) for o in objects
    )
    want = collections.Counter()
    for count, size, color, shape in claim["groups"]:
        want[(size, color, shape)] += count
    if at_least:
        return all(have[k] >= n for k, n in want.items())
    return have == want


def claim_fields(claim):
    """Flattens a claim into {field: (attribute kind, value)} for one-attribute diffs."""
    kind = claim["kind"]
    if kind == "total":
        return {"count": ("count", claim["count"])}
    if kind == "color_count":
        return {"color": ("color", claim["color"]), "count": ("count", claim["count"])}
    if kind == "shape_count":
        return {"shape": ("shape", claim["shape"]), "count": ("count", claim["count"])}
    if kind == "at":
        size, color, shape = claim["phrase"]
        return {
            "size": ("size", size),
            "color": ("color", color),
            "shape": ("shape", shape),
            "cell": ("position", claim["cell"]),
        }
    if kind == "relation":
        fields = {"rel": ("relation", claim["rel"])}
        for name in ("a", "b"):
            size, color, shape = claim[name]
            fields[f"{name}.size"] = ("size", size)
            fields[f"{name}.color"] = ("color", color)
            fields[f"{name}.shape"] = ("shape", shape)
        return fields
    fields = {"num_groups": ("structure", len(claim["groups"]))}
    for i, (count, size, color, shape) in enumerate(claim["groups"]):
        fields.update(
            {
                f"{i}.count": ("count", count),
                f"{i}.size": ("size", size),
                f"{i}.color": ("color", color),
                f"{i}.shape": ("shape", shape),
            }
        )
    return fields


# ---------------------------------------------------------------------------------------------
# An independent question answerer.
# ---------------------------------------------------------------------------------------------

NUMBERS = ("zero", "one", "two", "three", "four")


def _unique(objects, size=None, color=None, shape=None, cell=None):
    found = [
        o
        for o in objects
        if _fits(o, size, color, shape) and (cell is None or (o["row"], o["col"]) == cell)
    ]
    assert len(found) == 1, f"ambiguous or missing referent {size, color, shape, cell} in {objects}"
    return found[0]


def answer_question(question, objects):
    """Returns (answer, question type) computed from the objects."""
    m = re.fullmatch(r"is there (a|an) (.+)\?", question)
    if m:
        words = m.group(2).split(" ")
        assert (m.group(1) == "an") == (words[0][0] in "aeiou"), question
        if words[-1] == "shape":
            assert len(words) == 2 and words[0] in COLORS, question
            found = any(o["color"] == words[0] for o in objects)
        else:
            assert words[-1] in SHAPES, question
            size = words[0] if len(words) == 3 else None
            color = words[-2] if len(words) >= 2 else None
            assert size in (None, "small", "large") and color in (None,) + COLORS, question
            found = any(_fits(o, size, color, words[-1]) for o in objects)
        return ("yes" if found else "no"), "exists"
    m = re.fullmatch(r"how many (.+) are there\?", question)
    if m:
        words = m.group(1).split(" ")
        if words == ["shapes"]:
            n = len(objects)
        elif len(words) == 2 and words[1] == "shapes":
            assert words[0] in COLORS, question
            n = sum(o["color"] == words[0] for o in objects)
        else:
            assert len(words) == 1 and words[0][:-1] in SHAPES, question
            n = sum(o["shape"] == words[0][:-1] for o in objects)
        return NUMBERS[n], "count"
    m = re.fullmatch(rf"what color is the shape in the ({POS_RE})\?", question)
    if m:
        return _unique(objects, cell=POSITION_CELL[m.group(1)])["color"], "color"
    m = re.fullmatch(r"what color is the (?:(small|large) )?(\w+)\?", question)
    if m:
        assert m.group(2) in SHAPES, question
        return _unique(objects, size=m.group(1), shape=m.group(2))["color"], "color"
    m = re.fullmatch(rf"where is the (?:(small|large) )?(?:({COLOR_RE}) )?(\w+)\?", question)
    if m:
        assert m.group(3) in SHAPES, question
        obj = _unique(objects, size=m.group(1), color=m.group(2), shape=m.group(3))
        return POSITIONS[3 * obj["row"] + obj["col"]], "position"
    raise AssertionError(f"question outside the grammar: {question!r}")


def nearest_color(pixel):
    return COLORS[int(np.argmin(((PALETTE - np.asarray(pixel, np.float32)) ** 2).sum(axis=1)))]


def object_center(obj):
    x0, y0, x1, y1 = obj["bbox"]
    return (y0 + y1) // 2, (x0 + x1) // 2


def signature(scene):
    return tuple(sorted((o["row"], o["col"], o["shape"], o["color"]) for o in scene["objects"]))


# ---------------------------------------------------------------------------------------------
# Fixtures.
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shapes():
    return Shapes(image_size=64, seed=3, num_train=400, num_val=60, num_test=60)


@pytest.fixture(scope="module")
def train(shapes):
    return shapes.scenes("train")


# ---------------------------------------------------------------------------------------------
# Tests.
# ---------------------------------------------------------------------------------------------


def test_deterministic_per_seed_and_split():
    a = Shapes(seed=11, num_train=30, num_val=20, num_test=20)
    b = Shapes(seed=11, num_train=30, num_val=20, num_test=20)
    b.scenes("test")  # a different generation order must not matter
    for split in ("train", "val", "test"):
        np.testing.assert_array_equal(a.images(split), b.images(split))
        strip = lambda scenes: [{k: v for k, v in s.items() if k != "image"} for s in scenes]  # noqa: E731
        assert strip(a.scenes(split)) == strip(b.scenes(split))
    # A split does not depend on the sizes of the others.
    c = Shapes(seed=11, num_train=5, num_val=20, num_test=3)
    np.testing.assert_array_equal(a.images("val"), c.images("val"))


def test_different_seeds_differ():
    a = Shapes(seed=0, num_train=20, num_val=1, num_test=1)
    b = Shapes(seed=1, num_train=20, num_val=1, num_test=1)
    assert not np.array_equal(a.images("train"), b.images("train"))
    assert [signature(s) for s in a.scenes("train")] != [signature(s) for s in b.scenes("train")]
    assert [s["captions"] for s in a.scenes("train")] != [s["captions"] for s in b.scenes("train")]


def test_splits_are_disjoint(shapes):
    seen = {split: {signature(s) for s in shapes.scenes(split)} for split in ("train", "val", "test")}
    assert not seen["train"] & seen["val"]
    assert not seen["train"] & seen["test"]
    assert not seen["val"] & seen["test"]
    assert len(seen["val"]) > 40 and len(seen["test"]) > 40  # not a degenerate handful of scenes


@pytest.mark.parametrize("size", [32, 64, 224])
def test_image_shape_dtype_and_object_colours(size):
    data = Shapes(image_size=size, seed=5, num_train=12, num_val=1, num_test=1)
    images = data.images("train")
    assert images.shape == (12, size, size, 3) and images.dtype == np.uint8
    for scene in data.scenes("train"):
        assert scene["image"].shape == (size, size, 3) and scene["image"].dtype == np.uint8
        for obj in scene["objects"]:
            y, x = object_center(obj)
            assert nearest_color(scene["image"][y, x]) == obj["color"], obj


def test_objects_layout_and_background(train, shapes):
    cell = 64 // 3
    all_sizes, all_counts = set(), collections.Counter()
    for scene in train:
        objects = scene["objects"]
        assert 1 <= len(objects) <= 4
        cells = [(o["row"], o["col"]) for o in objects]
        assert cells == sorted(cells) and len(set(cells)) == len(cells)  # reading order, one per cell
        all_counts[len(objects)] += 1
        for o in objects:
            assert o["shape"] in SHAPES and o["color"] in COLORS and o["size"] in ("small", "large")
            all_sizes.add(o["size"])
            x0, y0, x1, y1 = o["bbox"]
            # Inside its own grid cell, hence never overlapping another object.
            assert o["col"] * cell <= x0 < x1 <= (o["col"] + 1) * cell + 1
            assert o["row"] * cell <= y0 < y1 <= (o["row"] + 1) * cell + 1
        # Empty cells show background: a low-saturation grey, unlike every object colour.
        for r in range(3):
            for c in range(3):
                if (r, c) not in cells:
                    pixel = scene["image"][r * cell + cell // 2, c * cell + cell // 2].astype(int)
                    assert pixel.max() - pixel.min() < 40 and pixel.max() < 160, pixel
    assert all_sizes == {"small", "large"} and set(all_counts) == {1, 2, 3, 4}


def test_cell_attributes_say_what_each_grid_cell_holds(shapes, train):
    cells = shapes.cell_attributes("train")
    assert set(cells) == set(shapes_module.CELL_CLASSES) and all(v.shape == (len(train), 9) for v in cells.values())
    for i, scene in enumerate(train):
        expected = {name: [0] * 9 for name in cells}
        for o in scene["objects"]:
            cell = 3 * o["row"] + o["col"]
            expected["shape"][cell] = 1 + SHAPES.index(o["shape"])
            expected["color"][cell] = 1 + COLORS.index(o["color"])
            expected["size"][cell] = 1 + ("small", "large").index(o["size"])
        assert {name: list(v[i]) for name, v in cells.items()} == expected
    for name, count in shapes_module.CELL_CLASSES.items():
        assert set(np.unique(cells[name])) == set(range(count))  # every class and the empty cell occur


def test_background_is_textured(train):
    image = train[0]["image"].astype(np.float32)
    assert 1.0 < image[:5, :5].std() or 1.0 < image[-5:, -5:].std()
    assert len({int(s["image"][0, 0, 0]) for s in train[:50]}) > 5  # several textures


def test_label_is_shape_of_largest_object_and_classes_are_balanced(shapes, train):
    assert shapes.class_names == SHAPES
    for scene in train:
        large = [o for o in scene["objects"] if o["size"] == "large"]
        assert scene["label"] == SHAPES.index((large or scene["objects"])[0]["shape"])
    counts = collections.Counter(s["label"] for s in train)
    assert set(counts) == set(range(len(SHAPES)))
    assert min(counts.values()) > 0.1 * len(train)


def test_every_caption_is_true_for_its_scene(train):
    kinds = collections.Counter()
    for scene in train:
        captions = scene["captions"]
        assert len(captions) == 5 and len(set(captions)) == 5
        assert len(scene["caption_kinds"]) == len(captions)
        for caption, stated_kind in zip(captions, scene["caption_kinds"]):
            claim = parse_caption(caption)
            assert claim is not None, f"caption outside the grammar: {caption!r}"
            assert claim_is_true(claim, scene["objects"]), (caption, scene["objects"])
            kinds[claim["kind"]] += 1
            # The scene names each caption's kind as this independent parser reads it.
            assert stated_kind == shapes_module.CAPTION_KINDS[claim["kind"]], (caption, stated_kind)
    # Every template family is used, counting and spatial relations included.
    assert set(kinds) == {"inventory", "total", "shape_count", "color_count", "at", "relation"}
    assert any(re.search(r"\b(two|three|four) (red|green|blue|yellow|purple|orange|white|cyan) ", c)
               for s in train for c in s["captions"])


def test_checker_rejects_false_captions():
    """The checker itself must be able to fail."""
    objects = [
        {"shape": "star", "color": "blue", "size": "small", "row": 0, "col": 0},
        {"shape": "square", "color": "green", "size": "large", "row": 0, "col": 2},
    ]
    true = ["a blue star left of a green square", "two shapes on a textured background",
            "a small blue star and a large green box", "there is a big green square in the top right"]
    false = ["a blue star right of a green square", "three shapes on a textured background",
             "a small blue star and a large red box", "there is a big green square in the top left",
             "a blue star", "there are two stars"]
    assert all(claim_is_true(parse_caption(t), objects) for t in true)
    assert not any(claim_is_true(parse_caption(f), objects) for f in false)
    assert parse_caption("a blue stars") is None and parse_caption("an blue star") is None


def test_questions_are_answered_correctly(shapes, train):
    types = collections.Counter()
    exists = collections.Counter()
    vocabulary = set(shapes.answer_vocabulary)
    assert vocabulary == set(ANSWER_VOCABULARY)
    for scene in train:
        questions = scene["questions"]
        assert len(questions) == 5
        scene_exists = []
        for q in questions:
            answer, kind = answer_question(q["question"], scene["objects"])
            assert (q["answer"], q["question_type"]) == (answer, kind), (q, scene["objects"])
            assert q["answer"] in vocabulary
            types[kind] += 1
            if kind == "exists":
                scene_exists.append(answer)
        assert sorted(scene_exists) == ["no", "yes"]  # balanced within every scene
        exists.update(scene_exists)
    assert set(types) == {"exists", "count", "color", "position"}
    assert exists["yes"] == exists["no"]
    count_answers = {q["answer"] for s in train for q in s["questions"] if q["question_type"] == "count"}
    assert {"zero", "one", "two", "three"} <= count_answers


def referent_cells(claim, objects):
    """The cells of the objects a parsed claim talks about, computed independently of the generator."""
    kind = claim["kind"]
    if kind in ("total", "color_count", "shape_count"):
        field = {"total": None, "color_count": "color", "shape_count": "shape"}[kind]
        return sorted(3 * o["row"] + o["col"] for o in objects if field is None or o[field] == claim[field])
    phrases = {"at": lambda: [claim["phrase"]], "relation": lambda: [claim["a"], claim["b"]],
               "inventory": lambda: [g[1:] for g in claim["groups"]]}[kind]()
    return sorted(3 * o["row"] + o["col"] for o in objects if any(_fits(o, *p) for p in phrases))


def test_each_text_names_the_cells_of_the_objects_it_talks_about(train):
    seen = collections.Counter()
    for scene in train:
        objects = scene["objects"]
        at = {3 * o["row"] + o["col"]: o for o in objects}
        for q in scene["questions"]:
            cells, kind = q["cells"], q["question_type"]
            assert cells == sorted(set(cells)) and set(cells) <= set(at), q
            if kind == "exists":
                assert bool(cells) == (q["answer"] == "yes"), (q, objects)
            elif kind == "count":
                assert len(cells) == NUMBERS.index(q["answer"]), (q, objects)
            else:  # one object picked out: its colour or place is the answer
                assert len(cells) == 1, q
                answer = at[cells[0]]["color"] if kind == "color" else POSITIONS[cells[0]]
                assert answer == q["answer"], (q, objects)
            seen[kind, len(cells)] += 1
        for pair in scene["match"]:  # true or false, the cells of the objects that fit its phrases
            assert pair["cells"] == referent_cells(parse_caption(pair["text"]), objects), (pair, objects)
            if pair["label"] == 1:
                assert pair["cells"], pair
            seen[pair["negative_kind"], bool(pair["cells"])] += 1
    assert seen["exists", 0] and seen["count", 3] and seen["shape", False] and seen["position", True]


def test_each_relation_text_lists_the_relations_that_hold_between_its_two_objects(train):
    seen = collections.Counter()
    for scene in train:
        objects = scene["objects"]
        for pair in scene["match"]:
            claim = parse_caption(pair["text"])
            if claim["kind"] != "relation":
                assert pair["relations"] is None, pair
                continue
            holding = [rel for rel in RELATIONS if any(
                a is not b and _fits(a, *claim["a"]) and _fits(b, *claim["b"]) and _related(a, rel, b)
                for a in objects for b in objects)]
            assert pair["relations"] == holding, (pair, objects)
            # the caption is true exactly when the relation it names is among them
            assert (claim["rel"] in pair["relations"]) == (pair["label"] == 1), pair
            seen[pair["negative_kind"], len(holding)] += 1
    # relation negatives (another relation holds), and colour / shape ones whose objects are not there
    assert seen["relation", 1] and seen["relation", 2] and seen["color", 0] and seen["shape", 0] and seen["none", 1]


def test_match_pairs_are_balanced_hard_negatives(train):
    labels = collections.Counter()
    kinds = collections.Counter()
    for scene in train:
        pairs = scene["match"]
        assert len(pairs) == 4
        for item in pairs:
            labels[item["label"]] += 1
            claim = parse_caption(item["text"])
            assert claim is not None, item
            if item["label"] == 1:
                assert item["negative_kind"] == "none" and item["positive"] == item["text"]
                assert claim_is_true(claim, scene["objects"]), item
                continue
            kind = item["negative_kind"]
            kinds[kind] += 1
            assert not claim_is_true(claim, scene["objects"]), (item, scene["objects"])
            if kind != "count":  # false even reading counts as 'at least': not merely incomplete
                assert not claim_is_true(claim, scene["objects"], at_least=True), (item, scene["objects"])
            source = parse_caption(item["positive"])
            assert claim_is_true(source, scene["objects"])
            assert source["kind"] == claim["kind"], item
            before, after = claim_fields(source), claim_fields(claim)
            assert before.keys() == after.keys(), item
            changed = [k for k in before if before[k] != after[k]]
            assert len(changed) == 1, (item, changed)
            assert after[changed[0]][0] == kind, (item, changed)
    assert labels[0] == labels[1]
    assert set(kinds) == {"color", "shape", "count", "relation", "position"}
    assert max(kinds.values()) < 0.4 * sum(kinds.values())


def test_as_dataset_tasks(shapes):
    data = Shapes(seed=2, num_train=6, num_val=1, num_test=1, num_captions=7)
    scenes = data.scenes("train")

    ds = data.as_dataset("train", task="captions")
    spec = ds.element_spec
    assert spec["image"].shape == (64, 64, 3) and spec["image"].dtype == tf.uint8
    assert spec["captions"].shape == (7,) and spec["captions"].dtype == tf.string
    assert spec["image_id"].dtype == tf.int64 and spec["label"].dtype == tf.int64
    elements = list(ds.as_numpy_iterator())
    assert len(elements) == 6
    for element, scene in zip(elements, scenes):
        np.testing.assert_array_equal(element["image"], scene["image"])
        assert [c.decode() for c in element["captions"]] == scene["captions"]
        assert element["image_id"] == scene["image_id"] and element["label"] == scene["label"]

    qa = list(data.as_dataset("train", task="qa").as_numpy_iterator())
    assert len(qa) == 5 * 6
    for element in qa:
        scene = scenes[element["image_id"]]
        np.testing.assert_array_equal(element["image"], scene["image"])
        question = element["question"].decode()
        assert (element["answer"].decode(), element["question_type"].decode()) == answer_question(
            question, scene["objects"]
        )
        assert ANSWER_VOCABULARY[element["answer_id"]] == element["answer"].decode()

    match = list(data.as_dataset("train", task="match").batch(100).as_numpy_iterator())[0]
    assert match["image"].shape == (24, 64, 64, 3) and sorted(set(match["label"])) == [0, 1]
    assert match["label"].sum() == 12
    assert set(match["negative_kind"][match["label"] == 1]) == {b"none"}
    for image, image_id in zip(match["image"], match["image_id"]):
        np.testing.assert_array_equal(image, scenes[image_id]["image"])


def test_empty_split_gives_empty_dataset():
    data = Shapes(num_train=0, num_val=2, num_test=1)
    for task in ("captions", "qa", "match"):
        ds = data.as_dataset("train", task=task)
        assert ds.cardinality().numpy() == 0 and ds.element_spec["image"].shape == (64, 64, 3)


def test_write_produces_jpegs_coco_json_and_csv(tmp_path):
    data = Shapes(seed=4, num_train=2, num_val=9, num_test=1)
    paths = data.write(str(tmp_path), "val")
    scenes = data.scenes("val")

    with open(tmp_path / "captions_val.json") as f:
        coco = json.load(f)
    assert paths["captions_json"] == str(tmp_path / "captions_val.json")
    assert [im["id"] for im in coco["images"]] == list(range(9))
    per_image = collections.Counter(a["image_id"] for a in coco["annotations"])
    assert len({a["id"] for a in coco["annotations"]}) == len(coco["annotations"])
    assert all(per_image[i] >= 5 for i in range(9)) and set(per_image) == set(range(9))
    for im, scene in zip(coco["images"], scenes):
        assert im["width"] == im["height"] == 64
        raw = (tmp_path / "images" / "val" / im["file_name"]).read_bytes()
        image = tf.io.decode_jpeg(raw).numpy()
        assert image.shape == (64, 64, 3)
        assert np.abs(image.astype(int) - scene["image"].astype(int)).mean() < 8  # near-lossless
        for obj in scene["objects"]:  # colours survive JPEG
            y, x = object_center(obj)
            assert nearest_color(image[y, x]) == obj["color"], obj
        captions = [a["caption"] for a in coco["annotations"] if a["image_id"] == im["id"]]
        assert captions == scene["captions"]

    with open(tmp_path / "val.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0].keys()) == ["image_path", "text", "label"]
    assert len(rows) == 9 * 5
    for row in rows:
        assert os.path.exists(tmp_path / row["image_path"])
        scene = scenes[int(os.path.basename(row["image_path"]).split(".")[0])]
        assert row["text"] in scene["captions"] and int(row["label"]) == scene["label"]


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"image_size": 31}, "image_size"),
        ({"image_size": 225}, "image_size"),
        ({"image_size": "64"}, "image_size"),
        ({"num_train": -1}, "num_train"),
        ({"num_val": -5}, "num_val"),
        ({"num_test": 1.5}, "num_test"),
        ({"num_captions": 0}, "num_captions"),
        ({"match_pairs": 0}, "match_pairs"),
        ({"seed": "zero"}, "seed"),
    ],
)
def test_bad_constructor_arguments(kwargs, field):
    with pytest.raises(ValueError, match=field):
        Shapes(**kwargs)


def test_bad_split_task_and_quality(tmp_path):
    data = Shapes(num_train=1, num_val=1, num_test=1)
    with pytest.raises(ValueError, match=r"split.*\('train', 'val', 'test'\).*'validation'"):
        data.scenes("validation")
    with pytest.raises(ValueError, match=r"split"):
        data.as_dataset("dev")
    with pytest.raises(ValueError, match=r"task.*\('captions', 'qa', 'match'\).*'vqa'"):
        data.as_dataset("train", task="vqa")
    with pytest.raises(ValueError, match=r"quality.*\[1, 100\]"):
        data.write(str(tmp_path), "train", quality=0)
    with pytest.raises(ValueError, match=r"image_size.*\[32, 224\]"):
        Shapes(image_size=500)


def test_module_constants():
    assert len(COLORS) >= 6 and len(SHAPES) == 5
    assert len(set(ANSWER_VOCABULARY)) == len(ANSWER_VOCABULARY)
    # Palette colours are far apart, so they stay distinguishable after JPEG.
    distances = np.sqrt(((PALETTE[:, None] - PALETTE[None]) ** 2).sum(-1))
    assert distances[~np.eye(len(COLORS), dtype=bool)].min() > 80
    assert shapes_module.Shapes is Shapes


def test_true_captions_are_exactly_the_true_grammar_sentences(train):
    for scene in train[:40]:
        true = Shapes.true_captions(scene)
        assert set(scene["captions"]) <= true
        for pair in scene["match"]:  # positives in, hard negatives out
            assert (pair["text"] in true) == (pair["label"] == 1), pair
        for caption in true:  # and the independent parser agrees with every one of them
            claim = parse_caption(caption)
            assert claim is not None and claim_is_true(claim, scene["objects"]), (caption, scene["objects"])
    objects = train[0]["objects"]
    assert Shapes.true_captions(objects) == Shapes.true_captions(train[0])


def test_names_a_shape_tells_shape_captions_from_counts_and_colours(train):
    assert Shapes.names_a_shape("a small green triangle in the top left")
    assert Shapes.names_a_shape("two red disks and a blue box")
    assert not Shapes.names_a_shape("there are three shapes in the picture")
    assert not Shapes.names_a_shape("one green object on a textured background")
    assert not Shapes.names_a_shape("starry hexagonal")  # whole words only
    # Over real captions: exactly those that contain one of the grammar's shape nouns.
    nouns = {"circle", "disk", "square", "box", "triangle", "star", "hexagon"}
    for scene in train[:40]:
        for caption in scene["captions"]:
            words = {w[:-2] if w.endswith("xes") else w.rstrip("s") for w in caption.split()}
            assert Shapes.names_a_shape(caption) == bool(words & nouns), caption
