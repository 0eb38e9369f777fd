"""Self-contained HTML export of a widget: its bundled module, CSS and state inlined in one file.

The page carries a JSON block (`<script type="application/json">`, with `<`, `>`, `&` escaped so no text in
the data can close the script) and a four-line loader that imports `static/standalone.js` (a stand-in for
the anywidget model) from a Blob URL, which then imports the widget module the same way. A Content
Security Policy forbids every network request. Binary buffers travel as `{"__sw_buffer__": base64}`.
Several widgets can share a page (the explorer's parts): then `parts` lists one such block per widget, and
the loader mounts each in its own section, in order.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anywidget

from ._bundle import bundle_text

if TYPE_CHECKING:
    from ._base import Widget

#: Synced traits that belong to the widget machinery, not to the view's state.
_MACHINERY = {*anywidget.AnyWidget.class_trait_names(sync=True), "_esm", "_css", "_anywidget_id"}
_PAGE_CSS = """
:root { color-scheme: light dark; }
body { margin: 16px; background: #fff; color: #1f2328; font-family: system-ui, sans-serif; }
#sw-root > section + section { margin-top: 20px; padding-top: 16px; border-top: 1px solid #d0d7de; }
@media (prefers-color-scheme: dark) {
  body { background: #1e1e1e; color: #d4d4d4; --jp-ui-font-color1: #d4d4d4; --jp-ui-font-color2: #a0a0a0;
    --jp-layout-color1: #1e1e1e; --jp-layout-color2: #2d2d2d; --jp-border-color2: #444; }
}
"""
# The one loader: each part (one widget, or the explorer's several) mounted in its own section, in order.
LOADER = """
const data = JSON.parse(document.getElementById("sw-data").textContent);
const url = URL.createObjectURL(new Blob([data.runtime], { type: "text/javascript" }));
const runtime = await import(url);
const root = document.getElementById("sw-root");
for (const part of data.parts) await runtime.mount(part, root.appendChild(document.createElement("section")));
"""


def csp(loader: str, scripts: str = "") -> str:
    """The page's Content Security Policy: only `loader` (by hash), Blob modules and `scripts` (e.g. the
    atlas's own files) may run; inline event handlers and all network are blocked."""
    digest = base64.b64encode(hashlib.sha256(loader.encode()).digest()).decode()
    return (
        f"default-src 'none'; script-src {scripts + ' ' if scripts else ''}'sha256-{digest}' blob:; style-src 'unsafe-inline'; "
        "img-src data: blob:; font-src data:"
    )


def _encode(node: Any) -> Any:
    if isinstance(node, bytes | bytearray | memoryview):
        return {"__sw_buffer__": base64.b64encode(bytes(node)).decode("ascii")}
    if isinstance(node, dict):
        return {str(key): _encode(value) for key, value in node.items()}
    if isinstance(node, list | tuple):
        return [_encode(value) for value in node]
    return node


def script_json(data: Any) -> str:
    """JSON safe to place inside a `<script>` element: no `<`, `>`, `&` or line separators appear raw.

    Example:
        >>> script_json({"t": "</script>"})
        '{"t": "\\\\u003c/script\\\\u003e"}'
    """
    text = json.dumps(data, ensure_ascii=False, allow_nan=False)
    for raw, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(raw, escaped)
    return text


def _part(widget: Widget) -> dict[str, Any]:
    """One widget's module, CSS, state (with its export overrides) and offline answers."""
    state = {key: value for key, value in widget.get_state().items() if key not in _MACHINERY}
    state.update(widget._export_state())
    return {
        "module": widget._esm,
        "css": widget._css,
        "state": _encode(state),
        "responses": _encode(widget._export_responses()),
    }


def to_html(widget: Widget | Sequence[Widget], title: str | None = None) -> str:
    """The HTML page for `widget`, or for several widgets one below the other (see `save_html`).

    Example:
        >>> page = to_html(acts.widget())                       # doctest: +SKIP
        >>> page = to_html([acts.widget(), dashes.widget(3)])   # doctest: +SKIP
    """
    runtime = bundle_text("standalone.js")
    widgets = list(widget) if isinstance(widget, Sequence) else [widget]
    if not widgets:
        raise ValueError("to_html needs at least one widget")
    data = {"runtime": runtime, "parts": [_part(w) for w in widgets]}
    name = title or " + ".join(type(w).__name__ for w in widgets)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{csp(LOADER)}">\n'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">\n<title>{html.escape(name)}</title>\n'
        f'<style>{_PAGE_CSS}</style>\n</head>\n<body>\n<div id="sw-root"></div>\n'
        f'<script type="application/json" id="sw-data">{script_json(data)}</script>\n'
        f'<script type="module">{LOADER}</script>\n</body>\n</html>\n'
    )


def save_html(widget: Widget | Sequence[Widget], path: str | Path, title: str | None = None) -> Path:
    """Write `widget` (or several, one below the other, each interactive on its own) as one
    self-contained HTML file that renders and reacts from `file://`.

    Example:
        >>> save_html(acts.widget(), "acts.html")               # doctest: +SKIP
    """
    path = html_path(path)
    path.write_text(to_html(widget, title), encoding="utf-8")
    return path


def html_path(path: object) -> Path:
    """`path` as a `Path` to write a page to; a `ValueError` naming what is allowed for anything else.

    Example:
        >>> html_path(None)
        Traceback (most recent call last):
        ...
        ValueError: save_html needs a file path (a str or an os.PathLike such as pathlib.Path), got None
    """
    if isinstance(path, os.PathLike) or (isinstance(path, str) and path.strip()):
        return Path(path)
    shown = (
        "an empty string" if isinstance(path, str) else "None" if path is None else f"a {type(path).__name__}"
    )
    raise ValueError(
        f"save_html needs a file path (a str or an os.PathLike such as pathlib.Path), got {shown}"
    )
