"""Feature-sharded passes: each process takes a slice of the features over the whole corpus.

A pass's state is per feature except for two counters (`n_tokens`, `n_sequences`), so passes over the
same sequences and disjoint features join by concatenation: `join_states` puts the rows of every table
side by side, in ascending feature order, and the result equals one pass over all the features bit for
bit. This is the split for very wide SAEs (a 262k-wide pass state is ~7.8 GB; each of `world` processes
holds `1 / world` of it); sequence sharding (`shard=`, `DashboardState.merge`) is the split for long
corpora. The two combine: join feature shards that saw the same sequences, then merge.
"""

from __future__ import annotations

import torch

from .state import DashboardState

_SHARED = ("n_tokens", "n_sequences")


def feature_slice(features: torch.Tensor, shard: tuple[int, int]) -> torch.Tensor:
    """Rank `rank`'s contiguous slice of the sorted `features` (`world` slices of nearly equal size).

    Example:
        >>> feature_slice(torch.arange(10), (1, 3)).tolist()
        [4, 5, 6]
    """
    rank, world = shard
    if not (isinstance(rank, int) and isinstance(world, int) and 0 <= rank < world):
        raise ValueError(f"feature_shard must be (rank, world) with 0 <= rank < world, got {shard!r}")
    if features.numel() < world:
        raise ValueError(f"feature_shard={shard!r}: {features.numel()} features cannot fill {world} slices")
    return torch.tensor_split(features, world)[rank]


def join_states(states: list[DashboardState]) -> DashboardState:
    """One state over all the features of `states` (passes over the same sequences, disjoint features).

    Example:
        >>> whole = join_states([part_0, part_1])                          # doctest: +SKIP
    """
    if not states:
        raise ValueError("join_states needs at least one state")
    first = states[0]
    device = first.device
    for other in states[1:]:
        if other.settings != first.settings:
            raise ValueError(
                f"Cannot join passes with different settings: {first.settings} vs {other.settings}"
            )
        if (other.n_tokens, other.n_sequences) != (first.n_tokens, first.n_sequences):
            raise ValueError(
                "Cannot join passes over different sequences: "
                f"{first.n_sequences} sequences / {first.n_tokens} tokens vs "
                f"{other.n_sequences} / {other.n_tokens} (feature shards must each read the whole corpus)"
            )
    parts = [state.to(device).tensors() for state in states]
    features = torch.cat([p["features"] for p in parts])
    if torch.unique(features).numel() != features.numel():
        raise ValueError("Cannot join passes whose features overlap; feature shards must be disjoint")
    order = torch.argsort(features)
    joined = {name: parts[0][name] for name in _SHARED}
    for name in parts[0]:
        if name not in _SHARED:
            joined[name] = _rows(torch.cat([_widened(p[name], parts, name) for p in parts]), order)
    return DashboardState(joined["features"], first.settings, joined)


def _widened(tensor: torch.Tensor, parts: list[dict[str, torch.Tensor]], name: str) -> torch.Tensor:
    """Histograms may be int32 or int64 (widened past 2**31 tokens): join them as int64 when they differ."""
    dtypes = {p[name].dtype for p in parts}
    return tensor.long() if len(dtypes) > 1 else tensor


def _rows(tensor: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """`tensor`'s per-feature blocks (`rows // n_features` rows each, feature-major) in `order`."""
    per_feature = tensor.shape[0] // order.numel()
    index = (order[:, None] * per_feature + torch.arange(per_feature, device=order.device)).flatten()
    return tensor.index_select(0, index.to(tensor.device))
