"""The Shapes reference rankers: the grammar's caption likelihoods (checked against the generator itself), the
Bayes oracle and the bag-of-attributes baseline."""

import collections

import numpy as np
import pytest

from mmkeras.data.shapes import Shapes, _Obj, _Rng
from mmkeras.data.shapes_references import (
    bag_of_attributes_scores,
    bayes_oracle_scores,
    caption_likelihoods,
    reference_scores,
)
from mmkeras.metrics.semantic_retrieval import score_retrieval_metrics

ONE = [{"shape": "star", "color": "blue", "size": "small", "row": 0, "col": 0}]
THREE = [{"shape": "circle", "color": "red", "size": "large", "row": 0, "col": 1},
         {"shape": "circle", "color": "red", "size": "small", "row": 1, "col": 0},
         {"shape": "square", "color": "green", "size": "small", "row": 2, "col": 2}]


@pytest.fixture(scope="module")
def scenes():
    return Shapes(image_size=32, seed=0, num_train=0, num_val=0, num_test=150).scenes("test")


def test_likelihoods_sum_to_one_over_exactly_the_true_captions(scenes):
    for scene in scenes:
        likely = caption_likelihoods(scene)
        assert sum(likely.values()) == pytest.approx(1.0, abs=1e-12)
        assert set(likely) == Shapes.true_captions(scene) and min(likely.values()) > 0


@pytest.mark.parametrize("objects, draws", [(ONE, 20_000), (THREE, 60_000)])
def test_likelihoods_are_the_frequencies_with_which_the_generator_writes_each_caption(objects, draws):
    shapes = Shapes(image_size=32, num_train=0, num_val=0, num_test=0, num_captions=1)
    objs = [_Obj(o["shape"], o["color"], o["size"], o["row"], o["col"]) for o in objects]
    rng = _Rng("likelihood test")
    seen = collections.Counter(shapes._captions(objs, rng)[0][0] for _ in range(draws))
    likely = caption_likelihoods(objects)
    assert set(seen) <= set(likely)
    for text, p in likely.items():  # every caption within 5 standard errors of its drawn frequency
        assert abs(seen[text] / draws - p) <= 5 * np.sqrt(p * (1 - p) / draws) + 1 / draws, text


def test_the_oracle_is_the_posterior_of_each_scene_given_the_caption(scenes):
    texts = [c for s in scenes[:20] for c in s["captions"]] + ["there are four hexagons", "no such caption"]
    scores = bayes_oracle_scores(texts, scenes[:20])
    likely = [caption_likelihoods(s) for s in scenes[:20]]
    likelihood = np.array([[scene.get(t, 0.0) for scene in likely] for t in texts])
    np.testing.assert_allclose(scores[:-2], likelihood[:-2] / likelihood[:-2].sum(axis=1, keepdims=True))
    assert (scores[:-2] > 0).sum() >= 100 and not scores[-1].any()
    np.testing.assert_allclose(scores[:-2].sum(axis=1), 1.0)


def test_bag_of_attributes_reads_words_without_binding_them():
    red_square_blue_circle = [{"shape": "square", "color": "red", "size": "small", "row": 0, "col": 0},
                              {"shape": "circle", "color": "blue", "size": "small", "row": 2, "col": 2}]
    texts = ["a red circle",  # both words are somewhere in the scene, on different objects
             "a big red disk left of a blue box",  # big: -1, the rest +1; left of: not a position, no score
             "two shapes in the bottom right",  # two: the total; bottom right: a circle is there
             "there are three circles",  # three: no count is 3; circles: yes
             "a circle in the center"]  # center: empty
    scores = bag_of_attributes_scores(texts, [red_square_blue_circle, THREE]).tolist()
    assert [row[0] for row in scores] == [2.0, 3.0, 2.0, 0.0, 0.0]
    # THREE: a big and a small red circle, a small green square; counts 3 in all, 2 circles, 1 square.
    assert [row[1] for row in scores] == [2.0, 3.0, 2.0, 2.0, 0.0]


def test_on_the_test_split_the_oracle_is_far_above_the_baseline_and_both_above_chance(scenes):
    texts = [c for s in scenes for c in s["captions"]]
    own = np.zeros((len(texts), len(scenes)), bool)
    own[np.arange(len(texts)), np.repeat(np.arange(len(scenes)), 5)] = True
    figures = {name: score_retrieval_metrics(scores, own) for name, scores in reference_scores(texts, scenes).items()}
    oracle, bag = figures["bayes_oracle"], figures["bag_of_attributes"]
    for d in ("t2i", "i2t"):
        assert oracle[f"{d}_sr5"] > bag[f"{d}_sr5"] > 3 * oracle[f"chance_{d}_sr5"]
    assert oracle["i2t_sr5"] > 0.9 and 0.5 < oracle["t2i_sr5"] < 0.9  # many captions are true of many scenes
