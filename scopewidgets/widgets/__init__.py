"""Notebook widgets (anywidget). One Python file per widget, one ES module `js/<name>.js` per widget.

Shared pieces for new widgets: `Widget` (base class), `shows_errors` (observer decorator), `to_binary`
(the array serializer) and `save_html` (self-contained export). Importing this package imports every
widget module, which registers it as the presenter of its result type (`core.display.presents`).
"""

from . import _atlas  # noqa: F401  (registers the atlas export of DashboardSet)
from ._base import Widget, shows_errors
from ._bundle import MissingBundleError
from ._export import save_html, to_html
from ._serialize import from_binary, to_binary
from .activations import ActivationsWidget
from .dashboard import DashboardWidget
from .explorer import ExplorerWidget
from .search import SearchWidget
from .steering import SteeringPanel

__all__ = [
    "ActivationsWidget",
    "DashboardWidget",
    "ExplorerWidget",
    "MissingBundleError",
    "SearchWidget",
    "SteeringPanel",
    "Widget",
    "from_binary",
    "save_html",
    "shows_errors",
    "to_binary",
    "to_html",
]
