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
from typing import Protocol

import numpy as np
import torch

from ._dashboard_select import EMPTY_EXPONENT, Entries, bucket_index
from ._dashboard_state import DashboardState
from .dashboard import Example, Histogram, QuantileGroup

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
    inside = ids >= 0
    first = int(inside.to(torch.uint8).argmax())
    token_ids = ids[inside].long()
    return Example(
        tokens=text(token_ids),
        token_ids=token_ids,
        values=acts[inside].float(),
        max_value=float(value),
        seq_index=int(seq),
        position=int(pos),
        focus=context - first,
    )


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


class StateRows:
    """`FeatureRows` over a finished `DashboardState` (moved to the CPU)."""

    source = "corpus pass"

    def __init__(self, state: DashboardState) -> None:
        self.state = state.to("cpu").finish()
        self.features = self.state.features
        self.n_tokens = self.state.n_tokens
        self._stats: dict[str, np.ndarray] | None = None

    def stats(self) -> dict[str, np.ndarray]:
        """density, max_activation, mean_activation, n_active: one value per feature column."""
        if self._stats is None:
            state = self.state
            n_active = state.hist.sum(dim=1).double()
            top = state.top.column("value").amax(dim=1).double()
            mean = torch.where(n_active > 0, state.total / n_active.clamp(min=1), 0.0)
            self._stats = {
                "density": (n_active / max(state.n_tokens, 1)).numpy(),
                "max_activation": top.numpy(),
                "mean_activation": mean.numpy(),
                "n_active": n_active.long().numpy(),
            }
        return self._stats

    def examples(self, col: int, text: TokenText) -> list[Example]:
        """The top examples of column `col`, strongest first."""
        k = self.state.settings.n_examples
        return self._examples(self.state.top.entries.take(torch.arange(col * k, (col + 1) * k)), text)

    def _examples(self, records: Entries, text: TokenText) -> list[Example]:
        context = self.state.settings.context
        return [
            make_example(
                records.ids[i],
                records.acts[i],
                records.value[i],
                records.seq[i],
                records.pos[i],
                context,
                text,
            )
            for i in range(len(records.seq))
            if records.seq[i] >= 0
        ]

    def _fired(self, col: int) -> bool:
        return int(self.state.exponent[col]) != EMPTY_EXPONENT

    def _n_used(self, col: int, resolution: int) -> int:
        exponent = self.state.exponent[col : col + 1]
        peak = self.state.top.column("value")[col].amax(dim=0, keepdim=True)
        return int(bucket_index(peak, exponent, resolution)) + 1

    def histogram(self, col: int, n_bins: int) -> Histogram:
        """Exact counts over `n_bins` equal bins from 0 to just above the maximum."""
        if not self._fired(col):
            return empty_histogram(n_bins)
        resolution = self.state.settings.hist_resolution
        unit = 2.0 ** int(self.state.exponent[col])
        return rebin(self.state.hist[col].numpy(), unit, resolution, self._n_used(col, resolution), n_bins)

    def quantiles(self, col: int, text: TokenText) -> list[QuantileGroup]:
        """`n_groups` equal-width activation ranges up to the maximum, each with a uniform sample."""
        settings = self.state.settings
        if not settings.n_groups or not self._fired(col):
            return []
        resolution, per_group = settings.group_resolution, settings.per_group
        fine_per_bucket = settings.hist_resolution // resolution
        scale = 2.0 ** int(self.state.exponent[col])
        bounds = group_bounds(self._n_used(col, resolution), settings.n_groups)
        n_active = int(self.state.hist[col].sum())
        groups = []
        for lo, hi in itertools.pairwise(bounds):
            flat = torch.arange((col * resolution + lo) * per_group, (col * resolution + hi) * per_group)
            records = self.state.quant.entries.take(flat)
            records = records.take(torch.argsort(records.key)[:per_group])
            records = records.take(torch.argsort(records.value, descending=True, stable=True))
            count = int(self.state.hist[col, lo * fine_per_bucket : hi * fine_per_bucket].sum())
            groups.append(
                QuantileGroup(
                    lower=lo * scale / resolution,
                    upper=hi * scale / resolution,
                    count=count,
                    fraction=count / max(n_active, 1),
                    examples=self._examples(records, text),
                )
            )
        return groups
