"""What the token-activations view sends: display text of tokens and sparse top-k activations.

Python decides everything the view shows: which characters make whitespace visible, which features each
token lists, the side list of features and the colour limits. Arrays are built with tensor ops (no
per-token Python loop over activations).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..activations import Activations
from ..core.sae import SAE
from ..features import FeatureStats, ranking
from ..features.columns import density_column
from ._serialize import from_binary, to_binary

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


def pack_entries(
    features: torch.Tensor, values: torch.Tensor, counts: torch.Tensor, d_sae: int
) -> dict[str, Any]:
    """The compact wire form of CSR top-k entries (about 3 bytes per entry).

    - `topk_features`: uint16 feature ids when `d_sae` <= 65,536 (`feature_table` then empty); for wider
      SAEs uint16 slots into `feature_table` (int32 `[n_distinct]`, the distinct features listed; int32 slots
      if a view ever lists more than 65,535 distinct features);
    - `topk_scale` float32 `[n_tokens]`: the largest value among each token's entries, exact;
    - `topk_values` uint8 `[nnz]`: each value as a fraction of that largest, in 1/255 steps (255: the
      largest, exact; others are within 0.2% of it; a selected feature's values are sent exactly).

    Example:
        >>> packed = pack_entries(torch.tensor([9, 4]), torch.tensor([2.0, 1.0]), torch.tensor([2]), 2**20)
        >>> from_binary(packed["feature_table"]).tolist(), from_binary(packed["topk_values"]).tolist()
        ([4, 9], [255, 128])
    """
    if d_sae <= 65536:
        table, slots = {}, to_binary(features, "uint16")
    else:
        ids, inverse = torch.unique(features, return_inverse=True)
        table, slots = to_binary(ids, "int32"), to_binary(inverse, "uint16" if len(ids) <= 65535 else "int32")
    owner = torch.repeat_interleave(torch.arange(len(counts)), counts.long())
    scale = torch.zeros(len(counts)).scatter_reduce(0, owner, values.float(), "amax", include_self=True)
    quantized = (
        torch.round(values / scale[owner].clamp_min(1e-30) * 255).clamp(1, 255) if len(values) else values
    )
    return {
        "feature_table": table,
        "topk_features": slots,
        "topk_values": to_binary(quantized, "uint8"),
        "topk_scale": to_binary(scale, "float32"),
        "topk_counts": to_binary(counts, "uint8"),
    }


PACKED = ("feature_table", "topk_features", "topk_values", "topk_scale", "topk_counts")


def unpack_entries(packed: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inverse of `pack_entries` (values dequantized): features, values, counts as numpy arrays."""
    counts = from_binary(packed["topk_counts"]).astype(np.int64)
    features = from_binary(packed["topk_features"]).astype(np.int64)
    if packed.get("feature_table"):
        features = from_binary(packed["feature_table"]).astype(np.int64)[features]
    owner = np.repeat(np.arange(len(counts)), counts)
    values = (
        from_binary(packed["topk_values"]).astype(np.float32) / 255 * from_binary(packed["topk_scale"])[owner]
    )
    return features, values, counts


def feature_summary(rows: Sequence[Activations], n: int, ranked: Ranked) -> list[dict[str, Any]]:
    """The `n` best features over all rows by `ranked.rank`: `{feature, max, count, density, score}`
    (count = tokens where it fires; density from the SAE's statistics, None when unknown); features that
    never fire, and hidden (reserved) ones, are left out.

    Example:
        >>> feature_summary([acts], 5, Ranked.of([acts]))[0].keys()          # doctest: +SKIP
        dict_keys(['feature', 'max', 'count', 'density', 'score'])
    """
    values = (
        rows[0].values if len(rows) == 1 else torch.cat([row.values for row in rows])
    )  # one text: no copy
    offsets = torch.tensor([0, *(len(row) for row in rows)]).cumsum(0).tolist()
    starts = [offset + r for row, offset in zip(rows, offsets, strict=False) for r in row.start_rows]
    chosen, scores = ranking.top_features(values, ranked.stats, n, **ranked.options, starts=starts)
    listed = values[:, chosen]  # only the listed features' columns are read again
    peak, count = listed.amax(dim=0), (listed > 0).sum(dim=0)
    density = density_column(ranked.stats, chosen)
    return [
        {"feature": int(f), "max": float(m), "count": int(c), "density": None if math.isnan(d) else d,
         "score": float(s)}
        for f, m, c, d, s in zip(chosen.tolist(), peak.tolist(), count.tolist(), density, scores.tolist(),
                                 strict=True)
    ]  # fmt: skip


def labels_of(sae: SAE, features: Iterable[int]) -> dict[str, str]:
    """`{str(feature): label}` for those of `features` that the SAE labels.

    Example:
        >>> labels_of(acts.sae, [3, 4])                            # doctest: +SKIP
        {'3': 'Paris'}
    """
    found = {f: sae.label(f) for f in map(int, features)}  # hand-written, else automatic
    return {str(f): text for f, text in found.items() if text}


def limits(values: torch.Tensor) -> list[float]:
    """Colour limits `[0, max]` of a set of activations (`[0, 1]` when nothing fires)."""
    top = float(values.max()) if values.numel() else 0.0
    return [0.0, top if top > 0 else 1.0]


@dataclass(frozen=True)
class Ranked:
    """How a view orders features: `rank`, the statistics it needs, and the features it hides."""

    rank: str
    stats: FeatureStats | None
    reserved: tuple[int, ...]
    include_reserved: bool

    @classmethod
    def of(
        cls, rows: Sequence[Activations], rank: str = "specific", include_reserved: bool = False
    ) -> Ranked:
        rank, stats = rows[0]._ranking(rank)
        return cls(rank, stats, tuple(rows[0].sae.reserved_features), bool(include_reserved))

    @property
    def options(self) -> dict[str, Any]:
        return {"rank": self.rank, "reserved": self.reserved, "include_reserved": self.include_reserved}


def ranked_entries(
    values: torch.Tensor, k: int, ranked: Ranked, starts: Sequence[int] = ()
) -> tuple[torch.Tensor, ...]:
    """Like `topk_entries`, but each token's `k` best features by `ranked` (hidden ones left out); `starts`:
    the rows of a text's first token (`ranking.token_scores`)."""
    if not 1 <= k <= 255:
        raise ValueError(f"k must be in [1, 255], got {k}")
    top, keep = ranking.per_token_top(values, ranked.stats, k, **ranked.options, starts=starts)
    return top[keep], values.float().gather(-1, top)[keep], keep.sum(dim=-1)


def default_colour(values: torch.Tensor, ranked: Ranked) -> tuple[torch.Tensor, torch.Tensor]:
    """Each token's strongest feature that is not hidden: `(values [n], features [n])` (-1: none fires)."""
    hidden = ranking.hidden_mask(values.shape[-1], ranked.reserved, ranked.include_reserved)
    strongest, feature = values.float().masked_fill(hidden, 0.0).max(dim=-1)
    return strongest.clamp_min(0.0), torch.where(strongest > 0, feature, -1)


def ranked_data(rows: Sequence[Activations], k: int, n_features: int, ranked: Ranked) -> dict[str, Any]:
    """The traits that depend on the ranking: per-token lists, side list, labels and default colouring."""
    sae = rows[0].sae
    features, values, counts = (
        torch.cat(parts)
        for parts in zip(*(ranked_entries(r.values, k, ranked, r.start_rows) for r in rows), strict=True)
    )
    summary = feature_summary(rows, n_features, ranked)
    colour, colour_feature = (
        torch.cat(parts) for parts in zip(*(default_colour(r.values, ranked) for r in rows), strict=True)
    )
    listed = sorted(set(features.tolist()) | {item["feature"] for item in summary})
    known = density_column(ranked.stats, listed)
    return {
        **pack_entries(features, values, counts, sae.cfg.d_sae),
        "top_features": summary,
        "densities": {str(f): d for f, d in zip(listed, known, strict=True) if not math.isnan(d)},
        "labels": labels_of(sae, [item["feature"] for item in summary]),
        "color_values": to_binary(colour, "float32"),
        "color_features": to_binary(colour_feature, "int32"),
        "color_limits": limits(colour),
    }


def view_data(
    rows: Sequence[Activations], k: int, n_features: int, ranked: Ranked | None = None
) -> dict[str, Any]:
    """Every data trait of the view for `rows` (one `Activations` per text, all with the same SAE)."""
    sae = rows[0].sae
    if any(row.sae.cfg != sae.cfg for row in rows):
        raise ValueError("All texts of one view must use the same SAE")
    ranked = ranked or Ranked.of(rows)
    tokens: list[str] = []
    special: list[int] = []
    for row in rows:
        mask = row.bos_mask.tolist() if row.bos_mask is not None else [False] * len(row)
        special += [len(tokens) + i for i, is_special in enumerate(mask) if is_special]
        tokens += [display_text(t, s) for t, s in zip(row.tokens, mask, strict=True)]
    return {
        "tokens": tokens,
        "row_lengths": [len(row) for row in rows],
        "special": special,
        "reserved": list(ranked.reserved),
        **ranked_data(rows, k, n_features, ranked),
    }
