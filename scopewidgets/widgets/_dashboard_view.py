"""What the dashboard widget sends for one feature: Python decides the text, the colour limits and which
features can be opened; arrays travel as binary."""

from __future__ import annotations

import html
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ..core.display import presents
from ..dashboards.examples import Example
from ..dashboards.result import FeatureDashboard
from ..features.stats import FeatureStats
from ._serialize import to_binary
from ._tokens import display_text


def _finite(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def header_of(dash: FeatureDashboard) -> dict[str, Any]:
    """Feature id, label and the headline statistics (None where unknown)."""
    return {
        "feature": dash.feature,
        "label": dash.label or "",
        "density": _finite(dash.density),
        "max_activation": _finite(dash.max_activation),
        "mean_activation": _finite(dash.mean_activation),
        "n_tokens": dash.n_tokens,
        "source": dash.source,
    }


def strip_text(token: str, special: bool = False) -> str:
    """A token as shown in a one-line example strip: `display_text` with newlines as "↵" and no break.

    Example:
        >>> [strip_text(t) for t in ["\\n\\n", " the\\n", "a b"]]
        ['↵↵', ' the↵', 'a b']
    """
    return display_text(token, special).replace("\n", "")


def examples_of(dash: FeatureDashboard, bos: int | None) -> dict[str, Any]:
    """Every example (top ones, then each quantile group's) as one-line token strips sharing the colour
    limits `[0, max_activation]`: flat `tokens`, per-example `lengths`, `focus`, `max_values`, `seq_index`,
    `position`, per-token `values` (NaN: unknown), `special` (1 for BOS), the `groups` over them, and
    `max_context`, the most tokens kept on one side of a focus (how far the view can widen)."""
    examples: list[Example] = list(dash.examples)
    groups = [{"kind": "top", "first": 0, "count": len(examples)}]
    for group in dash.quantiles:
        groups.append({"kind": "quantile", "first": len(examples), "count": len(group.examples),
                       "lower": group.lower, "upper": group.upper, "tokens": group.count,
                       "fraction": group.fraction})  # fmt: skip
        examples += group.examples
    ids = [int(i) for e in examples for i in e.token_ids]
    values = np.concatenate([e.values.numpy() for e in examples]) if examples else np.zeros(0)
    top = dash.max_activation if dash.max_activation > 0 else 1.0
    return {
        "tokens": [strip_text(t, i == bos) for e in examples for t, i in zip(e.tokens, e.token_ids.tolist(), strict=True)],
        "special": to_binary(np.array([i == bos for i in ids], dtype=np.uint8), "uint8"),
        "values": to_binary(values, "float32"),
        "lengths": to_binary([len(e.tokens) for e in examples], "int32"),
        "focus": to_binary([e.focus for e in examples], "int32"),
        "max_values": to_binary([e.max_value for e in examples], "float32"),
        "seq_index": to_binary([e.seq_index for e in examples], "float64"),
        "position": to_binary([e.position for e in examples], "int32"),
        "groups": groups,
        "limits": [0.0, float(top)],
        "max_context": max((max(e.focus, len(e.tokens) - 1 - e.focus) for e in examples), default=0),
    }  # fmt: skip


Logits = list[tuple[str, float]]


def dashboard_state(
    dash: FeatureDashboard,
    covered: Callable[[int], bool],
    bos: int | None,
    stats: FeatureStats | None = None,
    steered: tuple[Logits, Logits] | None = None,
) -> dict[str, Any]:
    """Every data trait of the widget for one feature. `covered(f)`: can feature f be opened here;
    `stats`: where the densities of similar features outside the pass come from; `steered`: the tokens
    steering with the feature raises and lowers most (`features.logit.steered_logits`), when known."""
    counts, edges = dash.histogram

    def listed(pairs: Logits) -> list[dict[str, Any]]:
        return [{"token": display_text(t), "value": v} for t, v in pairs]

    return {
        "feature": dash.feature,
        "header": header_of(dash),
        "histogram": {"counts": to_binary(counts, "float64"), "edges": to_binary(edges, "float64")},
        "logits": {
            "top": listed(dash.top_logits),
            "bottom": listed(dash.bottom_logits),
            "steer_top": listed(steered[0]) if steered else [],
            "steer_bottom": listed(steered[1]) if steered else [],
        },
        "examples": examples_of(dash, bos),
        "similar": similar_of(dash, covered, stats),
    }


def similar_of(
    dash: FeatureDashboard, covered: Callable[[int], bool], stats: FeatureStats | None
) -> list[dict[str, Any]]:
    """`dash.similar_table(stats)` as `{feature, cosine, density, label, covered}` (density None: unknown)."""
    table = dash.similar_table(stats)
    return [
        {"feature": f, "cosine": c, "density": _finite(d), "label": label, "covered": covered(f)}
        for f, c, d, label in zip(
            table.feature.tolist(), table.cosine.tolist(), table.density.tolist(), table.label, strict=True
        )
    ]


@presents(FeatureDashboard, role="text")
def summary_text(dash: FeatureDashboard) -> str:
    """One plain-text line describing a dashboard: the tokens steering with the feature promotes when its
    widget knows them (the model's steering Jacobian is known), else the direct top logits."""
    label = f" {dash.label!r}" if dash.label else ""
    # the widget shown beside this text, when built: its lists are reused, not computed again
    view = dash.__dict__.get("_view")
    steered = view.logits.get("steer_top") if view is not None and view.feature == dash.feature else None
    if steered:
        effect = "promoted by steering " + ", ".join(repr(item["token"]) for item in steered[:5])
    else:
        effect = "top logits " + ", ".join(repr(t) for t, _ in dash.top_logits[:5])
    return (f"FeatureDashboard #{dash.feature}{label}: density {dash.density:.3g}, max {dash.max_activation:.3g}, "
            f"{len(dash.examples)} top examples; {effect}")  # fmt: skip


@presents(FeatureDashboard, role="html")
def static_html(dash: FeatureDashboard, n_examples: int = 5) -> str:
    """An escaped, script-free preview: header, top logits and the first examples with the focus in bold."""
    rows = []
    for example in dash.examples[:n_examples]:
        parts = [html.escape(t) for t in example.tokens]
        if 0 <= example.focus < len(parts):
            parts[example.focus] = f"<b>{parts[example.focus]}</b>"
        rows.append(f"<li style='font-family:monospace;white-space:pre-wrap'>{''.join(parts)} "
                    f"({example.max_value:.3g})</li>")  # fmt: skip
    logits = ", ".join(html.escape(repr(t)) for t, _ in dash.top_logits[:10])
    return (f"<div class='scopewidgets-static'><p>{html.escape(summary_text(dash))}</p>"
            f"<p>Top logits: {logits}</p><ol>{''.join(rows)}</ol></div>")  # fmt: skip
