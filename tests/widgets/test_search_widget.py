"""`SearchResult`'s clickable view (`SearchWidget`, Python side; the browser side is tests/js/search.test.js)."""

from __future__ import annotations

import math
import pickle

import pandas as pd
import pytest

from scopewidgets.checks import SearchResult
from scopewidgets.widgets.search import SearchWidget, table_cells


def test_rows_carry_the_table_feature_first_with_visible_whitespace() -> None:
    table = pd.DataFrame(
        {"score": [2.5, 1.0], "feature": [7, 3], "token": [" ", "<b>x</b>"], "label": ["seven", None]}
    )
    columns, rows = table_cells(table)
    assert columns == [
        {"name": "feature", "kind": "int"},
        {"name": "score", "kind": "number"},
        {"name": "token", "kind": "text"},
        {"name": "label", "kind": "text"},
    ]
    assert rows == [
        [7, 2.5, "·", "seven"],
        [3, 1.0, "<b>x</b>", None],
    ]  # text stays text; JS inserts it as such
    assert table_cells(pd.DataFrame({"feature": [1], "score": [math.nan]}))[1] == [[1, None]]
    with pytest.raises(ValueError, match="'feature' column"):
        table_cells(pd.DataFrame({"score": [1.0]}))


def test_search_results_display_as_a_clickable_table(scope) -> None:
    result = scope.search("The cat sat on the mat", k=5)
    view = result.widget()
    assert isinstance(view, SearchWidget) and view.query == result.query
    assert [row[0] for row in view.rows] == result.features
    other = scope.search("A dog", k=2)
    view.show(other)
    assert [row[0] for row in view.rows] == other.features and view.query == "A dog"
    data, _ = result._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in data
    assert "<table" in data["text/html"] and data["text/plain"].startswith("SearchResult for The cat sat")
    assert result.to_dataframe().feature.tolist() == result.features
    assert pickle.loads(pickle.dumps(result)).features == result.features  # the widget is not pickled


def test_an_empty_result_and_unknown_keywords() -> None:
    view = SearchWidget(SearchResult(pd.DataFrame({"feature": [], "score": []}), query="nothing"))
    assert view.rows == [] and view.query == "nothing"
    with pytest.raises(TypeError, match="colour"):
        SearchWidget(colour="red")
