"""`SearchWidget`: the features a `scope.search(...)` found, as a table whose rows select a feature (front
end: js/search.js)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import traitlets

from ..checks import SearchResult
from ..core.display import presents
from ._base import Widget
from ._tokens import display_text

if TYPE_CHECKING:
    import pandas as pd


class SearchWidget(Widget):
    """A clickable table of search results: click a row to select its feature (`selected_feature`, two-way).

    Composed views link `selected_feature` to other widgets (the explorer opens its dashboard);
    `show(result)` replaces the rows in place.

    Example:
        >>> import scopewidgets as sw
        >>> from scopewidgets.testing import tiny_gemma3, random_sae
        >>> model, tok = tiny_gemma3()
        >>> scope = sw.Scope(model, tok, saes=[random_sae(model, d_sae=32)])
        >>> view = scope.search("The cat sat", k=3).widget()
        >>> [c["name"] for c in view.columns][:2], len(view.rows) <= 3
        (['feature', 'score'], True)
        >>> view.selected_feature = view.rows[0][0]
    """

    _module = "search"
    query = traitlets.Unicode("", help="What was searched for (a caption).").tag(sync=True)
    columns = traitlets.List(
        traitlets.Dict(), help="[{name, kind}]: kind 'int', 'number' or 'text'; 'feature' comes first."
    ).tag(sync=True)
    rows = traitlets.List(
        traitlets.List(), help="Cell values per row, in `columns` order (None: missing)."
    ).tag(sync=True)
    selected_feature = traitlets.Int(
        None, allow_none=True, help="The feature of the clicked row (None: none), two-way."
    ).tag(sync=True)

    def __init__(self, result: SearchResult | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if result is not None:
            self.show(result)

    def show(self, result: SearchResult) -> None:
        """Show another result (the selection is kept).

        Example:
            >>> view.show(scope.search("Paris"))                      # doctest: +SKIP
        """
        columns, rows = table_cells(result.table)
        with self.hold_sync():
            self.query, self.columns, self.rows = result.query, columns, rows


def table_cells(table: pd.DataFrame) -> tuple[list[dict[str, str]], list[list[Any]]]:
    """Columns `[{name, kind}]` (the `feature` column first) and JSON-ready rows of a result table;
    a `token` column's whitespace is made visible, as in the token view.

    Example:
        >>> import pandas as pd
        >>> columns, rows = table_cells(pd.DataFrame({"score": [1.5], "feature": [3], "token": [" "]}))
        >>> [c["kind"] for c in columns], rows
        (['int', 'number', 'text'], [[3, 1.5, '·']])
    """
    if "feature" not in table.columns:
        raise ValueError(f"A search table needs a 'feature' column; its columns are {list(table.columns)}")
    names = ["feature", *(str(c) for c in table.columns if c != "feature")]
    kinds = {name: _kind(table[name].dtype.kind) for name in names}
    rows = [[_cell(value, kinds[name]) for name, value in zip(names, row, strict=True)]
            for row in table[names].itertuples(index=False, name=None)]  # fmt: skip
    if "token" in names:
        where = names.index("token")
        for row in rows:
            row[where] = None if row[where] is None else display_text(row[where])
    return [{"name": name, "kind": kinds[name]} for name in names], rows


def _kind(dtype_kind: str) -> str:
    return {"i": "int", "u": "int", "f": "number"}.get(dtype_kind, "text")


def _cell(value: Any, kind: str) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if kind == "int":
        return int(value)
    if kind == "number":
        return float(value)
    return str(value)


@presents(SearchResult)
def _widget(result: SearchResult) -> SearchWidget:
    return SearchWidget(result)
