"""`Activations`: the SAE features of every token of one text (or several, as `ActivationsSet`)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd
import torch

from .core import validate as checked
from .core.corpus import bos_id
from .core.display import Displayable, present
from .core.engine import Engine, SaeRef
from .core.sae import SAE
from .features.columns import density_column, known_stats, label_column
from .features.lookup import stats_provider

if TYPE_CHECKING:
    from .features import FeatureStats
    from .widgets.activations import ActivationsWidget


class _ShownAsTokens(Displayable):
    """Display through the token-activations widget (shared by one text and several)."""

    def widget(
        self, k: int = 16, n_features: int = 50, *, rank: str = "specific", include_reserved: bool = False
    ) -> ActivationsWidget:
        """The token-activations widget: `k` features listed per token, `n_features` in the side list,
        ordered by `rank` ("specific" or "activation"); reserved features shown with `include_reserved`.

        Example:
            >>> view = acts.widget(k=8)                               # doctest: +SKIP
            >>> view.selected_feature = 12                            # doctest: +SKIP
        """
        return present(self, k=k, n_features=n_features, rank=rank, include_reserved=include_reserved)


@dataclass(frozen=True)
class Activations(_ShownAsTokens):
    """SAE feature activations of one text.

    Fields: `tokens` (display strings, one per token), `token_ids` `[n_tokens]`, `values`
    `[n_tokens, d_sae]` float32 on the CPU with BOS rows zero, the `sae` used, the `text` when the input
    was text, and `bos_mask` `[n_tokens]` (True at BOS positions). Displays itself as the token-activations
    widget (`widget(k=16)` returns one; `save_html(path)` writes an offline page).

    Example:
        >>> import scopewidgets as sw
        >>> from scopewidgets.testing import tiny_gemma3, random_sae
        >>> model, tok = tiny_gemma3()
        >>> scope = sw.Scope(model, tok, saes=[random_sae(model, d_sae=32)])
        >>> acts = scope.activations("hello")
        >>> acts.values.shape
        torch.Size([6, 32])
    """

    tokens: list[str]
    token_ids: torch.Tensor
    values: torch.Tensor
    sae: SAE = field(repr=False)
    text: str | None = None
    bos_mask: torch.Tensor | None = field(default=None, repr=False)
    stats_source: Callable[[], FeatureStats] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        bad = ~torch.isfinite(self.values)
        if bool(bad.any()):
            token, feature = (int(i) for i in bad.nonzero()[0])
            raise ValueError(
                f"The activations hold {int(bad.sum())} NaN/inf value(s) (first: token {token}, feature "
                f"{feature}); rankings and exports would drop them silently, so they are refused"
            )

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def stats(self) -> FeatureStats:
        """The SAE's per-feature statistics (`FeatureStats`) that rankings use; loaded once per SAE."""
        from .features import feature_stats

        return self.stats_source() if self.stats_source is not None else feature_stats(self.sae)

    def top_features(
        self, k: int = 10, *, rank: str = "specific", include_reserved: bool = False
    ) -> pd.DataFrame:
        """The `k` features most specific to this text (`rank="specific"`, the density-aware score of
        `scopewidgets.features.ranking`), or with the highest activation (`rank="activation"`), best first.
        Reserved features (`sae.reserved_features`) are left out unless `include_reserved=True`.

        Columns: `feature`, `score`, `max_activation`, `mean_activation` (over non-BOS tokens), `n_active`
        (tokens where it fires), `top_token` (where it peaks), `density` (fraction of corpus tokens where it
        fires, from `stats`), `label` ("" when the SAE has none).

        Example:
            >>> acts.top_features(3)                                # doctest: +SKIP
        """
        from .core import validate as checked
        from .features import ranking

        k = checked.integer(k, "k", minimum=1)
        rank, stats = self._ranking(rank)
        top_idx, top_scores = ranking.top_features(
            self.values,
            stats,
            k,
            rank=rank,
            reserved=self.sae.reserved_features,
            include_reserved=include_reserved,
            starts=self.start_rows,
        )
        chosen = self.values[:, top_idx]  # [n_tokens, k]: only the listed features' columns are read again
        peak, where = chosen.max(dim=0)
        body = chosen[self._content_rows()]
        mean = body.mean(dim=0) if body.shape[0] else torch.zeros(len(top_idx))
        active = (chosen > 0).sum(dim=0)
        return pd.DataFrame(
            {
                "feature": top_idx.tolist(),
                "score": top_scores.tolist(),
                "max_activation": peak.tolist(),
                "mean_activation": mean.tolist(),
                "n_active": active.tolist(),
                "top_token": [self.tokens[int(i)] for i in where],
                "density": density_column(stats, top_idx),
                "label": label_column(self.sae, top_idx),
            }
        )

    def _stats_if_known(self) -> FeatureStats | None:
        try:
            return self.stats
        except ValueError:
            return None

    def _ranking(self, rank: str) -> tuple[str, FeatureStats | None]:
        """`(rank, stats)` to rank with: "specific" falls back to "activation" (with a warning) when no
        statistics can be had (an `Activations` built without a Scope, for an SAE with no shipped ones)."""
        from .features import ranking

        ranking.check_rank(rank)
        stats = self._stats_if_known()
        if rank == "specific" and stats is None:
            warnings.warn(
                "No feature statistics for this SAE (built without a Scope, and none shipped or "
                "registered): features are ranked by activation",
                stacklevel=3,
            )
            rank = "activation"
        return rank, stats

    def to_dataframe(self, min_value: float = 0.0) -> pd.DataFrame:
        """Long form: one row per (token position, active feature) with value > `min_value`, and the
        feature's `density` (fraction of corpus tokens where it fires; NaN when the SAE's statistics are not
        known without a corpus pass, as in the widgets) and `label` ("" when it has none).

        Example:
            >>> acts.to_dataframe().columns.tolist()                 # doctest: +SKIP
            ['position', 'token', 'feature', 'value', 'density', 'label']
        """
        position, feature = torch.nonzero(self.values > min_value, as_tuple=True)
        present, where = torch.unique(feature, return_inverse=True)  # each feature's columns read once
        stats = known_stats(self.sae, getattr(self.stats_source, "scope", None))
        density = torch.tensor(density_column(stats, present), dtype=torch.float64)
        labels = label_column(self.sae, present)
        return pd.DataFrame(
            {
                "position": position.tolist(),
                "token": [self.tokens[int(p)] for p in position],
                "feature": feature.tolist(),
                "value": self.values[position, feature].tolist(),
                "density": density[where].tolist(),
                "label": [labels[i] for i in where.tolist()],
            }
        )

    def to_circuitsvis(self, features: Sequence[int] | None = None, k: int = 8) -> Any:
        """This text as a CircuitsVis `colored_tokens_multi` view: one colouring per feature (default: the
        `k` strongest), labelled `#feature label`. Needs `pip install circuitsvis`.

        The returned object renders inline; for a file that works offline use its `.local_src` (the whole
        CircuitsVis bundle inlined, ~1.3 MB), never `str()` (that loads JavaScript from a CDN).

        Example:
            >>> view = acts.to_circuitsvis(k=5)                          # doctest: +SKIP
            >>> Path("acts_cv.html").write_text(view.local_src)          # doctest: +SKIP
        """
        try:
            from circuitsvis.tokens import colored_tokens_multi
        except ImportError as err:
            raise ImportError("to_circuitsvis needs CircuitsVis: pip install circuitsvis") from err
        chosen = (
            self.top_features(k).feature.tolist()
            if features is None
            else [self.sae.check_feature(f) for f in features]
        )
        if not chosen:
            raise ValueError("No feature fires on this text; pass features=[...] to show some anyway")
        labels = [f"#{f}" + (f" {self.sae.label(f)}" if self.sae.label(f) else "") for f in chosen]
        return colored_tokens_multi(
            tokens=list(self.tokens), values=self.values[:, chosen].float(), labels=labels
        )

    def feature(self, index: int) -> torch.Tensor:
        """`[n_tokens]` activations of one feature over the text."""
        return self.values[:, self.sae.check_feature(index)]

    @property
    def start_rows(self) -> list[int]:
        """Rows holding a text's first token (right after BOS), which rankings score against the
        statistics at text starts (`features.starts`).

        Example:
            >>> scope.activations("The cat sat.").start_rows            # doctest: +SKIP
            [1]
        """
        if self.bos_mask is None:
            return []
        bos = self.bos_mask.bool()
        return torch.nonzero(~bos[1:] & bos[:-1]).add(1).flatten().tolist()

    def _content_rows(self) -> torch.Tensor:
        """`[n_tokens]` bool: rows that are not BOS."""
        if self.bos_mask is None:
            return torch.ones(len(self), dtype=torch.bool)
        return ~self.bos_mask


@dataclass(frozen=True)
class ActivationsSet(_ShownAsTokens):
    """Several texts' `Activations` over the same SAE, shown as rows sharing one colour scale.

    Example:
        >>> rows = scope.activations(["hello", "world"])           # doctest: +SKIP
        >>> len(rows), rows[0].tokens                               # doctest: +SKIP
    """

    items: tuple[Activations, ...]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> Activations:
        return self.items[index]

    def __iter__(self) -> Any:
        return iter(self.items)

    @property
    def sae(self) -> SAE:
        return self.items[0].sae

    def top_features(
        self, k: int = 10, *, rank: str = "specific", include_reserved: bool = False
    ) -> pd.DataFrame:
        """Like `Activations.top_features`, over all texts together."""
        merged = Activations(
            tokens=[t for item in self.items for t in item.tokens],
            token_ids=torch.cat([item.token_ids for item in self.items]),
            values=torch.cat([item.values for item in self.items]),
            sae=self.sae,
            bos_mask=torch.cat([item._content_rows().logical_not() for item in self.items]),
            stats_source=self.items[0].stats_source,
        )
        return merged.top_features(k, rank=rank, include_reserved=include_reserved)

    def to_dataframe(self, min_value: float = 0.0) -> pd.DataFrame:
        """Long form over all texts, with a `text_index` column."""
        frames = [item.to_dataframe(min_value).assign(text_index=i) for i, item in enumerate(self.items)]
        return pd.concat(frames, ignore_index=True)


def activations_of(
    engine: Engine, text_or_ids: str | Sequence[int] | torch.Tensor | Sequence[str], sae: SaeRef = None
) -> Activations | ActivationsSet:
    """`Scope.activations`: the SAE activations of every token of a text (or of each text of a list)."""
    chosen = engine.sae(sae)
    if isinstance(text_or_ids, list | tuple) and any(isinstance(item, str) for item in text_or_ids):
        texts = checked.texts(text_or_ids, "text_or_ids")
        return ActivationsSet(tuple(activations_of(engine, text, chosen) for text in texts))
    ids = engine.tokenize(text_or_ids)
    values = engine.encode(ids, [chosen])[0][0].cpu()
    return Activations(
        tokens=engine.token_strings(ids),
        token_ids=ids,
        values=values,
        sae=chosen,
        text=text_or_ids if isinstance(text_or_ids, str) else None,
        bos_mask=ids == bos_id(engine.tokenizer),
        stats_source=stats_provider(chosen, engine),
    )
