"""Self-contained HTML export of a widget: its bundled module, CSS and state inlined in one file.

The page carries a JSON block (`<script type="application/json">`, with `<`, `>`, `&` escaped so no text in
the data can close the script) and a four-line loader that imports `static/standalone.js` (a stand-in for
the anywidget model) from a Blob URL, which then imports the widget module the same way. A Content
Security Policy forbids every network request. Binary buffers travel as `{"__sw_buffer__": base64}`.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anywidget

from ._base import bundle_text

if TYPE_CHECKING:
    from ._base import Widget

#: Synced traits that belong to the widget machinery, not to the view's state.
_MACHINERY = {*anywidget.AnyWidget.class_trait_names(sync=True), "_esm", "_css", "_anywidget_id"}
_PAGE_CSS = """
:root { color-scheme: light dark; }
body { margin: 16px; background: #fff; color: #1f2328; font-family: system-ui, sans-serif; }
@media (prefers-color-scheme: dark) {
  body { background: #1e1e1e; color: #d4d4d4; --jp-ui-font-color1: #d4d4d4; --jp-ui-font-color2: #a0a0a0;
    --jp-layout-color1: #1e1e1e; --jp-layout-color2: #2d2d2d; --jp-border-color2: #444; }
}
"""
_LOADER = """
const data = JSON.parse(document.getElementById("sw-data").textContent);
const url = URL.createObjectURL(new Blob([data.runtime], { type: "text/javascript" }));
const runtime = await import(url);
await runtime.mount(data, document.getElementById("sw-root"));
"""
# Only the loader above (by hash) and Blob modules may run: inline event handlers and all network are blocked.
_CSP = (
    "default-src 'none'; script-src 'sha256-"
    + base64.b64encode(hashlib.sha256(_LOADER.encode()).digest()).decode()
    + "' blob:; style-src 'unsafe-inline'; img-src data: blob:; font-src data:"
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


def to_html(widget: Widget, title: str | None = None) -> str:
    """The HTML page for `widget` (see `save_html`).

    Example:
        >>> page = to_html(acts.widget())                       # doctest: +SKIP
    """
    state = {key: value for key, value in widget.get_state().items() if key not in _MACHINERY}
    state.update(widget._export_state())
    data = {
        "runtime": bundle_text("standalone.js"),
        "module": widget._esm,
        "css": widget._css,
        "state": _encode(state),
        "responses": _encode(widget._export_responses()),
    }
    name = html.escape(title or type(widget).__name__)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">\n'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">\n<title>{name}</title>\n'
        f'<style>{_PAGE_CSS}</style>\n</head>\n<body>\n<div id="sw-root"></div>\n'
        f'<script type="application/json" id="sw-data">{script_json(data)}</script>\n'
        f'<script type="module">{_LOADER}</script>\n</body>\n</html>\n'
    )


def save_html(widget: Widget, path: str | Path, title: str | None = None) -> Path:
    """Write `widget` as one self-contained HTML file that renders and reacts from `file://`.

    Example:
        >>> save_html(acts.widget(), "acts.html")               # doctest: +SKIP
    """
    path = Path(path)
    path.write_text(to_html(widget, title), encoding="utf-8")
    return path
