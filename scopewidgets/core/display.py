"""`Displayable`: how analysis results show themselves (a lazily built widget) and save themselves as HTML.

A result class mixes this in and implements `widget()`, `_repr_text()` and `_repr_fallback_html()`.
Widgets are imported lazily, so the analysis layer does not need traitlets until something is displayed.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..widgets._base import Widget


class Displayable:
    """Mixin: `_repr_mimebundle_` shows `widget()` (built once) with a text and a static-HTML fallback
    for front ends without the widget manager; `save_html(path)` writes a self-contained page."""

    def widget(self) -> Widget:
        """A new widget showing this result (for layouts: `ipywidgets.HBox([a.widget(), b.widget()])`)."""
        raise NotImplementedError

    def _repr_text(self) -> str:
        return object.__repr__(self)

    def _repr_fallback_html(self) -> str | None:
        return None

    @cached_property
    def _view(self) -> Widget:
        """The widget this result displays as (and saves); built on first display."""
        return self.widget()

    def __getstate__(self) -> dict[str, Any]:
        """Pickle and deepcopy the result without its widget (a live comm)."""
        return {key: value for key, value in self.__dict__.items() if key != "_view"}

    def _repr_mimebundle_(
        self, include: Any = None, exclude: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        data, metadata = self._view._repr_mimebundle_()
        data["text/plain"] = self._repr_text()
        fallback = self._repr_fallback_html()
        if fallback:
            data["text/html"] = fallback
        return data, metadata

    def save_html(self, path: str | Path, title: str | None = None) -> Path:
        """Write one self-contained HTML file (bundled front end + data) that renders offline from file://.

        The selection made in the displayed widget is kept. Returns the path.

        Example:
            >>> acts.save_html("acts.html")                      # doctest: +SKIP
        """
        return self._view.save_html(path, title=title)
