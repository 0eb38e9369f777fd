"""Feature dashboards: what makes a feature fire, and what it does.

`scope.dashboards(features, corpus=...)` runs one pass over a corpus for all the features at once and
returns a `DashboardSet`; `scope.dashboard(f)` (or `dashes[f]`) gives one `FeatureDashboard`:

- `examples`: the top sequences by the feature's maximum activation in them, strongest first, each as a
  window of tokens around that maximum with the feature's activation on every token;
- `quantiles`: equal-width ranges of activation up to the maximum, each with a uniform random sample of
  the tokens whose activation falls in it (and how many tokens do);
- `histogram`: counts of the positive activations; `density`: the fraction of (non-BOS) tokens where the
  feature is > 0; `max_activation`, `mean_activation` (mean over the tokens where it fires);
- `top_logits` / `bottom_logits`: `w_dec[f]` through the final norm's gain and the unembedding;
- `similar`: features whose decoder rows have the highest cosine with this one (`similar_table()` adds
  each one's density and label, and leaves out the SAE's reserved features).

Passes are cached on disk by content hash and mergeable across processes or GPUs (`shard=(rank, world)`,
`DashboardSet.merge`): docs/dashboards.md has the definitions, a torchrun / accelerate example, the
memory bound and the Gemma Scope evidence files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from ..core.display import Displayable, present
from ..core.effects import feature_logits, similar_features
from ..core.sae import SAE
from .effect_table import EffectTable
from .examples import Example, Histogram, QuantileGroup
from .materialize import TokenTexts, effect_rows

if TYPE_CHECKING:
    from ..core.engine import Engine
    from ..features.stats import FeatureStats
    from ..widgets.dashboard import DashboardWidget
    from .rows import FeatureRows


@dataclass(frozen=True, eq=False)
class FeatureDashboard(Displayable):
    """Everything known about one feature (see the module docstring). Displays itself as the dashboard
    widget (`widget()`; `save_html(path)` writes an offline page).

    Example:
        >>> dash = scope.dashboard(1234)                                    # doctest: +SKIP
        >>> dash.density, dash.max_activation, dash.top_logits[:3]          # doctest: +SKIP
        >>> dash.to_dataframe().head()                                      # doctest: +SKIP
    """

    feature: int
    density: float
    max_activation: float
    mean_activation: float
    examples: list[Example]
    quantiles: list[QuantileGroup]
    histogram: Histogram
    top_logits: list[tuple[str, float]]
    bottom_logits: list[tuple[str, float]]
    similar: list[tuple[int, float]]
    label: str | None
    n_tokens: int
    source: str
    sae: SAE | None = field(default=None, repr=False)
    dashboards: DashboardSet | None = field(default=None, repr=False)

    def widget(self) -> DashboardWidget:
        """The dashboard widget, open on this feature; similar features of the same pass open in it.

        Example:
            >>> view = dash.widget()                                        # doctest: +SKIP
            >>> view.feature = 77                                           # doctest: +SKIP
        """
        if self.dashboards is None:
            raise ValueError("This FeatureDashboard was built outside a DashboardSet; it has no widget")
        return self.dashboards.widget(self.feature)

    def __repr__(self) -> str:
        top = ", ".join(repr(t) for t, _ in self.top_logits[:3])
        return (
            f"FeatureDashboard(feature={self.feature}, density={self.density:.3g}, "
            f"max_activation={self.max_activation:.3g}, examples={len(self.examples)}, top_logits=[{top}])"
        )

    def to_dataframe(self) -> pd.DataFrame:
        """The examples, one row each: group (`top` or the quantile range), value, seq_index, position, text,
        with the focus token marked by `[[ ]]`.

        Example:
            >>> dash.to_dataframe().columns.tolist()                        # doctest: +SKIP
            ['group', 'max_value', 'seq_index', 'position', 'text']
        """
        rows = [("top", e) for e in self.examples]
        for group in self.quantiles:
            rows += [(f"[{group.lower:.3g}, {group.upper:.3g})", e) for e in group.examples]
        return pd.DataFrame(
            {
                "group": [g for g, _ in rows],
                "max_value": [e.max_value for _, e in rows],
                "seq_index": [e.seq_index for _, e in rows],
                "position": [e.position for _, e in rows],
                "text": [_marked_text(e) for _, e in rows],
            }
        )

    def similar_table(
        self, stats: FeatureStats | None = None, *, include_reserved: bool = False
    ) -> pd.DataFrame:
        """The similar features, most similar first: `feature`, `cosine` (of the decoder rows), `density` (from
        this dashboard's pass where it covers the feature, else from `stats`, e.g. `scope.feature_stats()`;
        NaN when neither knows it) and `label` ("" when none). The SAE's reserved features are left out
        unless `include_reserved` or this feature is reserved itself.

        Example:
            >>> dash.similar_table(scope.feature_stats()).columns.tolist()      # doctest: +SKIP
            ['feature', 'cosine', 'density', 'label']
        """
        reserved = set(self.sae.reserved_features) if self.sae is not None else set()
        hidden = set() if include_reserved or self.feature in reserved else reserved
        kept = [(int(f), float(c)) for f, c in self.similar if int(f) not in hidden]
        ids = [f for f, _ in kept]
        density = self.dashboards.densities(ids) if self.dashboards is not None else np.full(len(ids), np.nan)
        if stats is not None:
            known = stats.density[torch.as_tensor(ids, dtype=torch.long)].double().cpu().numpy()
            density = np.where(np.isnan(density), known, density)
        label = self.sae.label if self.sae is not None else lambda _f: None
        return pd.DataFrame(
            {
                "feature": pd.Series(ids, dtype="int64"),
                "cosine": pd.Series([c for _, c in kept], dtype="float64"),
                "density": pd.Series(density, dtype="float64"),
                "label": pd.Series([label(f) or "" for f in ids], dtype="object"),
            }
        )

    def plot(self, ax: Any = None) -> Any:
        """A matplotlib bar chart of the activation histogram; returns the axes.

        Example:
            >>> ax = dash.plot()                                             # doctest: +SKIP
        """
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 2.5))
        counts, edges = self.histogram
        ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color="#d9480f")
        ax.set_xlabel("activation")
        ax.set_ylabel("tokens")
        ax.set_title(f"feature {self.feature}: density {self.density:.3g}")
        return ax


def _marked_text(example: Example) -> str:
    parts = list(example.tokens)
    if 0 <= example.focus < len(parts):
        parts[example.focus] = f"[[{parts[example.focus]}]]"
    return "".join(parts)


@dataclass(frozen=True, eq=False)
class DashboardSet(Displayable):
    """The result of one dashboard pass: `dashes[f]` gives feature `f`'s `FeatureDashboard`. Displays
    itself as the dashboard widget on its first feature that fires (`widget(feature)` for another).

    `rows` holds the per-feature statistics (a finished corpus pass, or Gemma Scope evidence files);
    `corpus_key` fingerprints the corpus when it could be hashed.

    Example:
        >>> dashes = scope.dashboards(range(512), corpus=texts)              # doctest: +SKIP
        >>> dashes[17].examples[0].tokens                                     # doctest: +SKIP
        >>> dashes.to_dataframe().sort_values("density").tail()              # doctest: +SKIP
    """

    rows: FeatureRows
    scope: Engine = field(repr=False)
    sae: SAE = field(repr=False)
    n_bins: int = 50
    corpus_key: str | None = field(default=None, repr=False)
    _memo: dict[int, FeatureDashboard] = field(default_factory=dict, repr=False)
    _shared: dict[str, Any] = field(default_factory=dict, repr=False)  # effect table, token strings

    def widget(self, feature: int | None = None) -> DashboardWidget:
        """The dashboard widget open on `feature` (default: the first that fires); navigates this pass.

        Example:
            >>> view = dashes.widget(1234)                                 # doctest: +SKIP
        """
        return present(self, feature=feature)

    def _repr_text(self) -> str:
        return repr(self)

    def __repr__(self) -> str:
        return (
            f"DashboardSet({len(self)} features, {self.rows.n_tokens:,} tokens, source={self.rows.source!r})"
        )

    @property
    def nbytes(self) -> int:
        """Bytes of pass state this set holds in memory (0 when its rows are read from files lazily)."""
        return int(getattr(self.rows, "nbytes", 0))

    @property
    def features(self) -> list[int]:
        """The feature ids covered, ascending."""
        return self.rows.features.tolist()

    @property
    def state(self) -> Any:
        """The mergeable pass state (`DashboardState`), for combining passes run on several processes."""
        return getattr(self.rows, "state", None)

    def __len__(self) -> int:
        return int(self.rows.features.numel())

    def __iter__(self) -> Any:
        return iter(self.features)

    def __contains__(self, feature: object) -> bool:
        return self._column(feature, strict=False) is not None

    def _column(self, feature: object, strict: bool = True) -> int | None:
        try:
            index = self.sae.check_feature(feature)  # type: ignore[arg-type]
        except ValueError:
            if strict:
                raise
            return None
        col = int(torch.searchsorted(self.rows.features, index))
        if col < len(self) and int(self.rows.features[col]) == index:
            return col
        if strict:
            shown = self.features[:8]
            raise ValueError(
                f"Feature {index} is not in this pass, which covers {len(self)} features "
                f"({shown}{' ...' if len(self) > 8 else ''}); run scope.dashboards([{index}], corpus=...)"
            )
        return None

    def densities(self, features: list[int]) -> np.ndarray:
        """`[len(features)]` float64: each feature's density in this pass (NaN where it does not cover it,
        or where the pass does not know it, as with evidence files lacking frequencies)."""
        density = self.rows.stats()["density"]
        cols = [self._column(f, strict=False) for f in features]
        return np.array([np.nan if c is None else float(density[c]) for c in cols], dtype=np.float64)

    def __getitem__(self, feature: int) -> FeatureDashboard:
        col = self._column(feature)
        assert col is not None
        if col not in self._memo:
            self._memo[col] = self._build(col)
        return self._memo[col]

    @property
    def text(self) -> TokenTexts:
        """Token ids -> display strings (`Scope.token_strings`), each distinct id decoded once per set."""
        if "text" not in self._shared:
            self._shared["text"] = TokenTexts(self.scope.token_strings)
        return self._shared["text"]

    def materialize(self, progress: bool = True) -> DashboardSet:
        """Build every feature's dashboard now, sharing the work: all logit effects and similar features
        in chunked GEMMs (cached on disk with the pass), examples a table at a time. Returns `self`.

        Example:
            >>> dashes.materialize()[17].top_logits[:3]                     # doctest: +SKIP
        """
        from .materialize import materialize

        return materialize(self, progress)

    def save(self, path: str | Path) -> Path:
        """Write this pass, its logit effects and similar features, and the model and SAE fingerprints to
        one safetensors file in the Gemma Scope `examples.safetensors` layout (docs/dashboards.md).

        Example:
            >>> dashes.save("layer12.safetensors")                           # doctest: +SKIP
        """
        from .file import save

        return save(self, path)

    @classmethod
    def load(cls, path: str | Path, scope: Engine, sae: Any = None, check: bool = True) -> DashboardSet:
        """A saved pass over `scope`'s model and `sae` (default its first); a `ValueError` when the file
        was saved with other weights (by fingerprint; `check=False` skips that).

        Example:
            >>> dashes = DashboardSet.load("layer12.safetensors", scope)     # doctest: +SKIP
        """
        from .file import load

        return load(cls, path, scope, sae, check)

    def save_atlas(self, path: str | Path, progress: bool = True) -> Path:
        """Write an offline atlas of every feature to the folder `path`: open `index.html` from disk (no
        kernel, no network) to list, search and sort the features and open each one's dashboard.

        Example:
            >>> dashes.save_atlas("atlas")                                   # doctest: +SKIP
        """
        return present(self, "atlas", path=path, progress=progress)

    def _effects(self, feature: int) -> dict[str, Any]:
        table = self._shared.get("effects")
        row = table.row(feature) if table is not None else None
        if row is None:  # one feature alone: milliseconds, no table
            ids = torch.tensor([feature])
            top, top_ids, bottom, bottom_ids = feature_logits(self.scope.model, self.sae, ids)
            similar_ids, cosines = similar_features(self.sae, ids)
            table, row = EffectTable(ids, top, top_ids, bottom, bottom_ids, similar_ids, cosines), 0
        return effect_rows(table, row, self.text)

    def _build(self, col: int) -> FeatureDashboard:
        feature = int(self.rows.features[col])
        stats = self.rows.stats()
        text, sae = self.text, self.sae
        return FeatureDashboard(
            feature=feature,
            density=float(stats["density"][col]),
            max_activation=float(stats["max_activation"][col]),
            mean_activation=float(stats["mean_activation"][col]),
            examples=self.rows.examples(col, text),
            quantiles=self.rows.quantiles(col, text),
            histogram=self.rows.histogram(col, self.n_bins),
            **self._effects(feature),
            label=sae.label(feature),
            n_tokens=self.rows.n_tokens,
            source=self.rows.source,
            sae=sae,
            dashboards=self,
        )

    def to_dataframe(self, logits: bool = True) -> pd.DataFrame:
        """One row per feature (indexed by feature id): feature, density, max_activation, mean_activation,
        n_active, label and (with `logits`) the top and bottom logit tokens (all features at once, in chunks).

        Example:
            >>> dashes.to_dataframe().columns.tolist()[:4]                  # doctest: +SKIP
            ['feature', 'density', 'max_activation', 'mean_activation']
        """
        stats = self.rows.stats()
        frame = pd.DataFrame(
            {"feature": self.features, **{k: np.asarray(v) for k, v in stats.items()}}, index=self.features
        )
        frame["label"] = [self.sae.label(f) or "" for f in self.features]  # never None/NaN
        if logits:
            from .materialize import ensure_table

            table = ensure_table(self, progress=True)
            frame["top_logit"] = self.text(table.top_ids[:, 0])
            frame["top_logit_value"] = table.top_values[:, 0].numpy()
            frame["bottom_logit"] = self.text(table.bottom_ids[:, 0])
            frame["bottom_logit_value"] = table.bottom_values[:, 0].numpy()
        return frame

    def merge(self, other: DashboardSet | Any) -> DashboardSet:
        """The pass over the sequences of both: `other` is a `DashboardSet` or a bare `DashboardState`
        (what processes exchange). The sequences of the two must not overlap (see `shard=`).

        Example:
            >>> both = part_a.merge(part_b)                                  # doctest: +SKIP
        """
        from .rows import StateRows

        theirs = other.state if isinstance(other, DashboardSet) else other
        if self.state is None or theirs is None:
            raise ValueError("Only corpus passes can be merged (evidence-file dashboards cannot)")
        return DashboardSet(StateRows(self.state.merge(theirs)), self.scope, self.sae, self.n_bins)

    def join(self, *others: DashboardSet | Any) -> DashboardSet:
        """The pass over the features of all: each of `others` (a `DashboardSet` or a bare `DashboardState`)
        read the same sequences for other features (see `feature_shard=`).

        Example:
            >>> every = part_0.join(part_1, part_2)                         # doctest: +SKIP
        """
        from .rows import StateRows
        from .shard import join_states

        states = [self.state, *(o.state if isinstance(o, DashboardSet) else o for o in others)]
        if any(state is None for state in states):
            raise ValueError("Only corpus passes can be joined (evidence-file dashboards cannot)")
        return DashboardSet(
            StateRows(join_states(states)), self.scope, self.sae, self.n_bins, self.corpus_key
        )
