"""Every `Example:` in the library's docstrings runs (doctest)."""

import doctest
import importlib
import pkgutil

import pytest

import mmkeras

MODULES = sorted(
    name
    for _, name, is_package in pkgutil.walk_packages(mmkeras.__path__, "mmkeras.")
    if not is_package
)


@pytest.mark.parametrize("module_name", MODULES)
def test_examples_run(module_name):
    module = importlib.import_module(module_name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {module_name}"
