"""A fixed, pre-tokenized caption corpus and the pycocoevalcap reference scorers."""

import contextlib
import io

import pytest
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider

# 9 images, 3-5 references each, lower-cased and whitespace-tokenized (as after the PTB tokenizer).
CORPUS = {
    "img_dog": (
        "a brown dog runs across the grass",
        [
            "a brown dog is running across a grassy field",
            "a dog runs on the grass",
            "a brown dog running in a park",
            "the dog is playing outside on the lawn",
        ],
    ),
    "img_cat": (
        "a cat sleeping on a red couch",
        [
            "a cat is sleeping on a red sofa",
            "a grey cat naps on the couch",
            "a cat lying on a red couch",
        ],
    ),
    "img_bus": (
        "a bus",  # much shorter than its references
        [
            "a yellow school bus parked on the street",
            "a school bus on a city street",
            "a yellow bus is parked by the curb",
            "a bus stopped next to the sidewalk",
            "the yellow bus waits on the road",
        ],
    ),
    "img_kids": (
        "two children play football in a field",
        [
            "two kids playing soccer on a field",
            "children are playing football in a field",
            "two boys kick a ball on the grass",
        ],
    ),
    "img_pizza": (
        "quantum entropy glows violet",  # no n-gram match at all
        [
            "a pizza with cheese and tomatoes on a plate",
            "a cheese pizza sitting on a white plate",
            "a plate with a pizza on it",
        ],
    ),
    "img_man": (
        "a man riding a horse on a beach",
        [
            "a man rides a horse along the beach",
            "a person riding a brown horse on the sand",
            "a man on a horse near the ocean",
            "a rider and his horse on a beach at sunset",
        ],
    ),
    "img_train": (
        "a train on the tracks",
        [
            "a red train travelling on the tracks",
            "a train moving down the railway tracks",
            "a passenger train on the tracks near a station",
        ],
    ),
    "img_kitchen": (
        "a kitchen with a stove and a sink and a window and a table",  # longer than its refs
        [
            "a kitchen with a stove and a sink",
            "a small kitchen with white cabinets",
            "a clean kitchen with a window",
        ],
    ),
    "img_birds": (
        "birds",  # a single word
        [
            "two birds sitting on a branch",
            "birds perched on a tree branch",
            "a pair of small birds on a branch",
        ],
    ),
}


def pycoco_scores(hypotheses, references):
    """pycocoevalcap's (BLEU-1..4 list, CIDEr-D, CIDEr-D per image) for dict inputs."""
    gts = {k: list(v) for k, v in references.items()}
    res = {k: [hypotheses[k]] for k in references}
    with contextlib.redirect_stdout(io.StringIO()):  # Bleu prints its counts
        bleu, _ = Bleu(4).compute_score(gts, res)
    cider, cider_per_image = Cider().compute_score(gts, res)
    return bleu, cider, dict(zip(gts, cider_per_image))


@pytest.fixture
def corpus():
    hypotheses = {k: hyp for k, (hyp, _) in CORPUS.items()}
    references = {k: refs for k, (_, refs) in CORPUS.items()}
    return hypotheses, references


@pytest.fixture
def reference_scores():
    """The function `(hypotheses, references) -> pycocoevalcap scores`, dict inputs."""
    return pycoco_scores
