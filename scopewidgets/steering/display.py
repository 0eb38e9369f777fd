"""How a `Steering` result reads without the widget: a text summary and a static HTML preview.

The preview shows the prompt, then the default and the steered completions side by side, with the tokens
that differ between them marked. Every token is HTML-escaped; there is no script.
"""

from __future__ import annotations

import html
import math
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


def percent(density: float | None) -> str:
    """A density as the widgets show it: a percentage with 3 significant digits, "–" when unknown.

    Example:
        >>> percent(0.0042), percent(0.5), percent(float("nan")), percent(None)
        ('0.42%', '50%', '–', '–')
    """
    if density is None or not math.isfinite(density):
        return "–"
    return f"{100 * density:.3g}%"


def features_line(result: Steering) -> str:
    """Each steered feature with its label (when it has one) and density:
    `#12 'Paris' (density 0.42%), #7 (density –)`."""
    parts = []
    for feature in result.features:
        label = result.sae.label(feature) if result.sae is not None else None
        named = f"#{feature} {label!r}" if label else f"#{feature}"
        parts.append(f"{named} (density {percent(result.densities.get(feature))})")
    return ", ".join(parts)


def summary_line(result: Steering) -> str:
    """What produced a result, in one line: `Steering: <settings_line>; #12 'Paris' (density 0.42%)`."""
    return f"Steering: {settings_line(result)}; {features_line(result)}"


def text_summary(result: Steering) -> str:
    """Plain-text form for front ends without HTML (density: the fraction of corpus tokens where a feature
    fires; "–" when unknown).

    Example:
        >>> print(text_summary(out))                                  # doctest: +SKIP
        Steering: add {12: 8.0} (resid_post@6) at all positions, greedy; differs from step 3
          features: #12 'Paris' (density 0.42%)
          prompt:  'I think'
          default: ' that the best way to ...'
          steered: ' that the Eiffel Tower ...'
    """
    first = result.first_difference
    differs = "identical completions" if first is None else f"differs from step {first}"
    return (
        f"Steering: {settings_line(result)}; {differs}\n"
        f"  features: {features_line(result)}\n"
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
        f"Steering: {html.escape(settings_line(result))}<br>"
        f"features: {html.escape(features_line(result))}</caption>"
        '<tr><th style="text-align:left">default</th><th style="text-align:left">steered</th></tr>'
        f"<tr>{''.join(cells)}</tr></table>"
    )
