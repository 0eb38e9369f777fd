"""Where `FeatureStats` come from: shipped files, Gemma Scope evidence, a dashboard pass in memory, or a
short pass over the default corpus (cached on disk); and the statistics at text starts (`starts`) that a
source lacks, computed once and cached on disk."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ..core.paths import cache_dir
from ..core.sae import SAE
from .stats import STATS_FILE, FeatureStats

if TYPE_CHECKING:
    from ..core.engine import Engine

FORMAT = "scopewidgets-feature-stats/2"  # 2: with the statistics at text starts
SEQ_LEN = 128


def without_pass(sae: SAE, scope: Engine | None, *, shipped: bool = True) -> FeatureStats | None:
    """Statistics found without running the model, or None."""
    if shipped:
        folder = Path(sae.cfg.source) if sae.cfg.source else None
        if folder is not None and (folder / STATS_FILE).is_file() and made_with(folder / STATS_FILE, sae):
            return FeatureStats.load(folder / STATS_FILE, sae.cfg.d_sae)
        evidence = from_evidence(sae)
        if evidence is not None:
            return evidence
    return from_dashboards(sae, scope) if scope is not None else None


def made_with(path: Path, sae: SAE) -> bool:
    """Whether a shipped file describes `sae`'s current weights: true when its metadata names no SAE
    fingerprint (`sae`), else when that fingerprint is the SAE's (`core.fingerprint`, by content)."""
    from safetensors import safe_open

    from ..core.fingerprint import sae_fingerprint

    with safe_open(str(path), framework="pt") as handle:
        made = (handle.metadata() or {}).get("sae")
    return made is None or made == sae_fingerprint(sae)


def from_evidence(sae: SAE) -> FeatureStats | None:
    """From an `examples.safetensors`: this package's (`dashboards.shipped`: exact, when made with these
    weights), or Gemma Scope's holding `feature_frequencies` (density; `max` and `mean` come from the listed
    (strongest) activations, so `mean` is an upper estimate of the typical activation)."""
    from ..dashboards.evidence import evidence_path
    from ..dashboards.shipped import FORMAT as SHIPPED

    path = evidence_path(sae)
    if path is None or not made_with(path, sae):
        return None
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        meta = handle.metadata() or {}
        if meta.get("format") == SHIPPED:
            n_tokens = int(meta["n_tokens"])
            return FeatureStats(
                handle.get_tensor("scopewidgets.n_active").double() / max(n_tokens, 1),
                handle.get_tensor("scopewidgets.max"),
                handle.get_tensor("scopewidgets.mean"),
                n_tokens=n_tokens,
                source=str(path),
                corpus=meta.get("corpus", ""),
            )
        if "feature_frequencies" not in set(handle.keys()):
            return None
        density = handle.get_tensor("feature_frequencies").double().flatten()
        tokens = handle.get_slice("tokens").get_shape()
        activations = handle.get_slice("activations")
        n_rows = activations.get_shape()[0]
        if n_rows != sae.cfg.d_sae or density.numel() != sae.cfg.d_sae:
            raise ValueError(
                f"{path}: evidence covers {n_rows} features but this SAE has d_sae={sae.cfg.d_sae}"
            )
        peak, mean = torch.zeros(n_rows), torch.zeros(n_rows)
        for start in range(0, n_rows, 4096):
            chunk = activations[start : start + 4096].float().clamp_min(0)
            count = (chunk > 0).sum(dim=1)
            peak[start : start + 4096] = chunk.max(dim=1).values
            mean[start : start + 4096] = chunk.sum(dim=1) / count.clamp_min(1)
    if bool(((density < 0) | (density > 1)).any()):
        raise ValueError(f"{path}: feature_frequencies must be fractions in [0, 1]")
    return FeatureStats(
        density.float(),
        peak,
        mean,
        n_tokens=int(tokens[0] * tokens[1]),
        source=f"{path} (feature_frequencies; mean of the listed activations)",
        corpus="Gemma Scope evidence corpus",
    )


def from_dashboards(sae: SAE, scope: Engine) -> FeatureStats | None:
    """From a corpus pass over every feature of `sae` that the scope remembers (`scope.dashboards(None)`)
    and that is still valid for the current weights."""
    from ..dashboards.api import remembered

    for dashes in remembered(scope, sae):
        if (
            dashes.sae is not sae
            or len(dashes) != sae.cfg.d_sae
            or getattr(dashes.rows, "state", None) is None
        ):
            continue
        stats = dashes.rows.stats()
        return FeatureStats(
            torch.as_tensor(stats["density"]),
            torch.as_tensor(stats["max_activation"]),
            torch.as_tensor(stats["mean_activation"]),
            n_tokens=int(dashes.rows.n_tokens),
            source="a dashboard pass over every feature",
            corpus=dashes.corpus_key or "",
        )
    return None


# ------------------------------------------------------------------------------------- the short pass
def cache_folder() -> Path:
    return cache_dir() / "feature_stats"


def _cache_key(scope: Engine, sae: SAE, n_windows: int) -> str:
    from ..core.fingerprint import pass_fingerprint
    from ..dashboards.cache import tokenizer_fingerprint

    parts = {
        "format": FORMAT,
        "weights": pass_fingerprint(scope.model, sae),  # the model up to the SAE's layer, and the SAE
        "tokenizer": tokenizer_fingerprint(scope.tokenizer),
        "corpus": "default",
        "n_windows": n_windows,
        "seq_len": SEQ_LEN,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def starts_path(scope: Engine, sae: SAE) -> Path:
    """Where the statistics at text starts (`starts.start_stats` over the default corpus) are stored for
    this model and these SAE weights."""
    return cache_folder() / f"{_cache_key(scope, sae, 0)}.starts.safetensors"


def with_starts(
    scope: Engine, sae: SAE, stats: FeatureStats, *, compute: bool = True, progress: bool = True
) -> FeatureStats:
    """`stats` with the statistics at text starts added (from the disk cache, else computed when `compute`:
    one two-token pass per frequent opening token, seconds), or `stats` as they are."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    from .starts import start_stats

    if stats.has_starts:
        return stats
    path = starts_path(scope, sae)
    if path.is_file():
        try:
            with safe_open(str(path), framework="pt") as handle:
                n_starts = int((handle.metadata() or {})["n_starts"])
                density, mean = handle.get_tensor("start_density"), handle.get_tensor("start_mean")
            return stats.with_starts(density, mean, n_starts)
        except Exception as err:
            warnings.warn(
                f"Start statistics cache entry {path} is damaged ({err}); rebuilding it", stacklevel=3
            )
            path.unlink(missing_ok=True)
    if not compute:
        return stats
    density, mean, n_starts = start_stats(scope, sae, progress=progress)
    tensors = {"start_density": density, "start_mean": mean}
    _write_atomically(path, lambda name: save_file(tensors, name, metadata={"n_starts": str(n_starts)}))
    return stats.with_starts(density, mean, n_starts)


def _write_atomically(path: Path, write: Callable[[str], object]) -> None:
    """`write(temporary_name)` beside `path`, then renamed onto it (readers never see half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(handle)
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def cache_path(scope: Engine, sae: SAE, n_windows: int) -> Path:
    """Where the statistics pass over `n_windows` windows is stored for this model and these SAE weights."""
    return cache_folder() / f"{_cache_key(scope, sae, n_windows)}.safetensors"


def from_disk_cache(path: Path, sae: SAE) -> FeatureStats | None:
    """The statistics `from_pass` stored at `path` (see `cache_path`), or None (a damaged entry is deleted
    with a warning, never trusted)."""
    if not path.is_file():
        return None
    try:
        return FeatureStats.load(path, sae.cfg.d_sae)
    except Exception as err:
        warnings.warn(
            f"Feature statistics cache entry {path} is damaged ({err}); rebuilding it", stacklevel=3
        )
        path.unlink(missing_ok=True)
        return None


def from_pass(
    scope: Engine, sae: SAE, path: Path, *, n_windows: int = 256, progress: bool = True
) -> FeatureStats:
    """A pass over the first `n_windows` windows of the default corpus, stored atomically at `path`."""
    stats = run_stats_pass(scope, sae, n_windows=n_windows, progress=progress)
    _write_atomically(path, stats.save)
    return stats


@torch.inference_mode()
def run_stats_pass(
    scope: Engine, sae: SAE, *, n_windows: int = 256, batch_size: int = 8, progress: bool = True, texts=None
) -> FeatureStats:
    """Density, max and mean (over active tokens) of every feature over `texts` (default: the default
    corpus), cut into at most `n_windows` windows of 128 tokens, BOS excluded; and the same at the texts'
    sentence and line starts (`starts.start_stats`)."""
    from tqdm.auto import tqdm

    from ..core import corpus as corpus_module
    from .starts import start_stats

    windows = corpus_module.token_windows(
        scope.tokenizer, corpus_module.default() if texts is None else texts, SEQ_LEN, max_windows=n_windows
    )
    bos = corpus_module.bos_id(scope.tokenizer)
    d_sae = sae.cfg.d_sae
    count = torch.zeros(d_sae, dtype=torch.float64, device=sae.device)
    total = torch.zeros(d_sae, dtype=torch.float64, device=sae.device)
    peak = torch.zeros(d_sae, device=sae.device)
    n_tokens = 0
    bar = tqdm(total=len(windows), desc="Feature statistics", unit="window", disable=not progress)
    for start in range(0, len(windows), batch_size):
        ids = windows[start : start + batch_size]
        values = scope.encode(ids, [sae])[0]  # [b, pos, d_sae], BOS rows zero
        flat = values.reshape(-1, d_sae)[(ids != bos).reshape(-1).to(values.device)]
        count += (flat > 0).sum(dim=0)
        total += flat.sum(dim=0, dtype=torch.float64)
        peak = torch.maximum(peak, flat.amax(dim=0)) if len(flat) else peak
        n_tokens += len(flat)
        bar.update(len(ids))
    bar.close()
    where = "the default corpus" if texts is None else "the given texts"
    start_density, start_mean, n_starts = start_stats(scope, sae, texts, progress=progress)
    return FeatureStats(
        (count / max(n_tokens, 1)).float(),
        peak,
        (total / count.clamp_min(1)).float(),
        n_tokens=n_tokens,
        source=f"a pass over {len(windows)} windows of {where}",
        corpus=f"{'default' if texts is None else 'given'}: {len(windows)} windows x {SEQ_LEN} tokens",
        start_density=start_density,
        start_mean=start_mean,
        n_starts=n_starts,
    )
