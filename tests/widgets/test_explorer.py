"""`scope.explorer()` wiring (Python side): text -> token view -> selected feature -> dashboard -> steer ->
steering panel, the search box, inline errors and the export. The browser side is
tests/js/explorer.test.js and tests/browser/test_explorer_browser.py."""

from __future__ import annotations

import json
import re

import pytest
import torch

import scopewidgets as sw
from scopewidgets.widgets import ActivationsWidget, DashboardWidget

TEXTS = [
    "The cat sat on the mat.\nThe dog sat on the log.",
    "A bird in the hand is worth two in the bush.",
] * 4
SMALL = {"corpus": TEXTS, "max_windows": 4, "seq_len": 16, "cache": False}


@pytest.fixture
def explorer(scope):
    ex = scope.explorer("The cat sat on the mat", **SMALL)
    yield ex
    ex.close()


def steer(ex, feature: int) -> None:
    """What a click on the dashboard's steer button does (its custom message)."""
    ex.dashboard._on_message(ex.dashboard, {"kind": "action", "name": "steer", "feature": feature}, [])


def test_a_text_shows_its_tokens_and_one_pass_covers_every_listed_feature(scope, explorer):
    assert explorer.tokens.tokens == scope.activations("The cat sat on the mat").widget().tokens
    assert explorer.controls.text == explorer.text == "The cat sat on the mat"
    assert explorer.children == (explorer.controls, explorer.tokens, explorer.search_results)  # results below
    (dashes,) = explorer.library.passes
    assert set(explorer.tokens.listed_features()) <= set(dashes.features)
    assert explorer.status.startswith("Dashboards ready for") and explorer.controls.status == explorer.status
    assert tuple(explorer.library.windows.shape) == (4, 16)
    first = explorer.tokens
    explorer.controls.text = "A dog"  # typed in the browser
    assert explorer.text == "A dog" and explorer.tokens is not first and first.comm is None
    assert explorer.tokens.tokens == scope.activations("A dog").widget().tokens
    assert len(explorer.library.passes) == 2 and explorer.error == ""


def test_selecting_a_feature_opens_its_dashboard_and_every_part_follows(scope, explorer):
    listed = explorer.tokens.top_features
    feature, other = listed[0]["feature"], listed[1]["feature"]
    explorer.tokens.selected_feature = feature  # a click in the token view's side list
    assert explorer.selected_feature == feature == explorer.search_results.selected_feature
    assert isinstance(explorer.dashboard, DashboardWidget) and explorer.dashboard.header["feature"] == feature
    assert explorer.children[-1] is explorer.dashboard
    assert len(explorer.library.passes) == 1  # the prebuilt pass served it: no wait
    assert explorer.dashboard.header["density"] == explorer.library.passes[0][feature].density
    assert explorer.dashboard.actions == [{"name": "steer", "label": "steer with this feature"}]

    explorer.selected_feature = other  # from Python
    assert explorer.dashboard.feature == explorer.dashboard.header["feature"] == other
    assert explorer.tokens.selected_feature == other and explorer.tokens.selected_column["feature"] == other

    outside = next(
        s["feature"] for s in explorer.dashboard.similar if s["feature"] not in explorer.library.passes[0]
    )
    explorer.dashboard.feature = outside  # a click on a similar feature the first pass does not cover
    assert explorer.dashboard.header["feature"] == outside and explorer.dashboard.error == ""
    assert explorer.selected_feature == outside == explorer.tokens.selected_feature
    new = explorer.library.passes[-1]
    assert len(explorer.library.passes) == 2 and outside in new and len(new) == 11  # it and its 10 similar

    explorer.selected_feature = None
    assert explorer.tokens.selected_feature is None and explorer.dashboard.feature == outside  # stays open


def test_steer_adds_a_slider_for_the_feature_with_the_text_as_prompt(explorer):
    feature, other = (item["feature"] for item in explorer.tokens.top_features[:2])
    explorer.selected_feature = feature
    steer(explorer, feature)
    panel = explorer.steering
    assert explorer.steer_features == [feature] == panel.features
    assert [c["feature"] for c in panel.controls] == [feature] and panel.controls[0]["limit"] > 0
    assert panel.prompt == "The cat sat on the mat" and explorer.children[-1] is panel
    assert explorer.status == f"Feature #{feature} is in the steering panel below."
    steer(explorer, feature)
    assert panel.features == [feature]  # not twice
    explorer.selected_feature = other
    steer(explorer, other)
    assert [c["feature"] for c in panel.controls] == [feature, other]
    panel.features = [other]  # removed in the panel ("x")
    assert explorer.steer_features == [other]
    explorer.text = "A dog"
    assert panel.prompt == "A dog"  # an untouched prompt follows the text
    panel.prompt = "My own prompt"
    explorer.text = "A bird"
    assert panel.prompt == "My own prompt" and explorer.steering is panel


def test_errors_show_inline_and_the_explorer_keeps_working(scope, explorer):
    shown = explorer.tokens
    explorer.controls.text = ""
    assert explorer.error == "The text is empty; give at least one character" == explorer.controls.error
    assert explorer.tokens is shown
    explorer.text = "x" * 5000
    assert re.search(r"5001 tokens; this model's context allows at most \d+", explorer.error)
    explorer.text = "A dog"
    assert explorer.error == "" and explorer.tokens is not shown

    feature = explorer.tokens.top_features[0]["feature"]
    explorer.selected_feature = feature
    explorer.selected_feature = 10**6
    assert "Feature 1000000 is out of range" in explorer.error and "[0, 64)" in explorer.error
    assert (
        explorer.selected_feature == feature == explorer.tokens.selected_feature == explorer.dashboard.feature
    )
    explorer.selected_feature = explorer.tokens.top_features[1]["feature"]
    assert explorer.error == ""

    explorer.steer_features = [feature, 10**6]
    assert "Feature 1000000" in explorer.error and explorer.steer_features == [] and explorer.steering is None
    explorer.text = ""  # a failed text is not the steering prompt: the text shown is
    explorer.steer_features = [feature]
    assert explorer.steering.features == [feature] and explorer.steering.prompt == "A dog"
    assert "Feature 1000000" not in explorer.error and "text is empty" in explorer.error

    explorer.search_by = "logit"
    explorer.query = "cat"  # three tokens with the tiny tokenizer
    assert "'cat' is 3 tokens" in explorer.error
    explorer.query = "c"
    assert explorer.error == "" and explorer.search_results.rows


def test_a_failing_pass_is_shown_and_the_tokens_still_work(scope):
    ex = scope.explorer("The cat", corpus=[1, 2], max_windows=2, cache=False)
    assert "Corpus item 0 is int, expected str" in ex.error
    assert isinstance(ex.tokens, ActivationsWidget) and ex.tokens.tokens[:2] == ["<bos>", "T"]
    ex.selected_feature = ex.tokens.top_features[0]["feature"]
    assert "Corpus item 0" in ex.error and ex.selected_feature is None and ex.dashboard is None


def test_search_results_are_rows_that_open_dashboards(scope, explorer):
    assert explorer.search_results.layout.display == "none"
    explorer.controls.query = "the dog"  # typed in the browser
    expected = scope.search("the dog", k=20)
    assert [row[0] for row in explorer.search_results.rows] == expected.features
    assert explorer.search_results.layout.display is None and explorer.search_results.query == "the dog"
    assert set(expected.features) <= set(explorer.library.passes[-1].features)  # prebuilt: clicks are instant
    passes = len(explorer.library.passes)
    feature = expected.features[-1]
    explorer.search_results.selected_feature = feature  # a click on the last row
    assert explorer.dashboard.header["feature"] == feature == explorer.tokens.selected_feature
    assert len(explorer.library.passes) == passes
    explorer.controls.search_by = "logit"
    explorer.controls.query = "e"
    assert [row[0] for row in explorer.search_results.rows] == scope.search(logit="e", k=20).features
    explorer.query = ""
    assert explorer.search_results.layout.display == "none"


def test_a_new_text_clears_the_old_search_and_a_selection_silent_on_it(scope, explorer):
    explorer.controls.query = "the dog"
    assert explorer.search_results.rows and explorer.search_results.layout.display is None
    values = scope.activations("The cat sat on the mat").values
    silent = int(torch.nonzero(values.amax(0) == 0)[0])  # a feature that never fires on the next text
    explorer.selected_feature = silent
    explorer.text = "The cat sat on the mat"[:7]  # "The cat": `silent` is silent on it too
    assert scope.activations("The cat").values[:, silent].max() == 0
    assert explorer.query == explorer.controls.query == "" and explorer.search_results.rows == []
    assert explorer.search_results.layout.display == "none"
    assert explorer.selected_feature is None and explorer.tokens.selected_feature is None
    firing = explorer.tokens.top_features[0]["feature"]
    explorer.selected_feature = firing
    explorer.text = "The cat sat"  # it still fires there: the selection stays, the tokens show it
    assert scope.activations("The cat sat").values[:, firing].max() > 0
    assert explorer.selected_feature == firing == explorer.tokens.selected_feature
    assert explorer.children.index(explorer.tokens) < explorer.children.index(explorer.search_results)


def test_one_submit_of_query_and_mode_runs_one_search(explorer, scope, monkeypatch) -> None:
    calls = []
    real = scope.search
    monkeypatch.setattr(scope, "search", lambda *a, **kw: calls.append((a, kw)) or real(*a, **kw))
    explorer.query = ""
    with explorer.controls.hold_trait_notifications():  # what one message from the browser does
        explorer.controls.query = "e"
        explorer.controls.search_by = "logit" if explorer.search_by == "text" else "text"
    assert len(calls) == 1 and explorer.error == ""
    mode = explorer.controls.search_by
    expected = scope.search(logit="e", k=20) if mode == "logit" else scope.search("e", k=20)
    assert [row[0] for row in explorer.search_results.rows] == expected.features


def test_without_text_or_prebuilding_and_with_the_default_corpus(scope):
    ex = scope.explorer(max_windows=3, seq_len=16, cache=False, prebuild=False)
    assert ex.tokens is None and ex.children == (ex.controls, ex.search_results)
    assert ex.status.startswith("Type a text") and ex.error == ""
    expected = sw.corpus.token_windows(scope.tokenizer, sw.corpus.default(), 16, 3)
    assert torch.equal(ex.library.windows, expected) and ex.library.corpus_name == "the default corpus"
    ex.text = "The cat"
    assert ex.library.passes == []  # nothing built until a click
    feature = ex.tokens.top_features[0]["feature"]
    ex.selected_feature = feature
    (dashes,) = ex.library.passes
    assert feature in dashes and len(dashes) == 11 and ex.dashboard.header["feature"] == feature
    with pytest.raises(ValueError, match="shows nothing"):
        scope.explorer(**SMALL).save_html("never.html")
    with pytest.raises(TypeError, match="colour"):
        scope.explorer(colour="red")
    with pytest.raises(ValueError, match="max_windows must be an int >= 1"):
        scope.explorer(max_windows=0)
    ex.close()


def test_save_html_puts_the_parts_on_one_offline_page(explorer, tmp_path):
    feature = explorer.tokens.top_features[0]["feature"]
    explorer.selected_feature = feature
    explorer.query = "the dog"
    page = explorer.save_html(tmp_path / "explorer.html").read_text(encoding="utf-8")
    data = json.loads(re.search(r'id="sw-data">(.*?)</script>', page, re.S).group(1))
    states = [part["state"] for part in data["parts"]]
    assert "tokens" in states[0] and "rows" in states[1] and states[2]["feature"] == feature
    assert states[0]["selected_feature"] == feature and states[2]["actions"] == []  # no kernel to steer with
    assert "<title>Explorer: The cat sat on the mat</title>" in page


def test_close_closes_every_part(scope):
    ex = scope.explorer("The cat", **SMALL)
    ex.selected_feature = ex.tokens.top_features[0]["feature"]
    ex.steer_features = [ex.selected_feature]
    parts = [ex.controls, ex.search_results, ex.tokens, ex.dashboard, ex.steering]
    ex.close()
    assert all(part.comm is None for part in parts) and ex.comm is None
