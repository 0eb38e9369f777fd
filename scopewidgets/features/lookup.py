"""Per-feature statistics of an SAE (`FeatureStats`): density, maximum and mean activation of every feature.

`feature_stats(sae, scope)` finds them without a corpus pass when it can, in this order:

1. statistics the user registered with `register_feature_stats(sae, stats)`;
2. statistics already loaded for this SAE (a memo, forgotten when the SAE's weights change in place);
3. `feature_stats.safetensors` in the SAE's local folder (`FeatureStats.save` writes it: float32 `density`,
   `max`, `mean` `[d_sae]`; metadata `n_tokens`, `corpus`, and optionally `sae`, the fingerprint of the
   weights it was made with: then used only while the SAE still has them);
4. an `examples.safetensors` there: this package's (`dashboards.shipped`, exact, fingerprinted the same
   way), or Gemma Scope 2's with `feature_frequencies`;
5. a dashboard pass over every feature already held by the scope (`scope.dashboards(None, ...)`);
6. else a short pass over the default corpus (`corpus.default()`, 256 windows of 128 tokens, or
   `SCOPEWIDGETS_STATS_WINDOWS`), with a progress bar, stored on disk under `cache_dir() / "feature_stats"`
   keyed by the model and SAE weights.

Once an SAE's weights were edited in place, sources 3 and 4 describe other weights: they are skipped for it.

Statistics at a text's first token (`FeatureStats.has_starts`, `features.starts`) come with the pass (6) and
with shipped files that hold them (the demo SAE's); otherwise, when a scope is given, they are computed once
(seconds: one two-token pass per frequent opening token of the default corpus) and stored under the same
cache folder.
"""

from __future__ import annotations

import os
import weakref
from typing import TYPE_CHECKING, Any

from ..core.sae import SAE
from . import _sources
from .stats import FeatureStats

if TYPE_CHECKING:
    from ..core.engine import Engine

WINDOWS_VARIABLE = "SCOPEWIDGETS_STATS_WINDOWS"

# ------------------------------------------------------------------------------------- registry and memo
_REGISTERED: weakref.WeakKeyDictionary[SAE, FeatureStats] = weakref.WeakKeyDictionary()
_MEMO: weakref.WeakKeyDictionary[SAE, tuple[tuple, FeatureStats]] = weakref.WeakKeyDictionary()
_EDITED: weakref.WeakSet[SAE] = weakref.WeakSet()  # weights changed since first seen: shipped files are stale


def weights_signature(sae: SAE) -> tuple:
    """Storage address and in-place version counter of every parameter (microseconds): it changes when a
    weight is edited in place (`W_dec.mul_(2)`, `load_state_dict`) or replaced (`param.data = ...`)."""
    return tuple((p.data_ptr(), p._version, tuple(p.shape)) for p in sae.parameters())


def register_feature_stats(sae: SAE, stats: FeatureStats) -> None:
    """Use `stats` for `sae` from now on (they win over every other source).

    Example:
        >>> register_feature_stats(sae, FeatureStats.load("my_stats.safetensors"))   # doctest: +SKIP
    """
    if not isinstance(stats, FeatureStats):
        raise TypeError(f"register_feature_stats takes FeatureStats, got {type(stats).__name__}")
    if stats.d_sae != sae.cfg.d_sae:
        raise ValueError(
            f"These statistics cover {stats.d_sae} features but the SAE has d_sae={sae.cfg.d_sae}"
        )
    _REGISTERED[sae] = stats


def feature_stats(
    sae: SAE,
    scope: Engine | None = None,
    *,
    compute: bool = True,
    progress: bool = True,
    n_windows: int | None = None,
) -> FeatureStats:
    """The statistics of `sae`'s features, from the first source that has them (see the module docstring).

    Without a `scope` (or with `compute=False`) no pass can run: a `ValueError` says how to get them
    (`compute=False` still reads the disk cache of an earlier pass, source 6). The pass reads `n_windows`
    windows of 128 tokens (default: `SCOPEWIDGETS_STATS_WINDOWS`, else 256).

    Example:
        >>> stats = feature_stats(scope.sae(), scope)                     # doctest: +SKIP
        >>> stats.density[3246], stats.source                              # doctest: +SKIP
    """
    if sae in _REGISTERED:
        return _REGISTERED[sae]
    signature = weights_signature(sae)
    hit = _MEMO.get(sae)
    if hit is not None:
        if hit[0] == signature:
            return hit[1]
        _EDITED.add(sae)
    stats = _sources.without_pass(sae, scope, shipped=sae not in _EDITED)
    if stats is None and scope is not None:  # a pass stored on disk earlier: read even when compute=False
        windows = n_windows or default_windows()
        path = _sources.cache_path(scope, sae, windows)
        stats = _sources.from_disk_cache(path, sae)
        if stats is None and compute:
            stats = _sources.from_pass(scope, sae, path, n_windows=windows, progress=progress)
    if stats is not None and scope is not None:  # text starts: a short pass of their own, cached on disk
        stats = _sources.with_starts(scope, sae, stats, compute=compute, progress=progress)
    if stats is None:
        raise ValueError(
            f"No feature statistics for {sae!r}: rank='specific' needs them. Rank from a Scope "
            "(scope.activations(...)) so they can be computed once, register some with "
            "scopewidgets.features.register_feature_stats, or pass rank='activation'"
        )
    _MEMO[sae] = (signature, stats)
    return stats


def default_windows() -> int:
    """Windows the fallback pass reads: `SCOPEWIDGETS_STATS_WINDOWS` (an int >= 1), else 256."""
    raw = os.environ.get(WINDOWS_VARIABLE, "256")
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{WINDOWS_VARIABLE}={raw!r}: expected a number of windows >= 1")
    return int(raw)


def forget_feature_stats(sae: SAE) -> None:
    """Drop registered and loaded statistics of `sae` (the next ranking finds them again)."""
    _REGISTERED.pop(sae, None)
    _MEMO.pop(sae, None)


class StatsSource:
    """A no-argument callable returning `feature_stats(sae, scope)`: what results keep, to rank later.
    A pickled or deep-copied one forgets the scope (it then finds statistics from the SAE alone)."""

    def __init__(self, sae: SAE, scope: Engine | None) -> None:
        self.sae, self.scope = sae, scope

    def __call__(self) -> FeatureStats:
        return feature_stats(self.sae, self.scope)

    def __getstate__(self) -> dict[str, Any]:
        return {"sae": self.sae, "scope": None}


def stats_provider(sae: SAE, scope: Engine | None) -> StatsSource:
    """`StatsSource(sae, scope)`."""
    return StatsSource(sae, scope)
