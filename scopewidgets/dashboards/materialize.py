"""Every dashboard of a `DashboardSet` at once (`DashboardSet.materialize()`).

The costly parts are shared, not repeated per feature: one effect table for all features (chunked GEMMs with
running top-k, cached on disk: `dashboards.effect_table`), token strings decoded once per distinct id
(`TokenTexts`), and example windows turned into `Example`s a whole table at a time (`make_examples`). What
remains per feature is putting its rows together.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import torch
from tqdm.auto import tqdm

from .effect_table import EffectTable, cached_effect_table

if TYPE_CHECKING:
    from .result import DashboardSet

EFFECT_K = 10  # top / bottom logits and similar features kept per feature


class TokenTexts:
    """`text(ids) -> list[str]` through `decode` (e.g. `Scope.token_strings`), each distinct id decoded once.

    Example:
        >>> texts = TokenTexts(lambda ids: [f"<{i}>" for i in ids])
        >>> texts(torch.tensor([3, 4, 3]))
        ['<3>', '<4>', '<3>']
    """

    def __init__(self, decode: Callable[[Sequence[int]], list[str]]) -> None:
        self.decode = decode
        self.known: dict[int, str] = {}

    def __call__(self, ids: torch.Tensor | Sequence[int]) -> list[str]:
        listed = ids.tolist() if isinstance(ids, torch.Tensor) else [int(i) for i in ids]
        missing = sorted(set(listed).difference(self.known))
        if missing:
            self.known.update(zip(missing, self.decode(missing), strict=True))
        known = self.known
        return [known[i] for i in listed]


def effect_rows(table: EffectTable, row: int, text: Callable[[Sequence[int]], list[str]]) -> dict:
    """`top_logits`, `bottom_logits` and `similar` of one table row, as `FeatureDashboard` fields."""
    lists = table.lists()
    return {
        "top_logits": list(zip(text(lists["top_ids"][row]), lists["top_values"][row], strict=True)),
        "bottom_logits": list(zip(text(lists["bottom_ids"][row]), lists["bottom_values"][row], strict=True)),
        "similar": list(zip(lists["similar_ids"][row], lists["similar_cosines"][row], strict=True)),
    }


def ensure_table(dashes: DashboardSet, progress: bool = False) -> EffectTable:
    """The effect table of all of `dashes`' features (computed once, then kept on the set and on disk)."""
    table = dashes._shared.get("effects")
    if table is None:
        table = cached_effect_table(dashes.scope.model, dashes.sae, dashes.rows.features, EFFECT_K, progress)
        dashes._shared["effects"] = table
    return table


def materialize(dashes: DashboardSet, progress: bool = True) -> DashboardSet:
    """Build every `FeatureDashboard` of `dashes` (kept in its memo); returns `dashes`."""
    ensure_table(dashes, progress)
    warm = getattr(dashes.rows, "warm", None)
    if warm is not None:
        warm(dashes.text)
    missing = [col for col in range(len(dashes)) if col not in dashes._memo]
    for col in tqdm(missing, desc="Dashboards", unit="feature", disable=not progress or len(missing) < 64):
        dashes._memo[col] = dashes._build(col)
    return dashes
