"""The Python API's docstring examples run (doctest), so the documented calls keep working."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "derive",
    "derive.api",
    "derive.derivation",
    "derive.latexnames",
    "codegen",
    "codegen.api",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.attempted > 0 and result.failed == 0
