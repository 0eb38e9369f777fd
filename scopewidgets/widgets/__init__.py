"""Notebook widgets (anywidget). One Python file per widget, one ES module `js/<name>.js` per widget.

Shared pieces for new widgets: `Widget` (base class), `shows_errors` (observer decorator), `to_binary`
(the array serializer) and `save_html` (self-contained export).
"""

from ._base import MissingBundleError, Widget, shows_errors
from ._export import save_html, to_html
from ._serialize import from_binary, to_binary
from .activations import ActivationsWidget
from .dashboard import DashboardWidget
from .explorer import ExplorerWidget
from .search import SearchWidget

__all__ = [
    "ActivationsWidget",
    "DashboardWidget",
    "ExplorerWidget",
    "MissingBundleError",
    "SearchWidget",
    "Widget",
    "from_binary",
    "save_html",
    "shows_errors",
    "to_binary",
    "to_html",
]
