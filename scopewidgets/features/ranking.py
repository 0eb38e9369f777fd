"""Which features to list first: the density-aware *specificity* score, and raw activation order.

The default everywhere features are listed (`rank="specific"`) is

    score_f(a) = (a / typical_f) ** 3 * ln(1 / max(density_f, floor))

for a feature `f` active at `a > 0` (its peak over the tokens considered), where `typical_f` is the
feature's mean activation over the tokens where it fires (`FeatureStats.mean`; features never seen firing
use the median of the others), `density_f` the fraction of tokens where it fires, and
`floor = max(0.001, 1 / n_tokens)`. The first factor says how far above its usual level the feature fires
here (cubed: strength relative to the feature's own scale counts more than rarity; on the demo SAE shipped
now, powers 3-5 put a concept feature first more often than 1.5 or 2, under four definitions of "concept
feature", `benchmarks/RESULTS.md`); the second how rare
the feature is (one firing on 74% of tokens gets 0.3, one on 0.1% or less gets 6.9). Rarity below 0.1% earns
no more credit: such densities rest on a few dozen firings of a short pass, and features that fire on one
word or one document would otherwise crowd out the concept features (cities, months, colours...) that fire
on a class of words. Dense features and features firing at their usual strength drop down.
`benchmarks/concept_ranking.py` compares this score with others on held-out concept sentences
(`benchmarks/RESULTS.md`); `docs/features.md` explains it for users.

`rank="activation"` keeps raw order (highest activation first). Reserved features (`sae.reserved_features`)
are left out unless `include_reserved=True`, in both orders.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Sequence

import torch

from .stats import FeatureStats

RANKS = ("specific", "activation")


def check_rank(rank: str) -> str:
    """`rank` itself, or a `ValueError` naming the allowed values."""
    if rank not in RANKS:
        raise ValueError(f"rank must be one of {', '.join(repr(r) for r in RANKS)}, got {rank!r}")
    return rank


# statistics -> (typical, rarity), computed once per FeatureStats (rankings then cost one elementwise op)
_TERMS: weakref.WeakKeyDictionary[FeatureStats, tuple[torch.Tensor, torch.Tensor]] = (
    weakref.WeakKeyDictionary()
)


def _terms(stats: FeatureStats) -> tuple[torch.Tensor, torch.Tensor]:
    terms = _TERMS.get(stats)
    if terms is None:
        terms = _TERMS[stats] = (_typical(stats), _rarity(stats))
    return terms


def typical_activation(stats: FeatureStats) -> torch.Tensor:
    """`[d_sae]` each feature's mean activation when active; the median of the others where unknown."""
    return _terms(stats)[0]


def rarity(stats: FeatureStats) -> torch.Tensor:
    """`[d_sae]` `ln(1 / max(density, floor))`, `floor = max(0.001, 1 / n_tokens)`: 0 for a feature firing
    on every token, at most ln(1000) = 6.9."""
    return _terms(stats)[1]


def _typical(stats: FeatureStats) -> torch.Tensor:
    mean = stats.mean.clone()
    known = torch.isfinite(mean) & (mean > 0)
    fallback = float(mean[known].median()) if bool(known.any()) else 1.0
    mean[~known] = fallback
    return mean


DENSITY_FLOOR = 1e-3
STRENGTH_POWER = 3.0  # the exponent of a / typical (benchmarks/concept_ranking.py)


def _rarity(stats: FeatureStats) -> torch.Tensor:
    floor = max(DENSITY_FLOOR, 1.0 / stats.n_tokens if stats.n_tokens > 0 else 0.0)
    return (-torch.log(stats.density.clamp(min=floor))).clamp_min(0.0)


def specificity(values: torch.Tensor, stats: FeatureStats) -> torch.Tensor:
    """`[..., d_sae]` activations -> the specificity score of each (0 where the value is <= 0).

    Example:
        >>> import torch
        >>> stats = FeatureStats(torch.tensor([0.5, 0.001]), torch.ones(2), torch.ones(2), 1000, "example")
        >>> specificity(torch.tensor([[2.0, 1.0]]), stats).argmax().item()   # rare beats dense
        1
    """
    values = values.float()
    ratio = values.clamp_min(0.0) / typical_activation(stats).to(values.device)
    return ratio.pow(STRENGTH_POWER) * rarity(stats).to(values.device)


def scores(values: torch.Tensor, stats: FeatureStats | None, rank: str) -> torch.Tensor:
    """The ranking score of each activation: `specificity`, or the activation itself for "activation"."""
    if check_rank(rank) == "activation":
        return values.float()
    if stats is None:
        raise ValueError("rank='specific' needs feature statistics")
    return specificity(values, stats)


def hidden_mask(d_sae: int, reserved: Sequence[int], include_reserved: bool) -> torch.Tensor:
    """`[d_sae]` bool: features left out of a ranking (the reserved ones unless included)."""
    mask = torch.zeros(d_sae, dtype=torch.bool)
    if not include_reserved and len(reserved):
        mask[torch.as_tensor(list(reserved), dtype=torch.long)] = True
    return mask


def top_features(
    values: torch.Tensor,
    stats: FeatureStats | None,
    k: int | None,
    *,
    rank: str = "specific",
    reserved: Sequence[int] = (),
    include_reserved: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The (at most) `k` features with value > 0 in `values` `[d_sae]`, best first: `(features, scores)`.

    Ties keep the lower feature id first. Reserved features are left out unless `include_reserved`.

    Example:
        >>> top_features(torch.tensor([0.0, 3.0, 1.0]), None, 2, rank="activation")[0].tolist()
        [1, 2]
    """
    values = values.float().cpu()
    score = scores(values, stats, rank).cpu()
    keep = (values > 0) & ~hidden_mask(values.numel(), reserved, include_reserved)
    candidates = torch.nonzero(keep).flatten()
    order = torch.sort(score[candidates], descending=True, stable=True).indices
    chosen = candidates[order[: (len(order) if k is None else k)]]
    return chosen, score[chosen]


def per_token_top(
    values: torch.Tensor,
    stats: FeatureStats | None,
    k: int,
    *,
    rank: str = "specific",
    reserved: Sequence[int] = (),
    include_reserved: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """For `[n_tokens, d_sae]` activations, each token's `k` best features by `rank`: `(features, keep)`
    `[n_tokens, k]` (keep: value > 0 and not hidden); entries are best first, ties lower id first."""
    values = values.float()
    score = scores(values, stats, rank)
    hidden = hidden_mask(values.shape[-1], reserved, include_reserved).to(values.device)
    score = torch.where((values > 0) & ~hidden, score, torch.full_like(score, -math.inf))
    k = min(k, values.shape[-1])
    top_score, top_features = score.topk(k, dim=-1)
    return top_features, torch.isfinite(top_score)
