"""The built front end: `bundle_text(name)` reads `scopewidgets/static/<name>` (built from `js/` by
`npm run build`), or raises `MissingBundleError` saying how to build it."""

from __future__ import annotations

import functools
from pathlib import Path

STATIC = Path(__file__).resolve().parent.parent / "static"


class MissingBundleError(RuntimeError):
    """The built front end (`scopewidgets/static/`) is missing."""


@functools.lru_cache(maxsize=32)
def _read(path: Path, mtime: float) -> str:
    return path.read_text(encoding="utf-8")


def bundle_text(name: str) -> str:
    """The text of a built front-end file, e.g. `bundle_text("activations.js")`.

    Raises `MissingBundleError` saying how to build it. Rebuilt files are picked up (cached by mtime).

    Example:
        >>> bundle_text("activations.js")[:6]                   # doctest: +SKIP
    """
    path = STATIC / name
    if not path.is_file():
        raise MissingBundleError(
            f"The scopewidgets front end is not built: {path} is missing. In a source checkout run "
            "`npm install && npm run build` (Node.js 18+), or `pip install -e .` with Node.js on the PATH; "
            "wheels from PyPI include it."
        )
    return _read(path, path.stat().st_mtime)
