"""What the explorer computes outside its widgets: a bounded corpus and dashboard passes over it, built on
demand, one pass for many features at once, and reused."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import torch

from ..core import corpus as corpus_module
from ..core.effects import similar_features
from .api import build_dashboards, remembered

if TYPE_CHECKING:
    from ..core.engine import Engine
    from ..core.sae import SAE
    from .result import DashboardSet

#: Settings of `scope.dashboards` that an explorer passes on (the corpus and features are its own).
SETTINGS = frozenset(
    {"seq_len", "batch_size", "n_examples", "context", "n_quantile_groups", "per_group", "n_bins", "cache"}
)


class DashboardLibrary:
    """Dashboard passes over the first `max_windows` windows of a corpus (default: `corpus.default()`),
    for one SAE. `prepare(features)` runs one pass for a set of features (e.g. all those listed for a text)
    unless a kept pass covers them; `covering(feature)` finds a pass with that feature or runs one for it
    and its similar features. `report(message)` hears what it is doing.

    Example:
        >>> import scopewidgets as sw
        >>> from scopewidgets.testing import tiny_gemma3, random_sae
        >>> model, tok = tiny_gemma3()
        >>> scope = sw.Scope(model, tok, saes=[random_sae(model, d_sae=32, threshold=0.3)])
        >>> library = DashboardLibrary(scope, scope.sae(), ["the cat sat on the mat"] * 8, max_windows=4,
        ...                            settings={"seq_len": 16, "cache": False})
        >>> dashes = library.prepare([1, 2, 3])
        >>> library.covering(2) is dashes, library.windows.shape
        (True, torch.Size([4, 16]))
    """

    def __init__(
        self,
        scope: Engine,
        sae: SAE,
        corpus: Any = None,
        *,
        max_windows: int = 32,
        settings: dict[str, Any] | None = None,
        report: Callable[[str], None] | None = None,
    ) -> None:
        settings = dict(settings or {})
        unknown = sorted(set(settings) - SETTINGS)
        if unknown:
            raise TypeError(
                f"Unknown dashboard setting(s) {', '.join(unknown)}; the explorer takes {', '.join(sorted(SETTINGS))}"
            )
        if isinstance(max_windows, bool) or not isinstance(max_windows, int) or max_windows < 1:
            raise ValueError(f"max_windows must be an int >= 1, got {max_windows!r}")
        self.scope, self.sae, self.max_windows = scope, sae, max_windows
        self._corpus, self._settings = corpus, settings
        self._windows: torch.Tensor | None = None
        self.report = report or (lambda _message: None)

    @property
    def corpus_name(self) -> str:
        return "the default corpus" if self._corpus is None else "the given corpus"

    @property
    def windows(self) -> torch.Tensor:
        """`[n, seq_len]` token ids: the corpus's first `max_windows` windows (cut once, then kept)."""
        if self._windows is None:
            texts = corpus_module.default() if self._corpus is None else self._corpus
            seq_len = self._settings.get("seq_len", 128)
            windows = corpus_module.token_windows(self.scope.tokenizer, texts, seq_len, self.max_windows)
            self._windows = windows[: self.max_windows]
        return self._windows

    @property
    def passes(self) -> list[DashboardSet]:
        """The passes this library built that the engine still remembers (`Engine.passes`), oldest first
        (none once the weights they read were edited in place)."""
        return remembered(self.scope, self.sae, tag=self)[::-1]

    def find(self, feature: int) -> DashboardSet | None:
        """The newest kept pass covering `feature`, else None."""
        return next((dashes for dashes in reversed(self.passes) if feature in dashes), None)

    def prepare(self, features: Iterable[int]) -> DashboardSet | None:
        """A pass covering all of `features` (a kept one, else a new one); None for no features."""
        wanted = sorted({self.sae.check_feature(f) for f in features})
        if not wanted:
            return None
        for dashes in reversed(self.passes):
            if set(wanted) <= set(dashes.features):
                return dashes
        return self._build(wanted)

    def covering(self, feature: int) -> DashboardSet:
        """A pass with `feature`: a kept one, else a new one for it and its similar features (so the
        dashboard's similar features open at once too)."""
        feature = self.sae.check_feature(feature)
        found = self.find(feature)
        if found is not None:
            return found
        similar, _ = similar_features(self.sae, torch.tensor([feature]))
        return self._build([feature, *similar[0].tolist()])

    def _build(self, features: list[int]) -> DashboardSet:
        windows = self.windows
        where = f"{len(windows)} windows of {windows.shape[1]} tokens from {self.corpus_name}"
        self.report(f"Building dashboards for {len(features)} features over {where}…")
        start = time.perf_counter()
        settings = {**self._settings, "seq_len": int(windows.shape[1])}
        dashes = build_dashboards(
            self.scope, features, corpus=windows, sae=self.sae, progress=False, tag=self, **settings
        )
        self.report(
            f"Dashboards ready for {len(features)} features over {where} ({time.perf_counter() - start:.1f} s)."
        )
        return dashes
