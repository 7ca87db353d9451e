"""The built-in Shapes dataset: procedural scenes with captions, questions and matching pairs.

Shapes is the embedded default dataset of mmkeras (demo, tests, benchmarks). Every scene is a
small RGB picture of 1 to 4 coloured shapes placed on a 3x3 grid over a low-contrast textured
background, together with annotations that are true for it by construction:

* reference captions from several templates (inventories with counts, totals, per-shape and
  per-colour counts, absolute positions, spatial relations);
* question/answer pairs of four types (``exists``, ``count``, ``color``, ``position``);
* caption-matching pairs: true captions and hard negatives that differ from a true caption in
  exactly one attribute;
* a single class label: the shape of the largest object.

Images are rendered with NumPy only, from alpha masks and background textures precomputed when
the `Shapes` object is built, so generation runs at thousands of scenes per second on one CPU core.
"""

import collections
import csv
import io
import itertools
import json
import math
import random
import zlib

import numpy as np
import tensorflow as tf

from mmkeras.validation import check_int

# === Vocabularies ===

SHAPES = ("circle", "square", "triangle", "star", "hexagon")
COLORS = ("red", "green", "blue", "yellow", "purple", "orange", "white", "cyan")
SIZES = ("small", "large")
POSITIONS = (
    "top left",
    "top center",
    "top right",
    "middle left",
    "center",
    "middle right",
    "bottom left",
    "bottom center",
    "bottom right",
)
RELATIONS = ("left of", "right of", "above", "below")
NUMBER_WORDS = ("zero", "one", "two", "three", "four")
SPLITS = ("train", "val", "test")
TASKS = ("captions", "qa", "match")
QUESTION_TYPES = ("exists", "count", "color", "position")
NEGATIVE_KINDS = ("color", "shape", "count", "relation", "position")
# The claim a caption makes, by the grammar's claim kind: every object listed with exact counts, the total
# count, the count of one shape or one colour, an object's grid position, a relation between two objects.
CAPTION_KINDS = {"inventory": "inventory", "total": "total", "shape_count": "shape_count",
                 "color_count": "color_count", "at": "position", "relation": "relation"}
ANSWER_VOCABULARY = ("no", "yes") + NUMBER_WORDS + COLORS + POSITIONS
# The classes of each per-cell attribute of `Shapes.cell_attributes` (an empty cell is class 0).
CELL_CLASSES = {"shape": 1 + len(SHAPES), "color": 1 + len(COLORS), "size": 1 + len(SIZES)}

MIN_IMAGE_SIZE = 32
MAX_IMAGE_SIZE = 224
MAX_OBJECTS = 4
MAX_CAPTIONS = 20

# RGB values chosen far apart in colour space so they survive JPEG compression; the
# background is a dark, low-saturation grey texture that none of them resembles.
PALETTE = np.array(
    [
        [220, 40, 40],  # red
        [40, 170, 60],  # green
        [40, 80, 230],  # blue
        [245, 225, 50],  # yellow
        [150, 60, 200],  # purple
        [250, 130, 20],  # orange
        [240, 240, 240],  # white
        [40, 210, 220],  # cyan
    ],
    dtype=np.float32,
)
_PALETTE_LISTS = PALETTE.tolist()

# Words used in captions. Synonyms are few on purpose; a caption uses one synonym set throughout.
_SHAPE_WORDS = {
    "circle": ("circle", "disk"),
    "square": ("square", "box"),
    "triangle": ("triangle",),
    "star": ("star",),
    "hexagon": ("hexagon",),
}
_PLURALS = {
    "circle": "circles",
    "disk": "disks",
    "square": "squares",
    "box": "boxes",
    "triangle": "triangles",
    "star": "stars",
    "hexagon": "hexagons",
    "shape": "shapes",
    "object": "objects",
}
_NAMED_SHAPE_WORDS = frozenset(
    word for words in _SHAPE_WORDS.values() for one in words for word in (one, _PLURALS[one])
)
_SIZE_WORDS = {"small": ("small", "little"), "large": ("large", "big")}
_GENERIC_NOUNS = ("shape", "object")
_IMAGE_NOUNS = ("image", "picture")
_INVENTORY_PREFIXES = ("", "a picture of ", "an image of ", "a scene with ")
_RELATION_WORDS = {
    "left of": ("left of", "to the left of"),
    "right of": ("right of", "to the right of"),
    "above": ("above",),
    "below": ("below",),
}

_NUM_BACKGROUNDS = 24
_NUM_ROTATIONS = 5
_MAX_ROTATION_DEG = 16.0
_SUPERSAMPLE = 4
_LARGE_FRACTION = 0.86  # of a grid cell
_SMALL_FRACTION = 0.55
_OBJECT_COUNT_CUMULATIVE = (0.15, 0.4, 0.7)  # P(1 object) = 0.15, P(2) = 0.25, P(3) = P(4) = 0.3
# A scene layout goes to train, val or test by a hash into ten buckets: 8 / 1 / 1.
_SPLIT_OF_BUCKET = ("train",) * 8 + ("val", "test")


# === Geometry (precomputed once per Shapes instance) ===


def _unit_polygon(shape):
    """Vertices of `shape` in [-1, 1] coordinates (y down), or None for the circle."""
    if shape == "square":
        h = 0.78
        return np.array([[-h, -h], [h, -h], [h, h], [-h, h]])
    if shape == "triangle":
        r = 0.9
        angles = np.deg2rad([-90.0, 30.0, 150.0])
        pts = np.stack([r * np.cos(angles), r * np.sin(angles)], axis=1)
        pts[:, 1] -= (pts[:, 1].max() + pts[:, 1].min()) / 2  # centre the bounding box
        return pts
    if shape == "star":
        angles = np.deg2rad(-90.0 + 36.0 * np.arange(10))
        radii = np.where(np.arange(10) % 2 == 0, 1.0, 0.45)
        return np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)
    if shape == "hexagon":
        angles = np.deg2rad(60.0 * np.arange(6))
        return 0.95 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return None


def _inside_polygon(x, y, polygon):
    """Even-odd point-in-polygon test, vectorised over points."""
    inside = np.zeros(x.shape, dtype=bool)
    n = len(polygon)
    for i in range(n):
        x1, y1 = polygon[i]
        x2, y2 = polygon[(i + 1) % n]
        if y1 == y2:
            continue
        crosses = (y1 > y) != (y2 > y)
        x_cross = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
        inside ^= crosses & (x < x_cross)
    return inside


def _alpha_mask(shape, diameter, angle_deg):
    """Anti-aliased coverage mask float32 [d, d, 1] of a rotated shape."""
    s = _SUPERSAMPLE
    coords = (np.arange(diameter * s) + 0.5) / s  # sub-pixel centres in pixel units
    u = coords / (diameter / 2.0) - 1.0
    x, y = np.meshgrid(u, u)
    theta = np.deg2rad(angle_deg)
    # Rotate the sample points by -theta instead of rotating the shape by theta.
    xr = np.cos(theta) * x + np.sin(theta) * y
    yr = -np.sin(theta) * x + np.cos(theta) * y
    polygon = _unit_polygon(shape)
    if polygon is None:
        covered = xr * xr + yr * yr <= 0.95**2
    else:
        covered = _inside_polygon(xr, yr, polygon)
    alpha = covered.reshape(diameter, s, diameter, s).mean(axis=(1, 3))
    return alpha.astype(np.float32)[:, :, None]


def _background_bank(image_size, seed, count):
    """Low-contrast grey textures (stripes + noise), uint8 [count, H, W, 3]."""
    rng = np.random.default_rng([seed, 0x5EA9E5])
    yy, xx = np.mgrid[0:image_size, 0:image_size].astype(np.float32)
    bank = np.empty((count, image_size, image_size, 3), dtype=np.uint8)
    for i in range(count):
        base = rng.uniform(70.0, 110.0)
        tint = rng.uniform(-6.0, 6.0, size=3)
        angle = rng.uniform(0.0, np.pi)
        period = rng.uniform(5.0, 14.0) * image_size / 64.0
        amplitude = rng.uniform(4.0, 10.0)
        phase = rng.uniform(0.0, 2 * np.pi)
        stripes = amplitude * np.sin(
            2 * np.pi * (np.cos(angle) * xx + np.sin(angle) * yy) / period + phase
        )
        noise = rng.normal(0.0, rng.uniform(3.0, 7.0), size=(image_size, image_size, 1))
        texture = base + stripes[:, :, None] + noise + tint
        bank[i] = np.clip(np.rint(texture), 0, 255).astype(np.uint8)
    return bank


# === Scene logic: objects, claims and their truth ===


class _Rng:
    """Deterministic random choices built on `random.Random.random` only.

    `random.Random.choice`/`randrange` cost several Python calls each; generation makes
    hundreds of draws per scene, so these one-liners keep it fast.
    """

    __slots__ = ("random",)

    def __init__(self, seed):
        self.random = random.Random(seed).random

    def randrange(self, n):
        return int(self.random() * n)

    def choice(self, seq):
        return seq[int(self.random() * len(seq))]

    def uniform(self, low, high):
        return low + (high - low) * self.random()

    def shuffle(self, items):
        rand = self.random
        for i in range(len(items) - 1, 0, -1):
            j = int(rand() * (i + 1))
            items[i], items[j] = items[j], items[i]

    def weighted_order(self, values, prior):
        """`values` (counts 1..4) in a random order, drawn without replacement by `prior`."""
        values = list(values)
        weights = [prior[v - 1] for v in values]
        while values:
            u = self.random() * sum(weights)
            i = 0
            while i < len(values) - 1 and u >= weights[i]:
                u -= weights[i]
                i += 1
            yield values.pop(i)
            weights.pop(i)

    def sample(self, seq, k):
        pool = list(seq)
        rand = self.random
        for i in range(k):
            j = i + int(rand() * (len(pool) - i))
            pool[i], pool[j] = pool[j], pool[i]
        return pool[:k]


_Obj = collections.namedtuple("_Obj", ["shape", "color", "size", "row", "col"])


def _count(items):
    """Occurrences of each item (a plain-dict `collections.Counter`, faster for a few items)."""
    counts = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return counts


def _matches(obj, phrase):
    """Whether `obj` fits a noun phrase (size or None, color or None, shape or None)."""
    size, color, shape = phrase
    return (
        (shape is None or obj.shape == shape)
        and (color is None or obj.color == color)
        and (size is None or obj.size == size)
    )


def _relation_holds(a, rel, b):
    if rel == "left of":
        return a.col < b.col
    if rel == "right of":
        return a.col > b.col
    if rel == "above":
        return a.row < b.row
    return a.row > b.row


def _holds(claim, objs, at_least=False):
    """Truth of a claim. Counts are exact; `at_least=True` reads them as lower bounds."""
    kind = claim[0]
    if kind == "inventory":
        _, with_size, groups = claim
        have = {}
        for o in objs:
            key = (o.size if with_size else None, o.color, o.shape)
            have[key] = have.get(key, 0) + 1
        want = {}
        for count, size, color, shape in groups:
            want[(size, color, shape)] = want.get((size, color, shape), 0) + count
        if at_least:
            return all(have.get(key, 0) >= n for key, n in want.items())
        return have == want
    if kind == "total":
        return len(objs) >= claim[1] if at_least else len(objs) == claim[1]
    if kind in ("shape_count", "color_count"):
        field = 0 if kind == "shape_count" else 1
        n = sum(1 for o in objs if o[field] == claim[1])
        return n >= claim[2] if at_least else n == claim[2]
    if kind == "at":
        _, phrase, (row, col) = claim
        return any(o.row == row and o.col == col and _matches(o, phrase) for o in objs)
    if kind == "relation":
        _, a_phrase, rel, b_phrase = claim
        return any(
            a is not b and _matches(a, a_phrase) and _matches(b, b_phrase) and _relation_holds(a, rel, b)
            for a in objs
            for b in objs
        )
    raise ValueError(f"unknown claim kind {kind!r}")


def _is_hard_negative(claim, objs, kind):
    """Whether a mutated claim is false for the scene.

    Count negatives only need to be false with exact counts ("one circle" when there are two);
    the other kinds must also be false with counts read as "at least", so that changing a
    colour, shape or place never yields a caption that is merely incomplete.
    """
    if _holds(claim, objs):
        return False
    return kind == "count" or claim[0] in ("at", "relation") or not _holds(claim, objs, at_least=True)


def _cells_of(objs, fits):
    """Row-major grid cells (0..8) of the objects that `fits`, in order."""
    return sorted(3 * o.row + o.col for o in objs if fits(o))


def _referent_cells(claim, objs):
    """The grid cells of the objects a claim talks about, true or false: those that fit one of its noun
    phrases, or its shape or colour (count claims), or every object (a total)."""
    kind = claim[0]
    if kind == "total":
        return _cells_of(objs, lambda o: True)
    if kind in ("shape_count", "color_count"):
        return _cells_of(objs, lambda o: (o.shape if kind == "shape_count" else o.color) == claim[1])
    phrases = [_phrase_of(claim, slot) for slot in _phrase_slots(claim)]
    return _cells_of(objs, lambda o: any(_matches(o, phrase) for phrase in phrases))


def _relations_holding(claim, objs):
    """For a relation claim ("A <rel> B", true or false), the relations of `RELATIONS` that would make it
    true (some object fitting A is that relation of another fitting B); None for any other claim."""
    if claim[0] != "relation":
        return None
    return [rel for rel in RELATIONS if _holds(("relation", claim[1], rel, claim[3]), objs)]


def _sample_phrase(obj, rng, p_size=0.4):
    return (obj.size if rng.random() < p_size else None, obj.color, obj.shape)


def _sample_claim(kind, objs, rng):
    """A random claim of `kind` that is true for `objs`."""
    if kind == "inventory":
        with_size = rng.random() < 0.4
        keys = [(o.size if with_size else None, o.color, o.shape) for o in objs]
        counts = _count(keys)
        order = list(dict.fromkeys(keys))  # reading order of first occurrence
        if rng.random() < 0.5:
            rng.shuffle(order)
        return ("inventory", with_size, tuple((counts[k],) + k for k in order))
    if kind == "total":
        return ("total", len(objs))
    if kind == "shape_count":
        shape = rng.choice(objs).shape
        return ("shape_count", shape, sum(1 for o in objs if o.shape == shape))
    if kind == "color_count":
        color = rng.choice(objs).color
        return ("color_count", color, sum(1 for o in objs if o.color == color))
    if kind == "at":
        obj = rng.choice(objs)
        return ("at", _sample_phrase(obj, rng), (obj.row, obj.col))
    if kind == "relation":
        a, b = rng.sample(objs, 2)
        rels = [r for r in RELATIONS if _relation_holds(a, r, b)]
        if a.row == b.row or a.col == b.col:
            rel = rels[0]
        else:
            rel = rng.choice(rels)
        return ("relation", _sample_phrase(a, rng, 0.3), rel, _sample_phrase(b, rng, 0.3))
    raise ValueError(f"unknown claim kind {kind!r}")


def _phrase_slots(claim):
    """Positions of noun phrases inside a claim, as (index path) tuples."""
    if claim[0] == "inventory":
        return [("group", i) for i in range(len(claim[2]))]
    if claim[0] == "at":
        return [("at",)]
    if claim[0] == "relation":
        return [("a",), ("b",)]
    return []


def _phrase_of(claim, slot):
    """The (size, color, shape) phrase at `slot` of a claim."""
    if slot[0] == "group":
        return claim[2][slot[1]][1:]
    if slot[0] == "at":
        return claim[1]
    return claim[1] if slot[0] == "a" else claim[3]


def _replace_in_phrase(claim, slot, field, value):
    """Copy of `claim` with attribute `field` (0 size, 1 color, 2 shape) of a phrase replaced."""
    if slot[0] == "group":
        groups = list(claim[2])
        group = list(groups[slot[1]])
        group[field + 1] = value
        groups[slot[1]] = tuple(group)
        return (claim[0], claim[1], tuple(groups))
    if slot[0] == "at":
        phrase = list(claim[1])
        phrase[field] = value
        return ("at", tuple(phrase), claim[2])
    index = 1 if slot[0] == "a" else 3
    phrase = list(claim[index])
    phrase[field] = value
    out = list(claim)
    out[index] = tuple(phrase)
    return tuple(out)


def _plausible(claim):
    """Rejects mutated claims that no scene could produce (so the text gives nothing away)."""
    if claim[0] == "inventory":
        keys = [g[1:] for g in claim[2]]
        return len(set(keys)) == len(keys) and sum(g[0] for g in claim[2]) <= MAX_OBJECTS
    return True


def _mutations(claim, kind, objs, rng):
    """Candidate claims differing from `claim` in one attribute of type `kind` (lazy)."""
    if kind in ("color", "shape"):
        field, values = (1, COLORS) if kind == "color" else (2, SHAPES)
        if claim[0] == ("color_count" if kind == "color" else "shape_count"):
            others = [v for v in values if v != claim[1]]
            rng.shuffle(others)
            for value in others:
                yield (claim[0], value, claim[2])
            return
        slots = _phrase_slots(claim)
        rng.shuffle(slots)
        for slot in slots:
            others = [v for v in values if v != _phrase_of(claim, slot)[field]]
            rng.shuffle(others)
            for value in others:
                yield _replace_in_phrase(claim, slot, field, value)
    elif kind == "count":
        # Any other count (exact counts make a lower one false too), drawn in an order that
        # follows how often each count occurs in true captions of the same kind, so that the
        # count words of negatives do not give them away.
        prior = _COUNT_PRIOR.get(claim[0])
        if claim[0] == "inventory":
            order = list(range(len(claim[2])))
            rng.shuffle(order)
            for i in order:
                current = claim[2][i][0]
                for n in rng.weighted_order([n for n in range(1, MAX_OBJECTS + 1) if n != current], prior):
                    groups = list(claim[2])
                    groups[i] = (n,) + groups[i][1:]
                    yield (claim[0], claim[1], tuple(groups))
        elif claim[0] == "total":
            for n in rng.weighted_order([n for n in range(1, MAX_OBJECTS + 1) if n != claim[1]], prior):
                yield ("total", n)
        elif claim[0] in ("shape_count", "color_count"):
            for n in rng.weighted_order([n for n in range(1, MAX_OBJECTS + 1) if n != claim[2]], prior):
                yield (claim[0], claim[1], n)
    elif kind == "relation" and claim[0] == "relation":
        rels = [r for r in RELATIONS if r != claim[2]]
        rng.shuffle(rels)
        for rel in rels:
            yield ("relation", claim[1], rel, claim[3])
    elif kind == "position" and claim[0] == "at":
        cells = [(r, c) for r in range(3) for c in range(3) if (r, c) != claim[2]]
        rng.shuffle(cells)
        for cell in cells:
            yield ("at", claim[1], cell)


# How often each count (1..4) occurs in true claims of each kind (measured on generated scenes).
_COUNT_PRIOR = {
    "inventory": (0.9, 0.08, 0.015, 0.005),
    "total": (0.15, 0.25, 0.3, 0.3),
    "shape_count": (0.52, 0.33, 0.12, 0.03),
    "color_count": (0.59, 0.3, 0.09, 0.02),
}

# Claim kinds that can carry each kind of hard negative.
_CLAIMS_FOR_NEGATIVE = {
    "color": ("inventory", "color_count", "at", "relation"),
    "shape": ("inventory", "shape_count", "at", "relation"),
    "count": ("inventory", "total", "shape_count", "color_count"),
    "relation": ("relation",),
    "position": ("at",),
}


# === Rendering claims as text ===


def _article(phrase):
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def _noun(shape, style, plural=False):
    words = _SHAPE_WORDS[shape]
    word = words[style["syn"] % len(words)]
    return _PLURALS[word] if plural else word


def _size_word(size, style):
    words = _SIZE_WORDS[size]
    return words[style["syn"] % len(words)]


def _counted(count, size, color, shape, style):
    words = ([_size_word(size, style)] if size else []) + ([color] if color else [])
    words.append(_noun(shape, style, plural=count != 1))
    phrase = " ".join(words)
    return _article(phrase) if count == 1 else f"{NUMBER_WORDS[count]} {phrase}"


def _generic(count, style):
    noun = _GENERIC_NOUNS[style["noun"]]
    return noun if count == 1 else _PLURALS[noun]


def _listing(parts):
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def _render(claim, style):
    """Deterministic text of a claim under a style (template and synonym choices)."""
    kind = claim[0]
    image = _IMAGE_NOUNS[style["image"]]
    form = style["form"]
    if kind == "inventory":
        parts = [_counted(*group, style) for group in claim[2]]
        return _INVENTORY_PREFIXES[style["prefix"]] + _listing(parts)
    if kind == "total":
        n = claim[1]
        verb = "is" if n == 1 else "are"
        noun = _generic(n, style)
        return (
            f"there {verb} {NUMBER_WORDS[n]} {noun} in the {image}",
            f"a {image} with {NUMBER_WORDS[n]} {noun}",
            f"{NUMBER_WORDS[n]} {noun} on a textured background",
        )[form % 3]
    if kind == "shape_count":
        _, shape, n = claim
        verb = "is" if n == 1 else "are"
        noun = _noun(shape, style, plural=n != 1)
        return (f"there {verb} {NUMBER_WORDS[n]} {noun}", f"{NUMBER_WORDS[n]} {noun} in the {image}")[
            form % 2
        ]
    if kind == "color_count":
        _, color, n = claim
        verb = "is" if n == 1 else "are"
        noun = _generic(n, style)
        return (
            f"there {verb} {NUMBER_WORDS[n]} {color} {noun}",
            f"{NUMBER_WORDS[n]} {color} {noun} in the {image}",
        )[form % 2]
    if kind == "at":
        _, (size, color, shape), (row, col) = claim
        phrase = _counted(1, size, color, shape, style)
        where = POSITIONS[3 * row + col]
        return (
            f"{phrase} in the {where}",
            f"there is {phrase} in the {where}",
            f"{phrase} at the {where} of the {image}",
        )[form % 3]
    if kind == "relation":
        _, a, rel, b = claim
        rel_words = _RELATION_WORDS[rel]
        text = f"{_counted(1, *a, style)} {rel_words[style['rel'] % len(rel_words)]} {_counted(1, *b, style)}"
        return text if form % 2 == 0 else "there is " + text
    raise ValueError(f"unknown claim kind {kind!r}")


_STYLE_FIELDS = (
    ("form", 6),
    ("syn", 2),
    ("noun", 2),
    ("image", 2),
    ("prefix", len(_INVENTORY_PREFIXES)),
    ("rel", 2),
)


def _all_styles():
    styles = []
    for code in range(math.prod(n for _, n in _STYLE_FIELDS)):
        style = {}
        for name, n in _STYLE_FIELDS:
            code, style[name] = divmod(code, n)
        styles.append(style)
    return tuple(styles)


# Every combination of template and synonym choices (a few hundred small dicts, never mutated).
_STYLES = _all_styles()


def _sample_style(rng):
    """Template and synonym choices for rendering a claim."""
    return _STYLES[rng.randrange(len(_STYLES))]


# The style fields each claim kind's text depends on (the others leave it unchanged).
_KIND_STYLE_FIELDS = {
    "inventory": ("syn", "prefix"),
    "total": ("form", "noun", "image"),
    "shape_count": ("form", "syn", "image"),
    "color_count": ("form", "noun", "image"),
    "at": ("form", "syn", "image"),
    "relation": ("form", "syn", "rel"),
}
_KIND_STYLES = {
    kind: tuple(style for style in _STYLES if all(style[f] == 0 for f, _ in _STYLE_FIELDS if f not in fields))
    for kind, fields in _KIND_STYLE_FIELDS.items()
}


def _true_claims(objs):
    """Every claim the caption grammar can make that is true for `objs`."""
    claims = [("total", len(objs))]
    for shape in {o.shape for o in objs}:
        claims.append(("shape_count", shape, sum(1 for o in objs if o.shape == shape)))
    for color in {o.color for o in objs}:
        claims.append(("color_count", color, sum(1 for o in objs if o.color == color)))
    for with_size in (False, True):
        keys = [(o.size if with_size else None, o.color, o.shape) for o in objs]
        counts = _count(keys)
        for order in itertools.permutations(dict.fromkeys(keys)):
            claims.append(("inventory", with_size, tuple((counts[k],) + k for k in order)))

    def phrases(obj):
        return [(None, obj.color, obj.shape), (obj.size, obj.color, obj.shape)]

    for obj in objs:
        claims.extend(("at", phrase, (obj.row, obj.col)) for phrase in phrases(obj))
    for a in objs:
        for b in objs:
            if a is b:
                continue
            for rel in RELATIONS:
                if _relation_holds(a, rel, b):
                    claims.extend(("relation", pa, rel, pb) for pa in phrases(a) for pb in phrases(b))
    return claims


# === Questions ===


def _questions(objs, rng):
    """Five questions: one 'yes' and one 'no' existence question, count, color and position."""
    questions = []
    shapes_present = {o.shape for o in objs}
    colors_present = {o.color for o in objs}

    # Existence: one question answered yes and one answered no, each in a random form.
    for answer in ("yes", "no"):
        form = rng.randrange(4)
        if form == 0:
            absent = [s for s in SHAPES if s not in shapes_present]
            phrase = rng.choice(sorted(shapes_present) if answer == "yes" else absent)
            fits = (None, None, phrase)
        elif form == 1:
            absent = [c for c in COLORS if c not in colors_present]
            color = rng.choice(sorted(colors_present) if answer == "yes" else absent)
            phrase, fits = color + " shape", (None, color, None)
        else:
            with_size = form == 3
            present = {(o.size if with_size else None, o.color, o.shape) for o in objs}
            if answer == "yes":
                key = rng.choice(sorted(present, key=str))
            else:
                while True:
                    key = (rng.choice(SIZES) if with_size else None, rng.choice(COLORS), rng.choice(SHAPES))
                    if key not in present:
                        break
            phrase, fits = " ".join(w for w in key if w), key
        questions.append((f"is there {_article(phrase)}?", answer, "exists",
                          _cells_of(objs, lambda o, fits=fits: _matches(o, fits))))
    if rng.random() < 0.5:
        questions.reverse()

    # Counting: a shape, a colour or everything; the subject is present 75% of the time.
    form = rng.randrange(3)
    if form == 0:
        shape = rng.choice(objs).shape if rng.random() < 0.75 else rng.choice(SHAPES)
        n = sum(1 for o in objs if o.shape == shape)
        questions.append((f"how many {_PLURALS[shape]} are there?", NUMBER_WORDS[n], "count",
                          _cells_of(objs, lambda o: o.shape == shape)))
    elif form == 1:
        color = rng.choice(objs).color if rng.random() < 0.75 else rng.choice(COLORS)
        n = sum(1 for o in objs if o.color == color)
        questions.append((f"how many {color} shapes are there?", NUMBER_WORDS[n], "count",
                          _cells_of(objs, lambda o: o.color == color)))
    else:
        questions.append(("how many shapes are there?", NUMBER_WORDS[len(objs)], "count",
                          _cells_of(objs, lambda o: True)))

    # Colour of an object picked out unambiguously.
    shape_counts = _count(o.shape for o in objs)
    size_shape_counts = _count((o.size, o.shape) for o in objs)
    candidates = []
    for o in objs:
        cell = [3 * o.row + o.col]
        if shape_counts[o.shape] == 1:
            candidates.append((f"what color is the {o.shape}?", o.color, cell))
        elif size_shape_counts[(o.size, o.shape)] == 1:
            candidates.append((f"what color is the {o.size} {o.shape}?", o.color, cell))
        candidates.append((f"what color is the shape in the {POSITIONS[cell[0]]}?", o.color, cell))
    question, answer, cells = rng.choice(candidates)
    questions.append((question, answer, "color", cells))

    # Position of an object picked out unambiguously (falls back to counting if none is).
    color_shape_counts = _count((o.color, o.shape) for o in objs)
    full_counts = _count((o.size, o.color, o.shape) for o in objs)
    candidates = []
    for o in objs:
        cell = [3 * o.row + o.col]
        where = POSITIONS[cell[0]]
        if shape_counts[o.shape] == 1:
            candidates.append((f"where is the {o.shape}?", where, cell))
        if color_shape_counts[(o.color, o.shape)] == 1:
            candidates.append((f"where is the {o.color} {o.shape}?", where, cell))
        elif full_counts[(o.size, o.color, o.shape)] == 1:
            candidates.append((f"where is the {o.size} {o.color} {o.shape}?", where, cell))
    if candidates:
        question, answer, cells = rng.choice(candidates)
        questions.append((question, answer, "position", cells))
    else:
        shape = rng.choice(SHAPES)
        n = sum(1 for o in objs if o.shape == shape)
        questions.append((f"how many {_PLURALS[shape]} are there?", NUMBER_WORDS[n], "count",
                          _cells_of(objs, lambda o: o.shape == shape)))
    return [{"question": q, "answer": a, "question_type": t, "cells": c} for q, a, t, c in questions]


# === The dataset ===


class Shapes:
    """Procedural scenes of coloured shapes with captions, questions and matching pairs.

    Each scene is an RGB `uint8` image of 1 to 4 objects, one per cell of a 3x3 grid, on a
    low-contrast textured grey background. An object has a shape (`SHAPES`: circle, square,
    triangle, star, hexagon), a colour (`COLORS`: eight well separated colours), a size
    (`SIZES`: small or large), a grid `row` and `col` (0..2, row 0 at the top) and a pixel
    `bbox` (x0, y0, x1, y1, end exclusive; the object is centred on the bbox centre). Objects never
    overlap. Annotations are true for the scene by construction:

    * `captions`: `num_captions` distinct sentences (lower case, no final period), e.g.
      "two red circles and a blue star", "there are three shapes in the picture",
      "a small green triangle in the top left", "a blue star left of a green square".
      Count words are exact ("two circles" means exactly two); relations compare grid cells
      ("left of": smaller column, "above": smaller row). `caption_kinds` names the claim each
      caption makes (`CAPTION_KINDS`: inventory, total, shape_count, color_count, position, relation).
    * `questions`: five per scene, dicts {"question", "answer", "question_type", "cells"}; one
      existence question answered "yes" and one answered "no", one count question (answers
      "zero" to "four"), one colour question about an unambiguous object and one position
      question (answers in `POSITIONS`; a count question instead when no object is unique).
      Every answer is in `answer_vocabulary`. `cells` lists the grid cells (row-major, 0..8) of
      the objects the question asks about: those that fit its noun phrase ([] for a "no"), the
      counted ones, or the one whose colour or place is asked.
    * `match`: `match_pairs` (true, false) caption pairs, dicts {"text", "label", "negative_kind",
      "positive", "cells", "relations"}; `cells` lists the cells of the objects that fit the caption's
      noun phrases (or its counted shape or colour; every object for a total), true caption or not;
      for a relation caption ("A <rel> B"), `relations` lists the relations (of `RELATIONS`) that
      hold between an object fitting A and another fitting B, the one it names or not (None for the
      other kinds).
      The false caption ("hard negative") is the true one with exactly one attribute changed:
      `negative_kind` is "color", "shape", "count" (an exact count changed), "relation"
      (left/right/above/below) or "position" (grid cell); it is "none" for positives, and
      "positive" holds the true caption the pair was built from. Labels are 50/50 by construction.
    * `label`: index in `class_names` (= `SHAPES`) of the shape of the largest object; among
      equally large objects the first in reading order (top row first, then left to right).

    Splits are deterministic functions of `seed` (and of their own size) and disjoint: a scene
    is assigned to a split by a hash of its signature (the grid cells, shapes and colours of its
    objects; sizes and jitter excluded), so no scene layout appears in two splits. Splits are
    generated lazily, on first use, and cached.

    Args:
        image_size: side of the square images in pixels, in [32, 224]. Below 64 the small
            shapes are only a few pixels wide.
        seed: int, the seed of everything (textures, scenes, annotations).
        num_train: number of scenes in the "train" split.
        num_val: number of scenes in the "val" split.
        num_test: number of scenes in the "test" split.
        num_captions: reference captions per scene, in [1, 20].
        match_pairs: (true, false) caption pairs per scene for the "match" task, >= 1.

    Example:

    ```python
    from mmkeras.data.shapes import Shapes

    shapes = Shapes(image_size=64, seed=0, num_train=8, num_val=4, num_test=4)
    scene = shapes.scenes("train")[0]
    print(scene["image"].shape, scene["objects"][0]["shape"], scene["captions"][0])
    ds = shapes.as_dataset("train", task="qa").batch(4)
    batch = next(iter(ds))
    print(batch["question"].numpy()[0], batch["answer"].numpy()[0])
    ```
    """

    SHAPES = SHAPES
    COLORS = COLORS
    SIZES = SIZES
    POSITIONS = POSITIONS
    RELATIONS = RELATIONS
    SPLITS = SPLITS
    TASKS = TASKS
    QUESTION_TYPES = QUESTION_TYPES
    NEGATIVE_KINDS = NEGATIVE_KINDS

    def __init__(self, image_size=64, seed=0, num_train=8000, num_val=1000, num_test=1000, num_captions=5,
                 match_pairs=2):
        self.image_size = check_int("image_size", image_size, minimum=MIN_IMAGE_SIZE, maximum=MAX_IMAGE_SIZE)
        self.seed = check_int("seed", seed)
        self.num_examples = {
            "train": check_int("num_train", num_train, minimum=0),
            "val": check_int("num_val", num_val, minimum=0),
            "test": check_int("num_test", num_test, minimum=0),
        }
        self.num_captions = check_int("num_captions", num_captions, minimum=1, maximum=MAX_CAPTIONS)
        self.match_pairs = check_int("match_pairs", match_pairs, minimum=1)

        # Geometry: a centred 3x3 grid of square cells; two object diameters.
        self._cell = self.image_size // 3
        self._origin = (self.image_size - 3 * self._cell) // 2
        self._diameters = (
            max(3, int(round(_SMALL_FRACTION * self._cell))),
            max(4, int(round(_LARGE_FRACTION * self._cell))),
        )
        angles = np.linspace(-_MAX_ROTATION_DEG, _MAX_ROTATION_DEG, _NUM_ROTATIONS)
        # Per diameter, per mask (index shape * _NUM_ROTATIONS + rotation): the covered pixels as
        # (flat offsets into an image buffer including the channel, alpha, channel) vectors.
        self._pixels = []
        for d in self._diameters:
            per_mask = []
            for shape in SHAPES:
                for angle in angles:
                    alpha = _alpha_mask(shape, d, angle)[:, :, 0]
                    dy, dx = np.nonzero(alpha)
                    offsets = ((dy * self.image_size + dx)[:, None] * 3 + np.arange(3)).reshape(-1)
                    per_mask.append(
                        (
                            offsets.astype(np.int64),
                            np.repeat(alpha[dy, dx], 3).astype(np.float32),
                            np.tile(np.arange(3), len(dy)),
                        )
                    )
            self._pixels.append(per_mask)
        bank = _background_bank(self.image_size, self.seed, _NUM_BACKGROUNDS)
        # The textures and their flips, uint8 [4 * _NUM_BACKGROUNDS, H, W, 3].
        self._backgrounds = np.concatenate(
            [bank, bank[:, ::-1], bank[:, :, ::-1], bank[:, ::-1, ::-1]], axis=0
        )
        self._cache = {}

    def __repr__(self):
        return (
            f"Shapes(image_size={self.image_size}, seed={self.seed}, num_train={self.num_examples['train']}, "
            f"num_val={self.num_examples['val']}, num_test={self.num_examples['test']}, "
            f"num_captions={self.num_captions}, match_pairs={self.match_pairs})"
        )

    # --- vocabularies ---

    @property
    def class_names(self):
        """Names of the classes of `label` (the shape of the largest object)."""
        return SHAPES

    @property
    def answer_vocabulary(self):
        """Every possible QA answer, in a fixed order (QA as classification)."""
        return ANSWER_VOCABULARY

    # --- generation ---

    def _check_split(self, split):
        if split not in SPLITS:
            raise ValueError(f"`split` must be one of {SPLITS}, got {split!r}")

    def _split_of(self, objs):
        """Which split a scene layout belongs to (hash of cells, shapes, colours)."""
        codes = sorted(
            (3 * o.row + o.col) * 64 + SHAPES.index(o.shape) * 8 + COLORS.index(o.color) for o in objs
        )
        digest = zlib.crc32(bytes(b for c in codes for b in (c >> 8, c & 255)), self.seed & 0xFFFFFFFF)
        return _SPLIT_OF_BUCKET[digest % len(_SPLIT_OF_BUCKET)]

    def _sample_objects(self, rng):
        u = rng.random()
        n = 1
        for threshold in _OBJECT_COUNT_CUMULATIVE:
            if u < threshold:
                break
            n += 1
        cells = sorted(rng.sample(range(9), n))
        objs = []
        for cell in cells:
            # Reuse an earlier shape/colour now and then so that counts above one are common.
            shape = rng.choice(objs).shape if objs and rng.random() < 0.3 else rng.choice(SHAPES)
            color = rng.choice(objs).color if objs and rng.random() < 0.3 else rng.choice(COLORS)
            objs.append(_Obj(shape, color, rng.choice(SIZES), cell // 3, cell % 3))
        return objs

    def _place(self, objs, rng):
        """Draws the appearance of each object: (size index, mask index, y0, x0, rgb)."""
        placements = []
        for obj in objs:
            size_index = 0 if obj.size == "small" else 1
            slack = self._cell - self._diameters[size_index] + 1
            y0 = self._origin + obj.row * self._cell + int(rng.random() * slack)
            x0 = self._origin + obj.col * self._cell + int(rng.random() * slack)
            mask = SHAPES.index(obj.shape) * _NUM_ROTATIONS + rng.randrange(_NUM_ROTATIONS)
            brightness = rng.uniform(-12.0, 12.0)
            rgb = [
                min(255.0, max(0.0, c + brightness + rng.uniform(-5.0, 5.0)))
                for c in _PALETTE_LISTS[COLORS.index(obj.color)]
            ]
            placements.append((size_index, mask, y0, x0, rgb))
        return placements

    def _paint(self, images, scene_index, placements):
        """Alpha-blends every object into `images` at once, grouped by mask.

        Works on the flat uint8 buffer: for each mask, the covered pixels' offsets (relative to
        the object's corner, channels included) are precomputed, so each group is one gather,
        a few long vector operations and one scatter. Objects never overlap, so the scatter
        has no repeated indices.
        """
        if not placements:
            return
        flat = images.reshape(-1)
        width = self.image_size
        scene_index = np.asarray(scene_index, dtype=np.int64)
        size_index = np.array([p[0] for p in placements])
        mask_index = np.array([p[1] for p in placements])
        y0 = np.array([p[2] for p in placements], dtype=np.int64)
        x0 = np.array([p[3] for p in placements], dtype=np.int64)
        rgb = np.array([p[4] for p in placements], dtype=np.float32)
        base = ((scene_index * width + y0) * width + x0) * 3
        group = size_index * len(self._pixels[0]) + mask_index
        order = np.argsort(group, kind="stable")
        bounds = np.flatnonzero(np.diff(group[order])) + 1
        for members in np.split(order, bounds):
            k = group[members[0]]
            offsets, alpha, channel = self._pixels[k // len(self._pixels[0])][k % len(self._pixels[0])]
            index = base[members][:, None] + offsets[None, :]
            pixels = flat[index].astype(np.float32)
            pixels += (rgb[members][:, channel] - pixels) * alpha
            pixels += 0.5
            flat[index] = pixels.astype(np.uint8)

    def _captions(self, objs, rng):
        """`(captions, caption_kinds)`: the kind of claim each caption makes (`CAPTION_KINDS`)."""
        kinds = ["inventory", "total", "shape_count", "color_count", "at", "at"]
        if len(objs) > 1:
            kinds += ["relation", "relation"]
        captions, caption_kinds, seen = [], [], set()
        attempts = 0
        while len(captions) < self.num_captions:
            if attempts % len(kinds) == 0:
                rng.shuffle(kinds)
            kind = kinds[attempts % len(kinds)]
            attempts += 1
            text = _render(_sample_claim(kind, objs, rng), _sample_style(rng))
            if text not in seen or attempts > 50 * self.num_captions:
                seen.add(text)
                captions.append(text)
                caption_kinds.append(CAPTION_KINDS[kind])
        return captions, caption_kinds

    def _match(self, objs, rng):
        pairs = []
        for _ in range(self.match_pairs):
            kinds = list(NEGATIVE_KINDS)
            rng.shuffle(kinds)
            found = None
            for kind in kinds:
                for _attempt in range(8):
                    claim_kind = rng.choice(_CLAIMS_FOR_NEGATIVE[kind])
                    if claim_kind == "relation" and len(objs) < 2:
                        continue
                    claim = _sample_claim(claim_kind, objs, rng)
                    for mutated in _mutations(claim, kind, objs, rng):
                        if _plausible(mutated) and _is_hard_negative(mutated, objs, kind):
                            found = (claim, mutated, kind)
                            break
                    if found:
                        break
                if found:
                    break
            if found is None:  # cannot happen: a position negative always exists
                raise RuntimeError(f"no hard negative found for scene {objs}")
            claim, mutated, kind = found
            style = _sample_style(rng)
            positive = _render(claim, style)
            pairs.append({"text": positive, "label": 1, "negative_kind": "none", "positive": positive,
                          "cells": _referent_cells(claim, objs), "relations": _relations_holding(claim, objs)})
            pairs.append({"text": _render(mutated, style), "label": 0, "negative_kind": kind, "positive": positive,
                          "cells": _referent_cells(mutated, objs), "relations": _relations_holding(mutated, objs)})
        return pairs

    def _generate(self, split):
        count = self.num_examples[split]
        rng = _Rng(f"mmkeras.shapes/{self.seed}/{split}")
        records, backgrounds, scene_index, placements = [], [], [], []
        while len(records) < count:
            objs = self._sample_objects(rng)
            if self._split_of(objs) != split:
                continue
            placed = self._place(objs, rng)
            backgrounds.append(rng.randrange(len(self._backgrounds)))
            scene_index.extend([len(records)] * len(objs))
            placements.extend(placed)
            large = [o for o in objs if o.size == "large"]
            records.append(
                {
                    "image_id": len(records),
                    "objects": [
                        {
                            "shape": o.shape,
                            "color": o.color,
                            "size": o.size,
                            "row": o.row,
                            "col": o.col,
                            "bbox": (x0, y0, x0 + self._diameters[k], y0 + self._diameters[k]),
                        }
                        for o, (k, _, y0, x0, _) in zip(objs, placed)
                    ],
                    "label": SHAPES.index((large or objs)[0].shape),
                    **dict(zip(("captions", "caption_kinds"), self._captions(objs, rng))),
                    "questions": _questions(objs, rng),
                    "match": self._match(objs, rng),
                }
            )
        images = self._backgrounds[np.array(backgrounds, dtype=np.int64)]
        self._paint(images, scene_index, placements)
        return images, records

    def _data(self, split):
        self._check_split(split)
        if split not in self._cache:
            self._cache[split] = self._generate(split)
        return self._cache[split]

    # --- public access ---

    def images(self, split):
        """All images of a split, uint8 [N, image_size, image_size, 3] (not a copy)."""
        return self._data(split)[0]

    def scenes(self, split):
        """The structured records of a split, in order.

        Args:
            split: one of "train", "val", "test".

        Returns:
            A list of dicts with keys "image" (uint8 [H, W, 3]), "image_id" (int, index in the
            split), "objects" (list of dicts: shape, color, size, row, col, bbox), "label" (int),
            "captions" (list of str), "caption_kinds" (the kind of claim of each caption, a value of
            `CAPTION_KINDS`), "questions" (list of dicts) and "match" (list of dicts); see the class
            docstring.
        """
        images, records = self._data(split)
        return [dict(record, image=images[i]) for i, record in enumerate(records)]

    def cell_attributes(self, split):
        """What each cell of the 3x3 grid holds, for every scene of a split: the object annotations
        as per-cell class indices (row-major cells; 0 for an empty cell).

        Args:
            split: one of "train", "val", "test".

        Returns:
            `{"shape", "color", "size"}`, each int64 `[N, 9]`: `1 + SHAPES.index(shape)`,
            `1 + COLORS.index(color)`, `1 + SIZES.index(size)` of the cell's object, 0 where the cell
            is empty. `CELL_CLASSES` gives each attribute's number of classes (empty included).

        Example:

        >>> shapes = Shapes(image_size=48, num_train=2, num_val=0, num_test=0)
        >>> cells = shapes.cell_attributes("train")
        >>> cells["shape"].shape, int((cells["shape"][0] > 0).sum()) == len(shapes.scenes("train")[0]["objects"])
        ((2, 9), True)
        """
        _, records = self._data(split)
        cells = {name: np.zeros((len(records), 9), np.int64) for name in CELL_CLASSES}
        for i, record in enumerate(records):
            for o in record["objects"]:
                cell = 3 * o["row"] + o["col"]
                for name, values in (("shape", SHAPES), ("color", COLORS), ("size", SIZES)):
                    cells[name][i, cell] = 1 + values.index(o[name])
        return cells

    @staticmethod
    def names_a_shape(caption):
        """Whether a caption names a shape ("circle", "boxes", ...), not only "shape" / "object".

        Captions that name shapes are the hard ones to get right: a caption that
        only counts ("there are three shapes") or names colours needs no shape
        recognition. `CaptioningTask` reports its `caption_accuracy` on them apart.

        Args:
            caption: a caption string.

        Example:

        >>> Shapes.names_a_shape("two red disks"), Shapes.names_a_shape("there are two red shapes")
        (True, False)
        """
        return not _NAMED_SHAPE_WORDS.isdisjoint(str(caption).split())

    @staticmethod
    def true_captions(scene):
        """Every caption the Shapes grammar can write that is true for a scene.

        The grammar's claims (inventories with exact counts, totals, counts per
        shape and per colour, positions, relations) are enumerated for the
        scene's objects and rendered with every template and synonym, so a
        generated caption is a correct description exactly when it is in this
        set (`CaptioningTask` reports that rate as `caption_accuracy`).

        Args:
            scene: a record from `scenes()` (only its "objects" are read), or
                the list of object dicts itself.

        Returns:
            A frozenset of strings (a few hundred to a few thousand).

        Example:

        >>> objects = [{"shape": "star", "color": "blue", "size": "small", "row": 0, "col": 0},
        ...            {"shape": "square", "color": "green", "size": "large", "row": 0, "col": 2}]
        >>> true = Shapes.true_captions(objects)
        >>> "a blue star left of a green square" in true, "a blue star right of a green square" in true
        (True, False)
        >>> "two shapes on a textured background" in true, "a blue star" in true  # inventories are complete
        (True, False)
        """
        objects = scene["objects"] if isinstance(scene, dict) else scene
        objs = [_Obj(o["shape"], o["color"], o["size"], o["row"], o["col"]) for o in objects]
        return frozenset(
            _render(claim, style) for claim in _true_claims(objs) for style in _KIND_STYLES[claim[0]]
        )

    def as_dataset(self, split, task="captions"):
        """A `tf.data.Dataset` of dicts for one task (not shuffled, not batched).

        Args:
            split: one of "train", "val", "test".
            task: "captions": one element per scene, {"image": uint8 [H, W, 3], "captions":
                string [num_captions], "image_id": int64, "label": int64}.
                "qa": one element per question, {"image", "question": string, "answer": string,
                "answer_id": int64 (index in `answer_vocabulary`), "question_type": string,
                "image_id": int64}.
                "match": one element per (image, text) pair, {"image", "text": string,
                "label": int64 (1 true, 0 false), "negative_kind": string, "image_id": int64}.

        Returns:
            A `tf.data.Dataset`.
        """
        if task not in TASKS:
            raise ValueError(f"`task` must be one of {TASKS}, got {task!r}")
        images, records = self._data(split)
        image_ids = np.array([r["image_id"] for r in records], dtype=np.int64)
        if task == "captions":
            captions = [c for r in records for c in r["captions"]]
            return tf.data.Dataset.from_tensor_slices(
                {
                    "image": tf.constant(images),
                    "captions": tf.reshape(
                        tf.constant(captions, dtype=tf.string), [len(records), self.num_captions]
                    ),
                    "image_id": tf.constant(image_ids),
                    "label": tf.constant([r["label"] for r in records], dtype=tf.int64),
                }
            )
        if task == "qa":
            items = [(i, q) for i, r in enumerate(records) for q in r["questions"]]
            answer_index = {a: k for k, a in enumerate(ANSWER_VOCABULARY)}
            columns = {
                "question": tf.constant([q["question"] for _, q in items], dtype=tf.string),
                "answer": tf.constant([q["answer"] for _, q in items], dtype=tf.string),
                "answer_id": tf.constant([answer_index[q["answer"]] for _, q in items], dtype=tf.int64),
                "question_type": tf.constant([q["question_type"] for _, q in items], dtype=tf.string),
            }
        else:
            items = [(i, m) for i, r in enumerate(records) for m in r["match"]]
            columns = {
                "text": tf.constant([m["text"] for _, m in items], dtype=tf.string),
                "label": tf.constant([m["label"] for _, m in items], dtype=tf.int64),
                "negative_kind": tf.constant([m["negative_kind"] for _, m in items], dtype=tf.string),
            }
        index = np.array([i for i, _ in items], dtype=np.int64)
        columns["image_id"] = tf.constant(image_ids[index])
        columns["scene_index"] = tf.constant(index)
        all_images = tf.constant(images)

        def attach_image(element):
            # Images are stored once and gathered per element (several elements share a scene).
            element = dict(element)
            return {"image": tf.gather(all_images, element.pop("scene_index")), **element}

        return tf.data.Dataset.from_tensor_slices(columns).map(attach_image)

    def write(self, directory, split, quality=95):
        """Writes a split as files: JPEG images, a COCO-captions JSON and a CSV manifest.

        Layout under `directory` (any `tf.io.gfile` path, e.g. `gs://`):

        * `images/<split>/<image_id:06d>.jpg`;
        * `captions_<split>.json` in the layout of COCO's `captions_train2017.json`:
          {"info", "images": [{"id", "file_name", "width", "height"}], "annotations":
          [{"id", "image_id", "caption"}]}; `file_name` is relative to `images/<split>/`, as in COCO;
        * `<split>.csv` with header `image_path,text,label`, one row per caption; `image_path` is
          relative to `directory` (`images/<split>/000000.jpg`) and `label` is the class label.

        Args:
            directory: output directory (created if missing).
            split: one of "train", "val", "test".
            quality: JPEG quality in [1, 100].

        Returns:
            A dict with the paths written: "image_dir", "captions_json", "csv".
        """
        self._check_split(split)
        quality = check_int("quality", quality, minimum=1, maximum=100)
        images, records = self._data(split)
        directory = str(directory).rstrip("/")
        image_dir = f"{directory}/images/{split}"
        tf.io.gfile.makedirs(image_dir)
        coco_images, annotations = [], []
        rows = io.StringIO()
        writer = csv.writer(rows, lineterminator="\n")
        writer.writerow(["image_path", "text", "label"])
        for i, record in enumerate(records):
            file_name = f"{record['image_id']:06d}.jpg"
            encoded = tf.io.encode_jpeg(images[i], quality=quality).numpy()
            with tf.io.gfile.GFile(f"{image_dir}/{file_name}", "wb") as f:
                f.write(encoded)
            coco_images.append(
                {
                    "id": record["image_id"],
                    "file_name": file_name,
                    "width": self.image_size,
                    "height": self.image_size,
                }
            )
            for caption in record["captions"]:
                annotations.append(
                    {"id": len(annotations), "image_id": record["image_id"], "caption": caption}
                )
                writer.writerow([f"images/{split}/{file_name}", caption, record["label"]])
        coco = {
            "info": {
                "description": f"mmkeras Shapes, split {split!r}",
                "version": "1",
                "image_size": self.image_size,
                "seed": self.seed,
            },
            "licenses": [],
            "images": coco_images,
            "annotations": annotations,
        }
        captions_json = f"{directory}/captions_{split}.json"
        with tf.io.gfile.GFile(captions_json, "w") as f:
            f.write(json.dumps(coco))
        csv_path = f"{directory}/{split}.csv"
        with tf.io.gfile.GFile(csv_path, "w") as f:
            f.write(rows.getvalue())
        return {"image_dir": image_dir, "captions_json": captions_json, "csv": csv_path}
