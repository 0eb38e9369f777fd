"""What `Scope.dashboards` and `Scope.dashboard` do: check arguments, reuse a pass (in memory, on disk, or
Gemma Scope evidence files), otherwise run one."""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Iterable
from dataclasses import asdict, replace
from typing import TYPE_CHECKING, Any

import torch

from ..core import validate as checked
from ..core.fingerprint import pass_fingerprint
from ..core.sae import SAE
from . import cache as cache_module
from .corpus_pass import corpus_rows, has_default_corpus, resolve_corpus, run_pass
from .result import DashboardSet, FeatureDashboard
from .rows import StateRows
from .shard import feature_slice
from .state import DashboardState, PassSettings

if TYPE_CHECKING:
    from ..core.engine import Engine

SEQ_LEN, N_BINS = 128, 50  # defaults of a pass (the others: `PassSettings`)


def feature_ids(sae: SAE, features: Any) -> torch.Tensor:
    """Sorted unique int64 feature ids; a `ValueError` names the first bad one and `[0, d_sae)`.

    Example:
        >>> from scopewidgets import SAE, SAEConfig
        >>> feature_ids(SAE(SAEConfig(d_in=4, d_sae=8)), [5, 1, 5]).tolist()
        [1, 5]
    """
    d_sae = sae.cfg.d_sae
    if features is None:
        return torch.arange(d_sae)
    if isinstance(features, range):
        ids = torch.arange(features.start, features.stop, features.step) if features else torch.zeros(0)
    elif isinstance(features, torch.Tensor):
        if features.is_floating_point() or features.dtype == torch.bool:
            raise ValueError(f"Features must be int ids in [0, {d_sae}), got a {features.dtype} tensor")
        ids = features.flatten().long().cpu()
    elif isinstance(features, Iterable) and not isinstance(features, str):
        ids = torch.tensor([sae.check_feature(f) for f in features], dtype=torch.long)
    else:
        ids = torch.tensor([sae.check_feature(features)], dtype=torch.long)
    if ids.numel() == 0:
        raise ValueError(f"No features given: pass feature ids in [0, {d_sae}) (or None for all)")
    bad = ids[(ids < 0) | (ids >= d_sae)]
    if bad.numel():
        sae.check_feature(int(bad[0]))
    return torch.unique(ids)


def _positive(name: str, value: Any, minimum: int = 1) -> int:
    try:
        number = operator.index(value)
    except TypeError:
        number = None
    if number is None or isinstance(value, bool) or number < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return number


def _shard(shard: Any, name: str = "shard") -> tuple[int, int] | None:
    """`(rank, world)` as ints with `0 <= rank < world`, or None."""
    if shard is None:
        return None
    allowed = f"{name} must be (rank, world): two ints with 0 <= rank < world"
    if not isinstance(shard, tuple | list) or len(shard) != 2:
        raise checked.ArgumentTypeError(f"{allowed}, got {shard!r}")
    world = checked.integer(shard[1], f"{name}'s world", minimum=1)
    return checked.integer(shard[0], f"{name}'s rank", minimum=0, maximum=world - 1), world


def build_dashboards(
    scope: Engine,
    features: Any,
    corpus: Any = None,
    sae: int | SAE | None = None,
    *,
    seq_len: int = SEQ_LEN,
    batch_size: int | None = None,
    n_examples: int = 20,
    context: int = 5,
    n_quantile_groups: int = 10,
    per_group: int = 5,
    n_bins: int = N_BINS,
    cache: bool = True,
    progress: bool = True,
    shard: tuple[int, int] | None = None,
    feature_shard: tuple[int, int] | None = None,
    tag: object = None,
) -> DashboardSet:
    """See `Scope.dashboards`. The pass is remembered in `scope.passes` (with `tag`: see `remembered`)."""
    chosen = scope.sae(sae)
    ids = feature_ids(chosen, features)
    if feature_shard is not None:
        ids = feature_slice(ids, _shard(feature_shard, "feature_shard"))
    _positive("n_bins", n_bins)
    settings = PassSettings(
        seq_len=_positive("seq_len", seq_len, 2),
        n_examples=_positive("n_examples", n_examples),
        context=_positive("context", context, 0),
        n_groups=_positive("n_quantile_groups", n_quantile_groups, 0),
        per_group=_positive("per_group", per_group),
    )
    batch_size = _positive("batch_size", batch_size) if batch_size is not None else _default_batch(scope)
    same = dict(seq_len=seq_len, batch_size=batch_size, n_examples=n_examples, context=context,
                n_quantile_groups=n_quantile_groups, per_group=per_group, n_bins=n_bins, cache=cache)  # fmt: skip
    if corpus is None and shard is None:
        evidence = _from_evidence(scope, chosen, ids, settings, n_bins, same, tag)
        if evidence is not None:
            return evidence
    shard = _shard(shard)
    run = functools.partial(_cached_pass, batch_size=batch_size, cache=cache, progress=progress, shard=shard)
    state, corpus_key = run(scope, chosen, ids, resolve_corpus(corpus), settings)
    dashes = DashboardSet(StateRows(state), scope, chosen, n_bins, corpus_key)
    dashes._shared["rerun"] = None if shard else rerun(scope, corpus, chosen, same)
    return scope.passes.remember(dashes, pass_fingerprint(scope.model, chosen), tag)


def _from_evidence(
    scope: Engine,
    sae: SAE,
    ids: torch.Tensor,
    settings: PassSettings,
    n_bins: int,
    same: dict[str, Any],
    tag: object = None,
) -> DashboardSet | None:
    """Dashboards from the SAE folder's evidence file (remembered), or None when none serves them."""
    from .evidence import evidence_dashboards

    found = evidence_dashboards(scope, sae, ids, settings, n_bins)
    if found is None:
        return None
    evidence, weights = found
    if weights is not None:  # this package's file: other features come from it too
        evidence._shared["rerun"] = rerun(scope, None, sae, same)
    return scope.passes.remember(evidence, weights, tag)


def rerun(
    scope: Engine, corpus: Any, sae: SAE, settings: dict[str, Any]
) -> Callable[..., DashboardSet] | None:
    """`run(features)`: the same pass (corpus, settings) for other features, e.g. a dashboard's similar
    features opened on click; None when the corpus cannot be read again (a one-shot iterator)."""
    if corpus is not None and iter(corpus) is corpus:
        return None
    return functools.partial(build_dashboards, scope, corpus=corpus, sae=sae, progress=False, **settings)


def _cached_pass(
    scope: Engine,
    sae: SAE,
    ids: torch.Tensor,
    corpus: Any,
    settings: PassSettings,
    *,
    batch_size: int,
    cache: bool,
    progress: bool,
    shard: tuple[int, int] | None,
) -> tuple[DashboardState, str | None]:
    """The pass's state from the disk cache when an entry matches, else from a pass (then stored)."""
    windows = corpus_rows(scope.model, scope.tokenizer, corpus, settings.seq_len)
    settings = replace(settings, seq_len=windows.stride)
    corpus_key = cache_module.corpus_fingerprint(corpus, scope.tokenizer) if cache else None
    key = _cache_key(scope, sae, ids, settings, corpus_key, shard) if corpus_key else None
    state = cache_module.load_state(key) if key else None
    if state is None:
        scope.passes.make_room(DashboardState.size(ids.numel(), settings))  # reuse what it pushes out
        state = run_pass(
            scope, sae, ids, windows, settings, batch_size=batch_size, progress=progress, shard=shard
        )
        if key:
            cache_module.save_state(key, state)
    return state, corpus_key


def _default_batch(scope: Engine) -> int:
    return 32 if scope.device.type == "cuda" else 8


def _cache_key(
    scope: Engine,
    sae: SAE,
    ids: torch.Tensor,
    settings: PassSettings,
    corpus_key: str,
    shard: tuple[int, int] | None,
) -> str:
    features = cache_module.hashlib.sha256(ids.numpy().tobytes()).hexdigest()
    return cache_module.entry_key(
        {
            "weights": pass_fingerprint(scope.model, sae),
            "corpus": corpus_key,
            "settings": asdict(settings),
            "features": features,
            "shard": shard,
        }
    )


def remembered(scope: Engine, sae: SAE, tag: object = None) -> list[DashboardSet]:
    """The passes over `sae` that the engine remembers (`Engine.passes`; with `tag`: those asked for
    with it) and that are still valid for the current weights (an in-place edit of the model up to the
    SAE's layer, or of the SAE, retires them), newest first."""
    return scope.passes.valid(sae, lambda: pass_fingerprint(scope.model, sae), tag)


def feature_dashboard(
    scope: Engine, feature: int, sae: int | SAE | None = None, corpus: Any = None
) -> FeatureDashboard:
    """See `Scope.dashboard`."""
    chosen = scope.sae(sae)
    index = chosen.check_feature(feature)
    wanted = cache_module.corpus_fingerprint(corpus, scope.tokenizer) if corpus is not None else None
    for dashes in remembered(scope, chosen):
        if index in dashes and (corpus is None or (wanted and dashes.corpus_key == wanted)):
            return dashes[index]
    if corpus is None:
        from .evidence import has_evidence, has_shipped_evidence

        if has_shipped_evidence(chosen):  # every feature at once costs nothing more: read lazily
            settings = PassSettings(seq_len=SEQ_LEN)
            dashes = _from_evidence(scope, chosen, feature_ids(chosen, None), settings, N_BINS, {})
            if dashes is not None:
                return dashes[index]
        if not has_default_corpus() and not has_evidence(chosen):
            raise ValueError(
                f"No dashboard pass covers feature {index}; pass corpus=... (texts or a token tensor), "
                "or run scope.dashboards([...], corpus=...) first"
            )
    return build_dashboards(scope, [index], corpus, chosen)[index]


__all__ = ["build_dashboards", "feature_dashboard", "feature_ids", "remembered"]
