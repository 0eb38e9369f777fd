"""Every docstring example in the package runs (those marked `# doctest: +SKIP` need the hub or a GPU)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import scopewidgets

MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(scopewidgets.__path__, "scopewidgets.")
    if info.name != "scopewidgets.__main__"  # importing it runs the command line
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    module = importlib.import_module(name)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in doctest.DocTestFinder().find(module, name):
        runner.run(test)
    report = capsys.readouterr().out
    assert runner.failures == 0, report


def test_public_functions_have_examples() -> None:
    missing = [
        name
        for name in scopewidgets.__all__
        if callable(getattr(scopewidgets, name))
        and "Example" not in (getattr(scopewidgets, name).__doc__ or "")
    ]
    assert not missing, f"public names without a docstring example: {missing}"
