"""Every feature's downstream effects at once: top / bottom logit tokens and similar features.

`effect_table(model, sae, features)` runs the formulas of `core.effects` (their one home) for all
`features` in chunked GEMMs with running top-k. `cached_effect_table` keeps the result in the dashboard
disk cache (same folder, atomic writes, checksums, damaged entries rebuilt, and the same size bound as
passes: `_dashboard_cache.evict`), keyed by the model, the SAE, the
features and `k`; the corpus does not enter. A `DashboardSet` reads one feature's row from the table when it
has one, and otherwise computes that feature alone (milliseconds).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import warnings
from dataclasses import dataclass, fields
from pathlib import Path

import torch
from torch import nn

from ..core.effects import feature_logits, feature_similar
from ..core.fingerprint import model_fingerprint, sae_fingerprint
from ..core.sae import SAE
from . import cache as cache_module

FORMAT = "scopewidgets-effect-table/1"


@dataclass(frozen=True)
class EffectTable:
    """Row `i` belongs to `features[i]` (int64, ascending). `top_values`, `top_ids` `[n, k]` strongest
    first; `bottom_values`, `bottom_ids` most negative first; `similar_ids`, `similar_cosines` `[n, k]`."""

    features: torch.Tensor
    top_values: torch.Tensor
    top_ids: torch.Tensor
    bottom_values: torch.Tensor
    bottom_ids: torch.Tensor
    similar_ids: torch.Tensor
    similar_cosines: torch.Tensor

    def tensors(self) -> dict[str, torch.Tensor]:
        """The fields by name."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor]) -> EffectTable:
        """Rebuild from `tensors()`, checking names and that every table has one row per feature."""
        names = {f.name for f in fields(cls)}
        if set(tensors) != names:
            raise ValueError(f"effect table tensors {sorted(tensors)}, expected {sorted(names)}")
        n = tensors["features"].numel()
        bad = [k for k, v in tensors.items() if k != "features" and (v.ndim != 2 or v.shape[0] != n)]
        if bad:
            raise ValueError(f"effect table tensors {bad} do not have {n} rows")
        return cls(**tensors)

    def lists(self) -> dict[str, list]:
        """The tables as nested Python lists (made once: building dashboards reads them row by row)."""
        if "_lists" not in self.__dict__:
            object.__setattr__(self, "_lists", {k: v.tolist() for k, v in self.tensors().items()})
        return self.__dict__["_lists"]

    def row(self, feature: int) -> int | None:
        """The row of `feature`, or None when the table does not cover it."""
        i = int(torch.searchsorted(self.features, feature))
        return i if i < self.features.numel() and int(self.features[i]) == feature else None


def effect_table(
    model: nn.Module, sae: SAE, features: torch.Tensor, k: int = 10, progress: bool = False
) -> EffectTable:
    """Logit effects and similar features of all `features` (sorted int64 ids), on the CPU.

    Example:
        >>> from scopewidgets.testing import tiny_gemma3, random_sae
        >>> model, _ = tiny_gemma3()
        >>> table = effect_table(model, random_sae(model, d_sae=32), torch.arange(32), k=3)
        >>> table.top_ids.shape, table.similar_ids.shape
        (torch.Size([32, 3]), torch.Size([32, 3]))
    """
    features = features.long().cpu()
    top, top_ids, bottom, bottom_ids = feature_logits(model, sae, features, k, progress=progress)
    similar_ids, cosines = feature_similar(sae, features, k)
    return EffectTable(features, top, top_ids, bottom, bottom_ids, similar_ids, cosines)


def table_key(model: nn.Module, sae: SAE, features: torch.Tensor, k: int) -> str:
    """The disk-cache key of an effect table: model (final norm and unembedding included) and SAE
    fingerprints, the features and `k`."""
    ids = hashlib.sha256(features.long().cpu().numpy().tobytes()).hexdigest()
    parts = {"table": FORMAT, "model": model_fingerprint(model, head=True), "sae": sae_fingerprint(sae)}
    return cache_module.entry_key({**parts, "features": ids, "k": k})


def cached_effect_table(
    model: nn.Module, sae: SAE, features: torch.Tensor, k: int = 10, progress: bool = False
) -> EffectTable:
    """`effect_table`, read from the dashboard disk cache when an entry matches, else computed and stored."""
    key = table_key(model, sae, features, k)
    path = cache_module.cache_folder() / f"{key}.safetensors"
    if path.exists():
        try:
            table = EffectTable.from_tensors(_read(path, key))
            with contextlib.suppress(OSError):
                os.utime(path)  # most recently used: evicted last
            return table
        except Exception as err:
            warnings.warn(f"The dashboard cache entry {path} is damaged ({err}); rebuilding it", stacklevel=2)
            path.unlink(missing_ok=True)
    table = effect_table(model, sae, features, k, progress)
    with contextlib.suppress(OSError):  # an unusable folder: the table is still returned, just not kept
        _write(path, key, table.tensors())
        cache_module.evict(keep=path)
    return table


def _write(path: Path, key: str, tensors: dict[str, torch.Tensor]) -> None:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.contiguous() for k, v in tensors.items()}
    metadata = {"format": FORMAT, "key": key, "checksum": cache_module._checksum(tensors)}
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{key[:16]}-", suffix=".tmp")
    os.close(handle)
    try:
        save_file(tensors, temporary, metadata=metadata)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def _read(path: Path, key: str) -> dict[str, torch.Tensor]:
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
    if metadata.get("format") != FORMAT or metadata.get("key") != key:
        raise ValueError(f"format/key mismatch: {metadata.get('format')!r}, {metadata.get('key')!r}")
    tensors = load_file(str(path))
    if cache_module._checksum(tensors) != metadata.get("checksum"):
        raise ValueError("checksum mismatch")
    return tensors
