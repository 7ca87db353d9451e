"""What the Shapes data allows a retrieval model to reach, and what a model without binding reaches.

Two rankers that read a scene's objects instead of its pixels, so a trained dual encoder's retrieval
figures can be set beside a ceiling and a floor:

- the **Bayes oracle** scores a caption for a scene by the posterior probability that the caption
  was written for that scene, among the scenes ranked: the probability with which the Shapes caption
  grammar writes that caption for that scene (`caption_likelihoods`), divided by its sum over the
  scenes (Bayes' rule, every scene equally likely a priori). No ranking of images for a caption, nor
  of captions for an image, finds a query's own items more often on average;
- the **bag-of-attributes** baseline (`bag_of_attributes_scores`) adds 1 for every shape, colour,
  size, count or position word of the caption that the scene satisfies somewhere and subtracts 1
  for every one it does not, with no binding: "a red circle" scores as well on a scene with a red
  square and a blue circle as on one with a red circle.

`reference_scores` gives both as `[N_txt, N_img]` score matrices for `mmkeras.metrics.score_retrieval_metrics`.
"""

import itertools
import math
import re

import numpy as np

from mmkeras.data.shapes import (
    _KIND_STYLES,
    _SHAPE_WORDS,
    _PLURALS,
    _SIZE_WORDS,
    COLORS,
    NUMBER_WORDS,
    POSITIONS,
    RELATIONS,
    SHAPES,
    SIZES,
    _Obj,
    _count,
    _relation_holds,
    _render,
)


def _objects(scene):
    objects = scene["objects"] if isinstance(scene, dict) else scene
    return [_Obj(o["shape"], o["color"], o["size"], o["row"], o["col"]) for o in objects]


def _claim_probabilities(objs):
    """`{claim: probability}` of one caption's claim, as `Shapes` draws it for the objects `objs`."""
    n = len(objs)
    # The kind: each caption reads the next entry of a shuffled list of kinds, so marginally an entry at random.
    entries = ["inventory", "total", "shape_count", "color_count", "at", "at"] + ["relation"] * 2 * (n > 1)
    p_kind = {kind: entries.count(kind) / len(entries) for kind in set(entries)}
    claims = {("total", n): p_kind["total"]}
    for kind, field in (("shape_count", 0), ("color_count", 1)):  # the attribute of an object drawn at random
        for value, count in _count(o[field] for o in objs).items():
            claims[(kind, value, count)] = p_kind[kind] * count / n
    for with_size, p_size in ((False, 0.6), (True, 0.4)):
        keys = [(o.size if with_size else None, o.color, o.shape) for o in objs]
        counts, natural = _count(keys), tuple(dict.fromkeys(keys))
        for order in itertools.permutations(natural):  # the reading order, else shuffled half the time
            p_order = 0.5 * (order == natural) + 0.5 / math.factorial(len(natural))
            claims[("inventory", with_size, tuple((counts[k],) + k for k in order))] = (
                p_kind["inventory"] * p_size * p_order)

    def phrases(obj, p_size):
        return (((None, obj.color, obj.shape), 1.0 - p_size), ((obj.size, obj.color, obj.shape), p_size))

    for obj in objs:
        for phrase, p in phrases(obj, 0.4):
            claims[("at", phrase, (obj.row, obj.col))] = p_kind["at"] * p / n
    for a, b in itertools.permutations(objs, 2):
        holding = [r for r in RELATIONS if _relation_holds(a, r, b)]
        if a.row == b.row or a.col == b.col:
            holding = holding[:1]
        for rel in holding:
            for (pa, p_a), (pb, p_b) in itertools.product(phrases(a, 0.3), phrases(b, 0.3)):
                claim = ("relation", pa, rel, pb)
                claims[claim] = claims.get(claim, 0.0) + p_kind["relation"] * p_a * p_b / (n * (n - 1) * len(holding))
    return claims


def caption_likelihoods(scene):
    """The probability of every caption the Shapes grammar writes for a scene, per caption drawn.

    A caption is drawn as `Shapes` draws it: a claim kind, a claim of that kind true of the scene
    (the objects, orders and optional size words it picks at random), then a template and synonyms
    at random. The probabilities sum to 1. (A scene's captions are distinct, so its second caption
    is drawn again when it repeats the first; the figures are those of a single draw.)

    Args:
        scene: a record of `Shapes.scenes()` (its "objects" are read) or the list of object dicts.

    Returns:
        `{caption: probability}`; its keys are `Shapes.true_captions(scene)`.

    Example:

    >>> likely = caption_likelihoods([{"shape": "star", "color": "blue", "size": "small", "row": 0, "col": 0}])
    >>> round(sum(likely.values()), 6), round(likely["there is one star"], 4), round(likely["a blue star"], 4)
    (1.0, 0.0833, 0.025)
    """
    likelihoods = {}
    for claim, p in _claim_probabilities(_objects(scene)).items():
        styles = _KIND_STYLES[claim[0]]
        for style in styles:
            text = _render(claim, style)
            likelihoods[text] = likelihoods.get(text, 0.0) + p / len(styles)
    return likelihoods


# --- bag of attributes ------------------------------------------------------------------------------

_ATTRIBUTES = (
    [f"shape:{s}" for s in SHAPES] + [f"color:{c}" for c in COLORS] + [f"size:{s}" for s in SIZES]
    + [f"count:{n}" for n in range(1, len(NUMBER_WORDS))] + [f"position:{p}" for p in POSITIONS]
)
_ATTRIBUTE_INDEX = {name: i for i, name in enumerate(_ATTRIBUTES)}
_WORD_ATTRIBUTES = {
    **{word: f"shape:{shape}" for shape, words in _SHAPE_WORDS.items() for one in words
       for word in (one, _PLURALS[one])},
    **{color: f"color:{color}" for color in COLORS},
    **{word: f"size:{size}" for size, words in _SIZE_WORDS.items() for word in words},
    **{NUMBER_WORDS[n]: f"count:{n}" for n in range(1, len(NUMBER_WORDS))},
}
# Grid positions are read first ("top center" before "center"); "left of" is a relation, not a position.
_POSITION_PATTERN = re.compile("|".join(sorted(map(re.escape, POSITIONS), key=len, reverse=True)))


def _attribute_words(text):
    """Counts `[A]` of the attribute words a caption says (a position phrase counts once)."""
    counts = np.zeros(len(_ATTRIBUTES), np.float32)
    for position in _POSITION_PATTERN.findall(text):
        counts[_ATTRIBUTE_INDEX[f"position:{position}"]] += 1
    for word in _POSITION_PATTERN.sub(" ", text).split():
        if word in _WORD_ATTRIBUTES:
            counts[_ATTRIBUTE_INDEX[_WORD_ATTRIBUTES[word]]] += 1
    return counts


def _scene_attributes(objs):
    """Which attributes a scene satisfies somewhere `[A]`: its shapes, colours, sizes, positions, and every
    count it has (in all, of a shape, of a colour, of one kind of object with or without its size)."""
    counts = {len(objs)}
    for key in ((lambda o: o.shape), (lambda o: o.color), (lambda o: o[:2]), (lambda o: o[:3])):
        counts.update(_count(map(key, objs)).values())
    names = ([f"shape:{o.shape}" for o in objs] + [f"color:{o.color}" for o in objs] + [f"size:{o.size}" for o in objs]
             + [f"position:{POSITIONS[3 * o.row + o.col]}" for o in objs] + [f"count:{n}" for n in counts])
    satisfied = np.zeros(len(_ATTRIBUTES), np.float32)
    satisfied[[_ATTRIBUTE_INDEX[name] for name in names]] = 1.0
    return satisfied


def bag_of_attributes_scores(texts, scenes):
    """Scores of a ranker without binding: per caption word, +1 when the scene satisfies it anywhere, else −1.

    The words read are shapes (and their synonyms and plurals), colours, sizes, counts ("one" to
    "four") and grid positions ("top left", "center", ...); other words score nothing.

    Args:
        texts: N_txt caption strings.
        scenes: N_img records of `Shapes.scenes()` or lists of object dicts.

    Returns:
        float32 `[N_txt, N_img]`.

    Example:

    >>> red_circle = [{"shape": "circle", "color": "red", "size": "small", "row": 0, "col": 0}]
    >>> blue_square = [{"shape": "square", "color": "blue", "size": "large", "row": 1, "col": 1}]
    >>> bag_of_attributes_scores(["a red circle in the center"], [red_circle, blue_square]).tolist()
    [[1.0, -1.0]]
    """
    words = np.stack([_attribute_words(str(t)) for t in texts]) if len(texts) else np.zeros((0, len(_ATTRIBUTES)))
    satisfied = np.stack([_scene_attributes(_objects(s)) for s in scenes]) if len(scenes) else np.zeros(
        (0, len(_ATTRIBUTES)))
    return (words @ (2.0 * satisfied - 1.0).T).astype(np.float32)


def bayes_oracle_scores(texts, scenes):
    """The Bayes oracle's scores: `[t, i]` is P(caption `t` was written for scene `i`), among `scenes`.

    That is `caption_likelihoods(scenes[i])[t]` divided by its sum over the scenes (every scene equally
    likely a priori). Text-to-image, it orders the scenes as the likelihood does; image-to-text, it
    ranks first the captions most specific to the scene, which a caption true of many scenes is not.

    Args:
        texts: N_txt caption strings.
        scenes: N_img records of `Shapes.scenes()` or lists of object dicts.

    Returns:
        float64 `[N_txt, N_img]`, 0 where the caption is false of the scene; a row sums to 1, or to 0
        for a caption true of none of the scenes.

    Example:

    >>> star = [{"shape": "star", "color": "blue", "size": "small", "row": 0, "col": 0}]
    >>> stars = [dict(star[0], row=1), dict(star[0], col=1)]
    >>> bayes_oracle_scores(["there is one star", "there are two stars", "a picture of two blue stars"], [star, stars])
    array([[1., 0.],
           [0., 1.],
           [0., 1.]])
    """
    rows = {}
    for t, text in enumerate(texts):
        rows.setdefault(str(text), []).append(t)
    scores = np.zeros((len(texts), len(scenes)), np.float64)
    for i, scene in enumerate(scenes):
        for text, p in caption_likelihoods(scene).items():
            if text in rows:
                scores[rows[text], i] = p
    total = scores.sum(axis=1, keepdims=True)
    return np.divide(scores, total, out=np.zeros_like(scores), where=total > 0)


REFERENCE_RANKERS = {"bayes_oracle": bayes_oracle_scores, "bag_of_attributes": bag_of_attributes_scores}


def reference_scores(texts, scenes):
    """Both reference rankers' scores, `{"bayes_oracle", "bag_of_attributes"}`, each `[N_txt, N_img]`.

    Args:
        texts: N_txt caption strings.
        scenes: N_img records of `Shapes.scenes()` or lists of object dicts.

    Example:

    >>> star = [{"shape": "star", "color": "blue", "size": "small", "row": 0, "col": 0}]
    >>> sorted(reference_scores(["a blue star"], [star]))
    ['bag_of_attributes', 'bayes_oracle']
    """
    return {name: ranker(texts, scenes) for name, ranker in REFERENCE_RANKERS.items()}
