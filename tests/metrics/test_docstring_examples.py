"""Every metrics module documents itself with examples, and they run.

(`tests/test_docstrings.py` runs the examples of the whole package; here a module
without any fails too.)
"""

import doctest
import importlib

import pytest

MODULES = [
    "bleu",
    "cider",
    "classification",
    "masked_perplexity",
    "masked_token_accuracy",
    "masked_token_metric",
    "retrieval",
    "zero_shot",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    result = doctest.testmod(importlib.import_module(f"mmkeras.metrics.{name}"))
    assert result.attempted > 0 and result.failed == 0
