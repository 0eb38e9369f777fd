"""Per-feature statistics of an SAE (`FeatureStats`): density, maximum and mean activation of every feature.

`feature_stats(sae, scope)` finds them without a corpus pass when it can, in this order:

1. statistics the user registered with `register_feature_stats(sae, stats)`;
2. statistics already loaded for this SAE (a memo, forgotten when the SAE's weights change in place);
3. `feature_stats.safetensors` in the SAE's local folder (`FeatureStats.save` writes it: float32 `density`,
   `max`, `mean` `[d_sae]`; metadata `n_tokens`, `corpus`);
4. a Gemma Scope 2 `examples.safetensors` there with `feature_frequencies`;
5. a dashboard pass over every feature already held by the scope (`scope.dashboards(None, ...)`);
6. else a short pass over the default corpus (`corpus.default()`, 256 windows of 128 tokens, or
   `SCOPEWIDGETS_STATS_WINDOWS`), with a progress bar, stored on disk under `cache_dir() / "feature_stats"`
   keyed by the model and SAE weights.

Once an SAE's weights were edited in place, sources 3 and 4 describe other weights: they are skipped for it.
"""

from __future__ import annotations

import os
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..core.sae import SAE

if TYPE_CHECKING:
    from ..scope import Scope

STATS_FILE = "feature_stats.safetensors"
WINDOWS_VARIABLE = "SCOPEWIDGETS_STATS_WINDOWS"
_KEYS = ("density", "max", "mean")


@dataclass(frozen=True, eq=False)
class FeatureStats:
    """Statistics of every feature of one SAE over a corpus (BOS tokens excluded).

    Fields: `density` `[d_sae]` (fraction of non-BOS tokens where the feature is > 0), `max` `[d_sae]` (its
    largest activation), `mean` `[d_sae]` (its mean activation over the tokens where it fires, i.e. its
    typical activation when active; 0 for a feature that never fired), all float32 on the CPU; `n_tokens`
    (tokens counted), `source` (where they came from), `corpus` (a description of the text).

    Example:
        >>> import torch
        >>> stats = FeatureStats(torch.tensor([0.5, 0.0]), torch.tensor([3.0, 0.0]), torch.tensor([1.0, 0.0]),
        ...                      n_tokens=100, source="example")
        >>> stats.d_sae, stats.live.tolist()
        (2, [True, False])
    """

    density: torch.Tensor
    max: torch.Tensor
    mean: torch.Tensor
    n_tokens: int
    source: str
    corpus: str = ""

    def __post_init__(self) -> None:
        shapes = {name: tuple(getattr(self, name).shape) for name in _KEYS}
        if len(set(shapes.values())) != 1 or len(shapes["density"]) != 1:
            raise ValueError(f"FeatureStats needs three [d_sae] tensors of one shape, got {shapes}")
        for name in _KEYS:
            value = torch.as_tensor(getattr(self, name)).detach().float().cpu()
            object.__setattr__(self, name, value)
        if bool(((self.density < 0) | (self.density > 1)).any()):
            raise ValueError("FeatureStats.density must hold fractions in [0, 1]")
        if not isinstance(self.n_tokens, int) or self.n_tokens < 0:
            raise ValueError(f"FeatureStats.n_tokens must be an int >= 0, got {self.n_tokens!r}")

    @property
    def d_sae(self) -> int:
        return int(self.density.numel())

    @property
    def live(self) -> torch.Tensor:
        """`[d_sae]` bool: features that fired at least once (density > 0)."""
        return self.density > 0

    def save(self, path: str | Path) -> Path:
        """Write the shipped-statistics format (`feature_stats.safetensors`) to `path`.

        Example:
            >>> stats.save(sae_folder / "feature_stats.safetensors")        # doctest: +SKIP
        """
        from safetensors.torch import save_file

        tensors = {name: getattr(self, name).contiguous() for name in _KEYS}
        metadata = {"n_tokens": str(self.n_tokens), "corpus": self.corpus, "mean": "over active tokens"}
        save_file(tensors, str(path), metadata=metadata)
        return Path(path)

    @classmethod
    def load(cls, path: str | Path, d_sae: int | None = None) -> FeatureStats:
        """Read a `feature_stats.safetensors` file; a `ValueError` names what is missing or misshapen."""
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            keys, metadata = set(handle.keys()), handle.metadata() or {}
            missing = [k for k in _KEYS if k not in keys]
            if missing:
                raise ValueError(
                    f"{path}: missing {missing}; a statistics file holds float32 density, max, mean [d_sae]"
                )
            tensors = {k: handle.get_tensor(k) for k in _KEYS}
        if d_sae is not None and any(t.shape != (d_sae,) for t in tensors.values()):
            shapes = {k: tuple(t.shape) for k, t in tensors.items()}
            raise ValueError(f"{path}: statistics have shapes {shapes}; this SAE needs [{d_sae}]")
        try:
            n_tokens = int(metadata.get("n_tokens", "0"))
        except ValueError:
            raise ValueError(f"{path}: metadata n_tokens={metadata['n_tokens']!r} is not an int") from None
        return cls(**tensors, n_tokens=n_tokens, source=str(path), corpus=metadata.get("corpus", ""))


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
    scope: Scope | None = None,
    *,
    compute: bool = True,
    progress: bool = True,
    n_windows: int | None = None,
) -> FeatureStats:
    """The statistics of `sae`'s features, from the first source that has them (see the module docstring).

    Without a `scope` (or with `compute=False`) no pass can run: a `ValueError` says how to get them. The
    pass reads `n_windows` windows of 128 tokens (default: `SCOPEWIDGETS_STATS_WINDOWS`, else 256).

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
    from . import _sources

    stats = _sources.without_pass(sae, scope, shipped=sae not in _EDITED)
    if stats is None:
        if scope is None or not compute:
            raise ValueError(
                f"No feature statistics for {sae!r}: rank='specific' needs them. Rank from a Scope "
                "(scope.activations(...)) so they can be computed once, register some with "
                "scopewidgets.features.register_feature_stats, or pass rank='activation'"
            )
        stats = _sources.from_pass(scope, sae, n_windows=n_windows or default_windows(), progress=progress)
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

    def __init__(self, sae: SAE, scope: Scope | None) -> None:
        self.sae, self.scope = sae, scope

    def __call__(self) -> FeatureStats:
        return feature_stats(self.sae, self.scope)

    def __getstate__(self) -> dict[str, Any]:
        return {"sae": self.sae, "scope": None}


def stats_provider(sae: SAE, scope: Scope | None) -> StatsSource:
    """`StatsSource(sae, scope)`."""
    return StatsSource(sae, scope)
