"""The `density` and `label` columns every feature table carries, and the statistics a view can show."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ..core.sae import SAE
from .lookup import feature_stats
from .stats import FeatureStats

if TYPE_CHECKING:
    from ..core.engine import Engine


def density_column(stats: FeatureStats | None, features: torch.Tensor | list[int]) -> list[float]:
    """Each feature's density (NaN when no statistics are known)."""
    ids = torch.as_tensor(features, dtype=torch.long)
    if stats is None:
        return [float("nan")] * len(ids)
    return stats.density[ids].tolist()


def label_column(sae: SAE, features: torch.Tensor | list[int]) -> list[str]:
    """Each feature's label, "" when it has none (never None or NaN)."""
    return [sae.label(int(f)) or "" for f in features]


def known_stats(sae: SAE, scope: Engine | None = None) -> FeatureStats | None:
    """`sae`'s statistics when they can be had without a corpus pass (registered, shipped, loaded or computed
    earlier, a full dashboard pass of `scope`), else None: a view shows densities, it never starts a pass."""
    try:
        return feature_stats(sae, scope, compute=False)
    except ValueError:
        return None
