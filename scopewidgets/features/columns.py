"""The `density` and `label` columns every feature table carries."""

from __future__ import annotations

import torch

from ..core.sae import SAE
from .stats import FeatureStats


def density_column(stats: FeatureStats | None, features: torch.Tensor | list[int]) -> list[float]:
    """Each feature's density (NaN when no statistics are known)."""
    ids = torch.as_tensor(features, dtype=torch.long)
    if stats is None:
        return [float("nan")] * len(ids)
    return stats.density[ids].tolist()


def label_column(sae: SAE, features: torch.Tensor | list[int]) -> list[str]:
    """Each feature's label, "" when it has none (never None or NaN)."""
    return [sae.label(int(f)) or "" for f in features]
