"""Per-feature views of a finished pass: examples, quantile groups and the histogram of one feature.

This is where the fine power-of-two buckets of a `DashboardState` become what users see:

- histogram: the `R_h` fine bins of `[0, 2**e)` are summed in runs of `g = ceil(n_used / n_bins)`, where
  `n_used` is the number of fine bins up to the maximum. That gives exactly `n_bins` equal bins from 0 to a
  little above the maximum, and the counts are exact for the returned edges.
- quantile groups: the `R_q` sample buckets up to the maximum are split into `n_groups` runs of nearly equal
  length; each group shows the `per_group` smallest sample keys among its buckets (a uniform sample of the
  tokens in its range) and counts its tokens from the fine histogram.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from .examples import Example, Histogram, QuantileGroup
from .select import EMPTY_EXPONENT, Entries, bucket_index
from .state import DashboardState

TokenText = Callable[[torch.Tensor], list[str]]


class FeatureRows(Protocol):
    """What a `DashboardSet` reads its per-feature statistics from."""

    features: torch.Tensor
    n_tokens: int
    source: str

    def stats(self) -> dict[str, np.ndarray]: ...
    def examples(self, col: int, text: TokenText) -> list[Example]: ...
    def quantiles(self, col: int, text: TokenText) -> list[QuantileGroup]: ...
    def histogram(self, col: int, n_bins: int) -> Histogram: ...


def make_example(
    ids: torch.Tensor, acts: torch.Tensor, value: float, seq: int, pos: int, context: int, text: TokenText
) -> Example:
    """An `Example` from a padded window (`ids` -1 beyond the sequence) centred on the focus token."""
    values, seqs, positions = torch.tensor([value]), torch.tensor([seq]), torch.tensor([pos])
    return make_examples(ids[None], acts[None], values, seqs, positions, context, text)[0]


def make_examples(
    ids: torch.Tensor,
    acts: torch.Tensor,
    value: torch.Tensor,
    seq: torch.Tensor,
    pos: torch.Tensor,
    context: int,
    text: TokenText,
) -> list[Example]:
    """`make_example` for `[N, W]` windows at once: a few array ops and one `text` call for all of them;
    each example's `token_ids` and `values` are views of two shared flat tensors."""
    inside = (ids >= 0).cpu().numpy()
    first = inside.argmax(axis=1).tolist()
    starts = [0, *itertools.accumulate(inside.sum(axis=1).tolist())]
    flat_ids = torch.from_numpy(ids.cpu().long().numpy()[inside])
    flat_values = torch.from_numpy(acts.cpu().float().numpy()[inside])
    strings = text(flat_ids)
    return [
        Example(strings[a:b], flat_ids[a:b], flat_values[a:b], v, s, p, context - first[i])
        for i, (a, b, v, s, p) in enumerate(
            zip(starts[:-1], starts[1:], value.tolist(), seq.tolist(), pos.tolist(), strict=True)
        )
    ]


def rebin(fine: np.ndarray, unit_numerator: float, resolution: int, n_used: int, n_bins: int) -> Histogram:
    """Sum `fine` bins (`unit_numerator / resolution` wide each) in runs: `n_bins` bins covering `n_used`."""
    run = max(1, math.ceil(n_used / n_bins))
    padded = np.zeros(n_bins * run, dtype=np.int64)
    keep = min(len(fine), len(padded))
    padded[:keep] = fine[:keep]
    edges = np.arange(n_bins + 1, dtype=np.float64) * run * unit_numerator / resolution
    return Histogram(counts=padded.reshape(n_bins, run).sum(axis=1), edges=edges)


def empty_histogram(n_bins: int) -> Histogram:
    """Zero counts over `[0, 1)`, for a feature that never fired."""
    return Histogram(counts=np.zeros(n_bins, dtype=np.int64), edges=np.linspace(0.0, 1.0, n_bins + 1))


def group_bounds(n_used: int, n_groups: int) -> list[int]:
    """`n_groups + 1` bucket boundaries splitting `n_used` buckets into runs of nearly equal length."""
    return [(g * n_used + n_groups // 2) // n_groups for g in range(n_groups + 1)]


@dataclass(frozen=True)
class _FeatureSlice:
    """One feature's part of a state, on the CPU."""

    exponent: int
    hist: np.ndarray
    top: Entries
    quant: Entries


class StateRows:
    """`FeatureRows` over a `DashboardState` (from a pass, a merge or the cache; its tables need not be in
    canonical order). The state stays on its device (a GPU pass is not copied back whole); each dashboard
    brings only its feature's slice to the CPU, in canonical order."""

    source = "corpus pass"

    def __init__(self, state: DashboardState) -> None:
        self.state = state
        self.features = self.state.features.cpu()
        self.n_tokens = self.state.n_tokens
        self._stats: dict[str, np.ndarray] | None = None
        self._last: tuple[int, _FeatureSlice] | None = None

    @property
    def nbytes(self) -> int:
        """Bytes of the pass state held (what `Engine.passes` counts against its budget)."""
        return self.state.nbytes

    def stats(self) -> dict[str, np.ndarray]:
        """density, max_activation, mean_activation, n_active: one value per feature column."""
        if self._stats is None:
            state = self.state
            n_active = state.hist.sum(dim=1).double()
            top = state.top.column("value").amax(dim=1).double()
            mean = torch.where(n_active > 0, state.total / n_active.clamp(min=1), 0.0)
            self._stats = {
                "density": (n_active / max(state.n_tokens, 1)).cpu().numpy(),
                "max_activation": top.cpu().numpy(),
                "mean_activation": mean.cpu().numpy(),
                "n_active": n_active.long().cpu().numpy(),
            }
        return self._stats

    def _slice(self, col: int) -> _FeatureSlice:
        if self._last is None or self._last[0] != col:
            state, settings = self.state, self.state.settings
            resolution = settings.group_resolution
            top, quant = state.top.ordered(col, 1), state.quant.ordered(col * resolution, resolution)
            cpu = _FeatureSlice(int(state.exponent[col]), state.hist[col].cpu().numpy(),
                                top.map(lambda t: t.cpu()), quant.map(lambda t: t.cpu()))  # fmt: skip
            self._last = (col, cpu)
        return self._last[1]

    def examples(self, col: int, text: TokenText) -> list[Example]:
        """The top examples of column `col`, strongest first."""
        return self._examples(self._slice(col).top, text)

    def _examples(self, records: Entries, text: TokenText) -> list[Example]:
        records = records.take(torch.nonzero(records.seq >= 0).flatten())
        context = (
            records.ids.shape[1] - 1
        ) // 2  # windows are centred; top ones are wider than quantile ones
        return make_examples(
            records.ids, records.acts, records.value, records.seq, records.pos, context, text
        )

    def warm(self, text: TokenText) -> None:
        """Decode every token id that the example tables hold in one `text` call (before building all)."""
        ids = [t.entries.ids[t.entries.seq >= 0] for t in (self.state.top, self.state.quant)]
        unique = torch.cat([i.flatten() for i in ids]).unique()
        text(unique[unique >= 0].cpu())

    def _n_used(self, feature: _FeatureSlice, resolution: int) -> int:
        peak = feature.top.value.amax(dim=0, keepdim=True)
        return int(bucket_index(peak, torch.tensor([feature.exponent]), resolution)) + 1

    def histogram(self, col: int, n_bins: int) -> Histogram:
        """Exact counts over `n_bins` equal bins from 0 to just above the maximum."""
        feature = self._slice(col)
        if feature.exponent == EMPTY_EXPONENT:
            return empty_histogram(n_bins)
        resolution = self.state.settings.hist_resolution
        return rebin(
            feature.hist, 2.0**feature.exponent, resolution, self._n_used(feature, resolution), n_bins
        )

    def quantiles(self, col: int, text: TokenText) -> list[QuantileGroup]:
        """`n_groups` equal-width activation ranges up to the maximum, each with a uniform sample."""
        settings, feature = self.state.settings, self._slice(col)
        if not settings.n_groups or feature.exponent == EMPTY_EXPONENT:
            return []
        resolution, per_group = settings.group_resolution, settings.per_group
        fine_per_bucket = settings.hist_resolution // resolution
        scale = 2.0**feature.exponent
        bounds = group_bounds(self._n_used(feature, resolution), settings.n_groups)
        counts = np.concatenate([[0], np.cumsum(feature.hist)])
        picks = _group_samples(feature.quant, bounds, per_group)
        examples = self._examples(feature.quant.take(torch.from_numpy(np.concatenate(picks))), text)
        sizes = [0, *itertools.accumulate(len(p) for p in picks)]
        groups = []
        for g, (lo, hi) in enumerate(itertools.pairwise(bounds)):
            count = int(counts[hi * fine_per_bucket] - counts[lo * fine_per_bucket])
            groups.append(QuantileGroup(lower=lo * scale / resolution, upper=hi * scale / resolution, count=count,
                                        fraction=count / max(int(counts[-1]), 1),
                                        examples=examples[sizes[g] : sizes[g + 1]]))  # fmt: skip
        return groups


def _group_samples(quant: Entries, bounds: list[int], per_group: int) -> list[np.ndarray]:
    """Per group (a run of sample buckets), the record indices of its `per_group` smallest keys among the
    used slots, strongest first (ties in slot order)."""
    key, value, used = quant.key.numpy(), quant.value.numpy(), quant.seq.numpy() >= 0
    picks = []
    for lo, hi in itertools.pairwise(bounds):
        index = np.arange(lo * per_group, hi * per_group)
        index = index[used[index]]
        index = index[np.argsort(key[index], kind="stable")[:per_group]]
        picks.append(index[np.argsort(-value[index], kind="stable")])
    return picks
