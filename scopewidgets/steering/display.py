"""How a `Steering` result reads without the widget: a text summary and a static HTML preview.

The preview shows the prompt, then the default and the steered completions side by side, with the tokens
that differ between them marked. Every token is HTML-escaped; there is no script.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .result import Steering

_STYLE = (
    "font-family:ui-monospace,monospace;font-size:13px;border-collapse:collapse;"
    "white-space:pre-wrap;max-width:100%"
)


def settings_line(result: Steering) -> str:
    """`add {12: 8.0} at all positions, greedy` / `... temperature 0.5, seed 16`."""
    sampling = (
        "greedy" if result.temperature == 0 else f"temperature {result.temperature:g}, seed {result.seed}"
    )
    where = "" if result.sae is None else f" ({result.sae.cfg.site}@{result.sae.cfg.layer})"
    return f"{result.method} {result.features}{where} at {result.positions} positions, {sampling}"


def text_summary(result: Steering) -> str:
    """Plain-text form for front ends without HTML.

    Example:
        >>> print(text_summary(out))                                  # doctest: +SKIP
        Steering: add {12: 8.0} (resid_post@6) at all positions, greedy; differs from step 3
          prompt:  'I think'
          default: ' that the best way to ...'
          steered: ' that the Eiffel Tower ...'
    """
    first = result.first_difference
    differs = "identical completions" if first is None else f"differs from step {first}"
    return (
        f"Steering: {settings_line(result)}; {differs}\n"
        f"  prompt:  {result.prompt!r}\n"
        f"  default: {result.default_text!r}\n"
        f"  steered: {result.steered_text!r}"
    )


def _tokens_html(tokens: list[str], differs: list[bool]) -> str:
    parts = []
    for token, changed in zip(tokens, differs, strict=False):
        text = html.escape(token)
        parts.append(f'<mark style="background:#ffe08a">{text}</mark>' if changed else text)
    return "".join(parts)


def preview_html(result: Steering) -> str:
    """Static HTML: prompt, then default | steered side by side, differing tokens highlighted.

    Example:
        >>> "<mark" in preview_html(out)                               # doctest: +SKIP
        True
    """
    differs = result.differs
    prompt = html.escape("".join(result.prompt_tokens[1:]))  # without BOS
    cells = [
        f'<td style="vertical-align:top;padding:4px 8px;border:1px solid #ddd">'
        f'<span style="color:#888">{prompt}</span>{_tokens_html(tokens, differs)}</td>'
        for tokens in (result.default_tokens, result.steered_tokens)
    ]
    return (
        f'<table style="{_STYLE}"><caption style="text-align:left;color:#555">'
        f"Steering: {html.escape(settings_line(result))}</caption>"
        '<tr><th style="text-align:left">default</th><th style="text-align:left">steered</th></tr>'
        f"<tr>{''.join(cells)}</tr></table>"
    )
