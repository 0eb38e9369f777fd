"""Load a script or benchmark of the repository (not a package) as a module, for the tests that check it."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]


def load_repo_module(relative: str) -> ModuleType:
    """The module at `REPO / relative` (e.g. "scripts/activation_cache.py"), executed fresh."""
    path = REPO / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
