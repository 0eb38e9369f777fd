"""`Widget`: the base of every scopewidgets widget (bundled front end, inline errors, HTML export).

A widget subclass names its ES module (`_module = "activations"` loads `scopewidgets/static/activations.js`
and `.css`, built from `js/activations.js` by `npm run build`), declares its synced traits with
`help=` docstrings, and wraps its observers in `@shows_errors` so a failure lands in the `error` trait,
which the front end shows inside the widget, instead of vanishing into the kernel log.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import anywidget
import traitlets

from ._bundle import STATIC, bundle_text
from ._export import save_html as _save_html

log = logging.getLogger("scopewidgets")
Method = TypeVar("Method", bound=Callable[..., Any])


def shows_errors(method: Method) -> Method:
    """Decorate an observer so an exception is shown in the widget (`error` trait) instead of lost.

    The widget keeps working: the next successful call of the same observer clears the message.

    Example:
        >>> class Demo(Widget):                                  # doctest: +SKIP
        ...     @traitlets.observe("value")
        ...     @shows_errors
        ...     def _on_value(self, change): ...
    """

    @functools.wraps(method)
    def wrapper(self: Widget, *args: Any, **kwargs: Any) -> Any:
        try:
            result = method(self, *args, **kwargs)
        except Exception as exc:
            log.debug("%s.%s failed", type(self).__name__, method.__name__, exc_info=True)
            self._error_source = method.__name__
            self.error = str(exc) or type(exc).__name__
            return None
        if self._error_source == method.__name__:
            self._error_source = None
            self.error = ""
        return result

    return wrapper  # type: ignore[return-value]


class Widget(anywidget.AnyWidget):
    """Base class: loads `static/<_module>.js` + `.css`, rejects unknown kwargs, shows errors, saves HTML."""

    _module: ClassVar[str] = ""
    error = traitlets.Unicode(
        "", help="Message of the last failure, shown inside the widget; '' if none."
    ).tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        unknown = sorted(set(kwargs) - set(self.trait_names()))
        if unknown:
            public = self.class_trait_names(sync=True)
            raise TypeError(
                f"{type(self).__name__} got unexpected keyword argument(s) {', '.join(unknown)}; "
                f"traits: {', '.join(sorted(n for n in public if not n.startswith('_')))}"
            )
        self._error_source: str | None = None
        self._esm = bundle_text(f"{self._module}.js")
        css = STATIC / f"{self._module}.css"
        self._css = bundle_text(css.name) if css.is_file() else ""
        super().__init__(**kwargs)

    def save_html(self, path: str | Path, title: str | None = None) -> Path:
        """Write one self-contained HTML file that renders this widget offline (no kernel, no network).

        Example:
            >>> acts.widget().save_html("acts.html")              # doctest: +SKIP
        """
        return _save_html(self, path, title=title)

    def _export_state(self) -> dict[str, Any]:
        """For the HTML export: trait values that replace the live ones (e.g. data the kernel would send
        on demand). Override when the front end asks Python for more through custom messages."""
        return {}

    def _export_responses(self) -> dict[str, dict[str, dict[str, Any]]]:
        """For the HTML export: `{trait: {json.dumps(value): {other_trait: value}}}`, what Python would
        send back when the front end sets `trait` to `value`. Override to keep selections working offline."""
        return {}
