"""Where scopewidgets keeps things on disk: the cache folder and the data shipped with the package."""

from __future__ import annotations

import os
from pathlib import Path

#: The package's own data: the default corpus, the demo SAE, the Gemma notice.
DATA = Path(__file__).resolve().parent.parent / "data"
#: The package version (also `scopewidgets.__version__`).
VERSION = "0.1.0"


def cache_dir() -> Path:
    """The folder scopewidgets caches into: `$SCOPEWIDGETS_CACHE`, else `~/.cache/scopewidgets`.

    Example:
        >>> from scopewidgets.core.paths import cache_dir
        >>> cache_dir().is_absolute() or not cache_dir().exists()
        True
    """
    root = os.environ.get("SCOPEWIDGETS_CACHE")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "scopewidgets"
