"""What the token-activations view sends: display text of tokens and sparse top-k activations.

Python decides everything the view shows: which characters make whitespace visible, which features each
token lists, the side list of features and the colour limits. Arrays are built with tensor ops (no
per-token Python loop over activations).
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import Any

import torch

from ..activations import Activations
from ..sae import SAE
from ._serialize import to_binary

#: Visible stand-ins for whitespace; a newline keeps its line break after the arrow.
VISIBLE = {" ": "·", "\n": "↵\n", "\t": "⇥", "\r": "␍"}
EMPTY = "∅"


def display_text(token: str, special: bool = False) -> str:
    """How a token is shown: whitespace-only tokens become visible (`·`, `↵`, `⇥`), newlines and tabs
    are always visible, other text is kept as is (it is inserted as text, never as HTML).

    Example:
        >>> [display_text(t) for t in ["  ", "\\n", " the", "a\\tb", ""]]
        ['··', '↵\\n', ' the', 'a⇥b', '∅']
    """
    if special or token == "":
        return token or EMPTY
    if token.isspace():
        return "".join(VISIBLE.get(ch, "·") for ch in token)
    return token.replace("\r", "␍").replace("\n", "↵\n").replace("\t", "⇥")


def topk_entries(values: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per token, the `k` strongest features with value > 0, strongest first, in CSR form.

    `values` is `[n_tokens, d_sae]`. Returns features `[nnz]` (int), values `[nnz]` (float32) and
    counts `[n_tokens]` (entries per token).

    Example:
        >>> features, vals, counts = topk_entries(torch.tensor([[0.0, 2.0, 1.0], [0.0, 0.0, 0.0]]), k=2)
        >>> features.tolist(), vals.tolist(), counts.tolist()
        ([1, 2], [2.0, 1.0], [2, 0])
    """
    if not 1 <= k <= 255:
        raise ValueError(f"k must be in [1, 255], got {k}")
    top_values, top_features = values.float().topk(min(k, values.shape[-1]), dim=-1)
    keep = top_values > 0
    return top_features[keep], top_values[keep], keep.sum(dim=-1)


def feature_summary(rows: Sequence[Activations], n: int) -> list[dict[str, Any]]:
    """The `n` features with the highest activation over all rows: `{feature, max, count}` (count =
    tokens where it fires), strongest first; features that never fire are left out.

    Example:
        >>> feature_summary([acts], n=5)[0].keys()                 # doctest: +SKIP
        dict_keys(['feature', 'max', 'count'])
    """
    peak = torch.stack([row.values.max(dim=0).values for row in rows]).max(dim=0).values
    count = torch.stack([(row.values > 0).sum(dim=0) for row in rows]).sum(dim=0)
    top_values, top_features = peak.topk(min(n, peak.numel()))
    keep = top_values > 0
    return [
        {"feature": int(f), "max": float(v), "count": int(count[f])}
        for f, v in zip(top_features[keep].tolist(), top_values[keep].tolist(), strict=True)
    ]


def labels_of(sae: SAE, features: Iterable[int]) -> dict[str, str]:
    """`{str(feature): label}` for those of `features` that the SAE labels.

    Example:
        >>> labels_of(acts.sae, [3, 4])                            # doctest: +SKIP
        {'3': 'Paris'}
    """
    return {str(f): sae.labels[f] for f in map(int, features) if f in sae.labels}


def limits(values: torch.Tensor) -> list[float]:
    """Colour limits `[0, max]` of a set of activations (`[0, 1]` when nothing fires)."""
    top = float(values.max()) if values.numel() else 0.0
    return [0.0, top if top > 0 else 1.0]


def view_data(rows: Sequence[Activations], k: int, n_features: int) -> dict[str, Any]:
    """Every data trait of the view for `rows` (one `Activations` per text, all with the same SAE)."""
    sae = rows[0].sae
    if any(row.sae.cfg != sae.cfg for row in rows):
        raise ValueError("All texts of one view must use the same SAE")
    tokens: list[str] = []
    special: list[int] = []
    for row in rows:
        mask = row.bos_mask.tolist() if row.bos_mask is not None else [False] * len(row)
        special += [len(tokens) + i for i, is_special in enumerate(mask) if is_special]
        tokens += [display_text(t, s) for t, s in zip(row.tokens, mask, strict=True)]
    features, values, counts = (
        torch.cat(parts) for parts in zip(*(topk_entries(r.values, k) for r in rows), strict=True)
    )
    summary = feature_summary(rows, n_features)
    strongest = torch.cat([row.values.max(dim=-1).values for row in rows])
    return {
        "tokens": tokens,
        "row_lengths": [len(row) for row in rows],
        "special": special,
        "topk_features": to_binary(features, "int32"),
        "topk_values": to_binary(values, "float32"),
        "topk_counts": to_binary(counts, "uint8"),
        "top_features": summary,
        "labels": labels_of(sae, [item["feature"] for item in summary]),
        "color_limits": limits(strongest),
    }


def summary_text(rows: Sequence[Activations], n: int = 5) -> str:
    """One plain-text line for notebooks without a widget manager.

    Example:
        >>> summary_text([acts])                                   # doctest: +SKIP
        'Activations: 6 tokens, SAE resid_post@1 (32 features); strongest: #13 4.41, #29 3.91'
    """
    cfg = rows[0].sae.cfg
    texts = f" in {len(rows)} texts" if len(rows) > 1 else ""
    strongest = ", ".join(f"#{item['feature']} {item['max']:.3g}" for item in feature_summary(rows, n))
    return (
        f"Activations: {sum(len(r) for r in rows)} tokens{texts}, "
        f"SAE {cfg.site}@{cfg.layer} ({cfg.d_sae} features)"
        f"; strongest: {strongest or 'none fire'}"
    )


def static_html(rows: Sequence[Activations], max_tokens: int = 400) -> str:
    """A static HTML preview (tokens shaded by their strongest feature), escaped, no script: what a
    notebook viewer without the widget manager shows.

    Example:
        >>> "<script" in static_html([acts])                        # doctest: +SKIP
        False
    """
    strongest = [row.values.max(dim=-1).values for row in rows]
    top = limits(torch.cat(strongest))[1]
    lines, shown = [], 0
    for row, values in zip(rows, strongest, strict=True):
        mask = row.bos_mask.tolist() if row.bos_mask is not None else [False] * len(row)
        spans = []
        for token, value, special in zip(
            row.tokens[: max(0, max_tokens - shown)], values.tolist(), mask, strict=False
        ):
            alpha = 0.12 + 0.78 * value / top if value > 0 else 0.0
            text = html.escape(display_text(token, special))
            spans.append(f'<span style="background:rgba(234,88,12,{alpha:.2f})">{text}</span>')
        shown += len(spans)
        lines.append(
            f'<div style="white-space:pre-wrap;font-family:monospace;line-height:1.8">{"".join(spans)}</div>'
        )
    more = sum(len(r) for r in rows) - shown
    note = f" ({more} more tokens not shown)" if more > 0 else ""
    return (
        f'<div class="scopewidgets-static">{"".join(lines)}<p style="opacity:.7;font-size:12px">'
        f"{html.escape(summary_text(rows))}{note}. Static preview shaded by each token's strongest "
        "feature: the interactive view needs the widget manager and a kernel "
        "(or use <code>save_html()</code>).</p></div>"
    )
