"""`Displayable`: how analysis results show themselves (a lazily built widget) and save themselves as HTML,
and the registry through which a result finds its widget without importing it.

A result class mixes `Displayable` in; the widget layer registers, for each result type, the callables that
present it (`@presents(ResultType)` for the widget, `role="text"` / `"html"` for the plain-text and static
HTML fallbacks, other roles for other views such as the atlas). `present(result, role)` finds the callable by
the result's class (its bases too) after importing `scopewidgets.widgets` once, so analysis modules need no
traitlets, and never import a widget, until something is displayed.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from ..widgets._base import Widget

#: (result type, role) -> the callable that presents it; filled by the widget layer on import.
_REGISTRY: dict[tuple[type, str], Callable[..., Any]] = {}
_PRESENTERS = "scopewidgets.widgets"
Presenter = TypeVar("Presenter", bound=Callable[..., Any])


def presents(*result_types: type, role: str = "widget") -> Callable[[Presenter], Presenter]:
    """Decorator for the widget layer: `presenter(result, **options)` presents each of `result_types` in `role`.

    Example:
        >>> class Note(Displayable):
        ...     pass
        >>> @presents(Note, role="text")
        ... def note_text(result):
        ...     return "a note"
        >>> Note()._repr_text()
        'a note'
    """

    def register(presenter: Presenter) -> Presenter:
        for result_type in result_types:
            _REGISTRY[result_type, role] = presenter
        return presenter

    return register


def presenter(result: Any, role: str = "widget") -> Callable[..., Any] | None:
    """The callable registered for `result`'s class (or its nearest base) in `role`, else None."""
    importlib.import_module(_PRESENTERS)  # registers every widget (a no-op after the first call)
    for cls in type(result).__mro__:
        found = _REGISTRY.get((cls, role))
        if found is not None:
            return found
    return None


def present(result: Any, role: str = "widget", **options: Any) -> Any:
    """`result` presented in `role` by the registered callable; a `LookupError` when none is registered."""
    found = presenter(result, role)
    if found is None:
        raise LookupError(f"No {role} is registered for {type(result).__name__}")
    return found(result, **options)


class Displayable:
    """Mixin: `_repr_mimebundle_` shows `widget()` (built once) with a text and a static-HTML fallback
    for front ends without the widget manager; `save_html(path)` writes a self-contained page."""

    def widget(self) -> Widget:
        """A new widget showing this result (for layouts: `ipywidgets.HBox([a.widget(), b.widget()])`)."""
        return present(self)

    def _repr_text(self) -> str:
        found = presenter(self, "text")
        return found(self) if found is not None else object.__repr__(self)

    def _repr_fallback_html(self) -> str | None:
        found = presenter(self, "html")
        return found(self) if found is not None else None

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
