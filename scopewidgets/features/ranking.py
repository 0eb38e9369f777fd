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

At a text's first token (right after BOS) `typical_f` and `density_f` are the feature's statistics over
text starts when they are known (`FeatureStats.has_starts`, `features.starts`): a feature that fires on
"The" opening a text is common there, though rare in the running text of corpus windows. A text's score
for a feature is its best score over the text's tokens (`text_scores`).

`rank="activation"` keeps raw order (highest activation first). Reserved features (`sae.reserved_features`)
are left out unless `include_reserved=True`, in both orders.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Iterable, Sequence
from itertools import pairwise

import torch

from .stats import FeatureStats

RANKS = ("specific", "activation")


def check_rank(rank: str) -> str:
    """`rank` itself, or a `ValueError` naming the allowed values."""
    if rank not in RANKS:
        raise ValueError(f"rank must be one of {', '.join(repr(r) for r in RANKS)}, got {rank!r}")
    return rank


# (statistics, at a text start) -> (typical, rarity), computed once per FeatureStats (rankings then cost
# one elementwise op)
_TERMS: weakref.WeakKeyDictionary[FeatureStats, dict[bool, tuple[torch.Tensor, torch.Tensor]]] = (
    weakref.WeakKeyDictionary()
)


def _terms(stats: FeatureStats, start: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    start = start and stats.has_starts
    terms = _TERMS.setdefault(stats, {})
    if start not in terms:
        if start:
            typical = _typical(stats.start_mean, fallback=_terms(stats)[0])
            terms[start] = (typical, _rarity(stats.start_density, stats.n_starts))
        else:
            terms[start] = (_typical(stats.mean), _rarity(stats.density, stats.n_tokens))
    return terms[start]


def typical_activation(stats: FeatureStats, start: bool = False) -> torch.Tensor:
    """`[d_sae]` each feature's mean activation when active; the median of the others where unknown.
    `start=True`: at a text's first token, where the statistics have it (else its usual typical level)."""
    return _terms(stats, start)[0]


def rarity(stats: FeatureStats, start: bool = False) -> torch.Tensor:
    """`[d_sae]` `ln(1 / max(density, floor))`, `floor = max(0.001, 1 / n_tokens)`: 0 for a feature firing
    on every token, at most ln(1000) = 6.9. `start=True`: the density at a text's first token, where known."""
    return _terms(stats, start)[1]


def _typical(mean: torch.Tensor, fallback: torch.Tensor | None = None) -> torch.Tensor:
    mean = mean.clone()
    known = torch.isfinite(mean) & (mean > 0)
    if fallback is not None:  # at text starts: the feature's usual level where it never fired there
        return torch.where(known, mean, fallback)
    mean[~known] = float(mean[known].median()) if bool(known.any()) else 1.0
    return mean


DENSITY_FLOOR = 1e-3
STRENGTH_POWER = 3.0  # the exponent of a / typical (benchmarks/concept_ranking.py)


def _rarity(density: torch.Tensor, n: int) -> torch.Tensor:
    floor = max(DENSITY_FLOOR, 1.0 / n if n > 0 else 0.0)
    return (-torch.log(density.clamp(min=floor))).clamp_min(0.0)


def specificity(values: torch.Tensor, stats: FeatureStats, *, start: bool = False) -> torch.Tensor:
    """`[..., d_sae]` activations -> the specificity score of each (0 where the value is <= 0); `start`:
    activations at a text's first token (scored against the statistics there, when known).

    Example:
        >>> import torch
        >>> stats = FeatureStats(torch.tensor([0.5, 0.001]), torch.ones(2), torch.ones(2), 1000, "example")
        >>> specificity(torch.tensor([[2.0, 1.0]]), stats).argmax().item()   # rare beats dense
        1
    """
    values = values.float()
    typical, rare = _terms(stats, start)
    ratio = values.clamp_min(0.0) / typical.to(values.device)
    return ratio.pow(STRENGTH_POWER) * rare.to(values.device)


def scores(values: torch.Tensor, stats: FeatureStats | None, rank: str) -> torch.Tensor:
    """The ranking score of each activation: `specificity`, or the activation itself for "activation"."""
    if check_rank(rank) == "activation":
        return values.float()
    if stats is None:
        raise ValueError("rank='specific' needs feature statistics")
    return specificity(values, stats)


def token_scores(
    values: torch.Tensor, stats: FeatureStats | None, rank: str, starts: Iterable[int] = ()
) -> torch.Tensor:
    """`[n_tokens, d_sae]` activations -> each token's score for each feature (`scores`); the rows in
    `starts` hold a text's first token (right after BOS) and are scored against the statistics there.

    Example:
        >>> stats = FeatureStats(torch.tensor([0.5, 0.001]), torch.ones(2), torch.ones(2), 1000, "example",
        ...                      start_density=torch.tensor([0.001, 0.5]), start_mean=torch.ones(2), n_starts=1000)
        >>> token_scores(torch.ones(2, 2), stats, "specific", starts=[0]).argmax(dim=1).tolist()
        [0, 1]
    """
    score = scores(values, stats, rank)
    rows = sorted(set(starts))
    if rank == "specific" and rows and stats is not None and stats.has_starts:
        score = score.clone()
        score[rows] = specificity(values[rows], stats, start=True)
    return score


def peak_and_scores(
    values: torch.Tensor, stats: FeatureStats | None, rank: str, starts: Iterable[int] = ()
) -> tuple[torch.Tensor, torch.Tensor]:
    """`[n_tokens, d_sae]` activations -> `([d_sae] peak activation, [d_sae] best score over the tokens)`
    (`token_scores`), in one pass: the score grows with the activation, so the rows other than `starts` are
    scored once, at their peak (`amax` over the runs between start rows: views, no copy).

    Example:
        >>> stats = FeatureStats(torch.tensor([0.5, 0.001]), torch.ones(2), torch.ones(2), 1000, "example")
        >>> peak, score = peak_and_scores(torch.tensor([[0.0, 1.0], [2.0, 0.5]]), stats, "specific")
        >>> peak.tolist(), score.argmax().item()
        ([2.0, 1.0], 1)
    """
    if values.shape[0] == 0:
        nothing = values.new_zeros(values.shape[1])
        return nothing, scores(nothing, stats, rank)
    rows = sorted(set(starts)) if rank == "specific" and stats is not None and stats.has_starts else []
    bounds = [-1, *rows, values.shape[0]]
    runs = [values[a + 1 : b].amax(dim=0) for a, b in pairwise(bounds) if b > a + 1]
    rest = torch.stack(runs).amax(dim=0) if runs else None
    if not rows:
        return rest, scores(rest, stats, rank)
    at_start = values[rows].amax(dim=0)
    best_start = specificity(values[rows], stats, start=True).amax(dim=0)
    if rest is None:
        return at_start, best_start
    return torch.maximum(rest, at_start), torch.maximum(scores(rest, stats, rank), best_start)


def text_scores(
    values: torch.Tensor, stats: FeatureStats | None, rank: str, starts: Iterable[int] = ()
) -> torch.Tensor:
    """`[n_tokens, d_sae]` activations -> `[d_sae]` each feature's best score over the tokens: how a whole
    text ranks its features (`peak_and_scores`).

    Example:
        >>> stats = FeatureStats(torch.tensor([0.5, 0.001]), torch.ones(2), torch.ones(2), 1000, "example")
        >>> text_scores(torch.tensor([[0.0, 1.0], [2.0, 0.5]]), stats, "specific").argmax().item()
        1
    """
    return peak_and_scores(values, stats, rank, starts)[1]


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
    starts: Iterable[int] = (),
) -> tuple[torch.Tensor, torch.Tensor]:
    """The (at most) `k` features with value > 0 in `values`, best first: `(features, scores)`.

    `values` is one activation per feature `[d_sae]` (a peak), or a text's `[n_tokens, d_sae]`: then each
    feature's score is its best over the tokens (`text_scores`, with `starts` the rows of a text's first
    token). Ties keep the lower feature id first. Reserved features are left out unless `include_reserved`.

    Example:
        >>> top_features(torch.tensor([0.0, 3.0, 1.0]), None, 2, rank="activation")[0].tolist()
        [1, 2]
    """
    values = values.float().cpu()
    if values.ndim == 2:
        values, score = peak_and_scores(values, stats, rank, starts)
    else:
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
    starts: Iterable[int] = (),
) -> tuple[torch.Tensor, torch.Tensor]:
    """For `[n_tokens, d_sae]` activations, each token's `k` best features by `rank`: `(features, keep)`
    `[n_tokens, k]` (keep: value > 0 and not hidden); entries are best first, ties lower id first. `starts`:
    the rows of a text's first token (`token_scores`)."""
    values = values.float()
    score = token_scores(values, stats, rank, starts)
    hidden = hidden_mask(values.shape[-1], reserved, include_reserved).to(values.device)
    score = torch.where((values > 0) & ~hidden, score, torch.full_like(score, -math.inf))
    k = min(k, values.shape[-1])
    top_score, top_features = score.topk(k, dim=-1)
    return top_features, torch.isfinite(top_score)
