"""`DashboardWidget` and how dashboards display themselves (Python side; the browser side is in
tests/js/dashboard.test.js and tests/browser/test_dashboard_browser.py)."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch

import scopewidgets as sw
from scopewidgets.features import FeatureStats, forget_feature_stats, register_feature_stats
from scopewidgets.testing import random_sae, tiny_gemma3
from scopewidgets.widgets import DashboardWidget, from_binary


@pytest.fixture(scope="module")
def dashes(tmp_path_factory):
    model, tokenizer = tiny_gemma3()
    sae = random_sae(model, "resid_post", 1, d_sae=24, threshold=0.3, seed=2)
    sae.labels = {4: "fourth <b>feature</b>"}
    scope = sw.Scope(model, tokenizer, saes=[sae])
    texts = ["The cat sat on the mat.\nThe dog sat on the log."] * 6
    return scope.dashboards(range(0, 24, 2), corpus=texts, seq_len=24, cache=False, progress=False)


def test_traits_carry_the_dashboard(dashes):
    dash = dashes[4]
    view = DashboardWidget(dashes, feature=4)
    assert view.feature == 4 and view.header["feature"] == 4
    assert view.header["density"] == dash.density and view.header["max_activation"] == dash.max_activation
    counts = from_binary(view.histogram["counts"])
    np.testing.assert_array_equal(counts, dash.histogram.counts)
    assert [item["value"] for item in view.logits["top"]] == [v for _, v in dash.top_logits]
    examples = view.examples
    lengths = from_binary(examples["lengths"])
    assert len(lengths) == len(dash.examples) + sum(len(g.examples) for g in dash.quantiles)
    assert lengths.sum() == len(examples["tokens"]) == len(from_binary(examples["values"]))
    assert examples["groups"][0] == {"kind": "top", "first": 0, "count": len(dash.examples)}
    assert examples["limits"] == [0.0, dash.max_activation]
    first = dash.examples[0]
    np.testing.assert_array_equal(from_binary(examples["values"])[: len(first.values)], first.values.numpy())
    special = from_binary(examples["special"]).tolist()
    assert special == [int(t == "<bos>") for t in examples["tokens"]] and any(special)
    assert [s["feature"] for s in view.similar] == [f for f, _ in dash.similar]
    assert all(s["covered"] for s in view.similar)  # the corpus can be read again: each one opens
    assert examples["tokens"] and not any("\n" in t for t in examples["tokens"])  # one line per example
    assert "↵" in "".join(examples["tokens"])
    assert examples["max_context"] == max(max(e.focus, len(e.tokens) - 1 - e.focus) for e in dash.examples)
    assert view.context == 5


def test_tokens_promoted_by_steering_show_once_the_steering_jacobian_is_known(dashes, tmp_path, monkeypatch):
    from scopewidgets.features import logit
    from scopewidgets.widgets._tokens import display_text

    monkeypatch.setenv("SCOPEWIDGETS_CACHE", str(tmp_path / "cache"))
    hashed = []
    with monkeypatch.context() as patch:  # no Jacobian of this width anywhere: the model is not even hashed
        patch.setattr(logit, "jacobian_key", lambda *a: hashed.append(a))
        assert (
            DashboardWidget(dashes, feature=4).logits["steer_top"] == []
        )  # nothing computed behind your back
    assert not hashed
    before = dataclasses.replace(dashes[4])._repr_mimebundle_()[0]["text/plain"]  # a copy: its own widget
    assert "; top logits " in before and "steering" not in before  # no Jacobian: the direct table
    jacobian = logit.steering_jacobian(dashes.scope, dashes.sae, progress=False)  # computed and cached
    view = DashboardWidget(dashes, feature=4)
    for feature in (4, 10):
        view.feature = feature
        moved = dashes.sae.W_dec[feature].float() @ jacobian.T  # brute force: every token's steered logit
        logits = dashes.scope.model.lm_head.weight.float() @ moved
        for key, picked in (("steer_top", logits.topk(10)), ("steer_bottom", (-logits).topk(10))):
            shown = view.logits[key]
            names = [display_text(t) for t in dashes.scope.token_strings(picked.indices.tolist())]
            assert [item["token"] for item in shown] == names
            values = logits[picked.indices].tolist()
            assert [item["value"] for item in shown] == pytest.approx(values, rel=1e-4, abs=1e-7)
    assert view.logits["top"] and view.logits["top"] != view.logits["steer_top"]  # the direct table stays
    # a copy with its own widget: its text line (what a front end without widgets shows) names the widget's list
    dash = dataclasses.replace(dashes[10])
    text = dash._repr_mimebundle_()[0]["text/plain"]
    steered = ", ".join(repr(item["token"]) for item in dash._view.logits["steer_top"][:5])
    assert text.endswith(f"; promoted by steering {steered}") and dash._view.feature == 10


def _atlas_chunk(folder, chunk=0):
    text = (folder / "data" / "features" / f"{chunk}.js").read_text(encoding="utf-8")
    prefix = f"window.SW_ATLAS_CHUNK({chunk}, "
    assert text.startswith(prefix) and text.endswith(");\n")
    return {int(f): state for f, state in json.loads(text[len(prefix) : -3]).items()}


def _atlas_index(folder):
    text = (folder / "data" / "index.js").read_text(encoding="utf-8")
    return json.loads(text.removeprefix("window.SW_ATLAS_INDEX = ").removesuffix(";\n"))


def test_atlas_dashboards_list_what_steering_promotes_when_the_jacobian_is_known(
    dashes, tmp_path, monkeypatch
):
    from scopewidgets.features import logit

    monkeypatch.setenv("SCOPEWIDGETS_CACHE", str(tmp_path / "cache"))
    dashes.save_atlas(tmp_path / "before", progress=False)
    assert all(s["logits"]["steer_top"] == [] for s in _atlas_chunk(tmp_path / "before").values())
    index = _atlas_index(tmp_path / "before")
    assert index["top_title"] == "top promoted token (direct)"
    assert index["top"][2] == _atlas_chunk(tmp_path / "before")[4]["logits"]["top"][0]["token"]
    logit.steering_jacobian(dashes.scope, dashes.sae, progress=False)  # computed and cached
    dashes.save_atlas(tmp_path / "after", progress=False)
    states, view = _atlas_chunk(tmp_path / "after"), DashboardWidget(dashes, feature=4)
    assert sorted(states) == list(range(0, 24, 2))
    for feature in (4, 10):  # the same lists as the widget's, to float rounding
        view.feature = feature
        for key in ("steer_top", "steer_bottom"):
            shown, atlas = view.logits[key], states[feature]["logits"][key]
            assert [item["token"] for item in atlas] == [item["token"] for item in shown] and len(atlas) == 10
            assert [item["value"] for item in atlas] == pytest.approx([i["value"] for i in shown], rel=1e-4)
    index = _atlas_index(tmp_path / "after")  # the list's top token is the steering one too, and says so
    assert index["top_title"] == "top token by steering"
    assert index["top"][5] == states[10]["logits"]["steer_top"][0]["token"]


def test_top_examples_keep_a_wider_context_than_quantile_samples(dashes):
    dash = dashes[4]
    wide = [max(e.focus, len(e.tokens) - 1 - e.focus) for e in dash.examples]
    narrow = [max(e.focus, len(e.tokens) - 1 - e.focus) for g in dash.quantiles for e in g.examples]
    assert max(wide) > 5 and narrow and max(narrow) <= 5  # +-20 kept for top examples, +-5 for samples


def test_setting_feature_opens_it_and_a_bad_one_is_shown_inline(dashes):
    view = DashboardWidget(dashes, feature=4)
    view.feature = 6
    assert view.header["feature"] == 6 and view.error == ""
    assert view.examples["limits"][1] == dashes[6].max_activation
    view.feature = 7  # not in this pass (every other feature): the same pass is run for it
    assert view.feature == 7 and view.header["feature"] == 7 and view.error == ""
    view.feature = 6
    view.feature = 99
    assert view.feature == 6 and "[0, 24)" in view.error
    view.feature = 8
    assert view.error == "" and view.header["feature"] == 8


def test_a_pass_over_a_one_shot_iterator_opens_only_its_own_features(dashes):
    texts = iter(["The cat sat on the mat.\nThe dog sat on the log."] * 6)
    once = dashes.scope.dashboards([2, 4], corpus=texts, seq_len=24, cache=False, progress=False)
    view = DashboardWidget(once, feature=4)
    assert [s["covered"] for s in view.similar] == [s["feature"] == 2 for s in view.similar]
    view.feature = 7
    assert view.feature == 4 and "not in this pass" in view.error


def test_unknown_keywords_raise(dashes):
    with pytest.raises(TypeError, match="colour"):
        DashboardWidget(dashes, feature=4, colour="red")


def test_results_display_themselves(dashes):
    dash = dashes[10]
    data, _ = dash._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in data
    assert data["text/plain"].startswith("FeatureDashboard #10")
    assert "<script" not in data["text/html"] and "scopewidgets-static" in data["text/html"]
    assert dash.widget().feature == 10
    fallback = dashes[4]._repr_fallback_html()
    assert "fourth &lt;b&gt;feature&lt;/b&gt;" in fallback and "<b>feature" not in fallback
    whole, _ = dashes._repr_mimebundle_()
    assert whole["text/plain"].startswith("DashboardSet(12 features")


def test_export_opens_the_similar_features_offline(dashes, tmp_path):
    view = dashes.widget(4)
    state = view._export_state()
    covered = [s["feature"] for s in view.similar if s["covered"] and s["feature"] in dashes]
    assert state["offline_features"] == [4, *covered]
    replies = view._export_responses()["feature"]
    assert set(replies) == {json.dumps(f) for f in state["offline_features"]}
    assert replies[json.dumps(covered[0])]["header"]["feature"] == covered[0]
    page = dashes[4].save_html(tmp_path / "dash.html").read_text()
    assert "offline_features" in page and "<script src" not in page


def test_evidence_dashboards_send_unknown_values_as_nan():
    from scopewidgets.dashboards import Example, FeatureDashboard, Histogram
    from scopewidgets.widgets._dashboard_view import examples_of, header_of

    example = Example(["a", "b"], torch.tensor([5, 6]), torch.tensor([math.nan, 2.0]), 2.0, 0, 1, 1)
    dash = FeatureDashboard(3, 0.5, 2.0, math.nan, [example], [], Histogram(np.zeros(2), np.arange(3.0)),
                            [], [], [], None, 10, "evidence")  # fmt: skip
    assert header_of(dash)["mean_activation"] is None
    values = from_binary(examples_of(dash, bos=2)["values"])
    assert math.isnan(values[0]) and values[1] == 2.0


def test_action_buttons_call_back_with_the_shown_feature(dashes):
    view = DashboardWidget(dashes, feature=4, actions=[{"name": "steer", "label": "steer"}])
    heard = []
    view.on_action(lambda name, feature: heard.append((name, feature)))
    view._on_message(view, {"kind": "action", "name": "steer", "feature": 4}, [])
    view._on_message(view, {"kind": "other"}, [])
    assert heard == [("steer", 4)] and view.error == ""

    def fail(name, feature):
        raise ValueError(f"cannot {name} #{feature}")

    view.on_action(fail)
    view._on_message(view, {"kind": "action", "name": "steer", "feature": 6}, [])
    assert view.error == "cannot steer #6"  # shown inline, not lost
    assert view._export_state()["actions"] == []  # a saved page has no kernel to act


def test_an_opener_opens_features_outside_the_pass(dashes):
    asked, texts = [], ["The cat sat on the mat.\nThe dog sat on the log."] * 6

    def opener(feature):
        asked.append(feature)
        return dashes.scope.dashboards([feature], corpus=texts, seq_len=24, cache=False, progress=False)

    view = DashboardWidget(dashes, feature=4, opener=opener)
    assert all(item["covered"] for item in view.similar)  # every similar feature is clickable
    view.feature = 7  # not in the pass (every other feature): the opener builds one
    assert asked == [7] and view.header["feature"] == 7 and view.error == ""
    view.feature = 4  # the view holds the opener's pass now, so the opener is asked again
    assert asked == [7, 4] and view.header["feature"] == 4
    assert view._export_state()["offline_features"] == [4]  # only what the held pass covers
    view.feature = 99
    assert view.feature == 4 and "[0, 24)" in view.error


def _stats(d_sae: int) -> FeatureStats:
    density = torch.linspace(0.001, 0.5, d_sae)
    return FeatureStats(density, torch.full((d_sae,), 3.0), torch.ones(d_sae), n_tokens=1000, source="test")


def test_similar_features_carry_their_density_from_the_pass_else_the_statistics(dashes):
    dash = dashes[4]
    table = dash.similar_table()
    assert table.columns.tolist() == ["feature", "cosine", "density", "label"]
    assert table.feature.tolist() == [f for f, _ in dash.similar]  # no reserved feature in this SAE
    density = dashes.rows.stats()["density"]
    for feature, value in zip(table.feature, table.density, strict=True):
        if feature in dashes:  # the pass covers every other feature: its own density, as the header shows
            assert value == density[dashes.features.index(feature)] == dashes[feature].density
        else:
            assert math.isnan(value)  # no statistics known, none computed
    assert any(f not in dashes for f in table.feature) and any(f in dashes for f in table.feature)
    view = DashboardWidget(dashes, feature=4)
    shown = [item["density"] for item in view.similar]
    assert shown == [None if math.isnan(d) else d for d in table.density]  # JSON: None, never NaN

    stats = _stats(dashes.sae.cfg.d_sae)
    register_feature_stats(dashes.sae, stats)
    try:
        filled = dash.similar_table(stats).density.tolist()
        view = DashboardWidget(dashes, feature=4)
    finally:
        forget_feature_stats(dashes.sae)
    for feature, value, item in zip(table.feature, filled, view.similar, strict=True):
        expected = dashes[feature].density if feature in dashes else float(stats.density[feature])
        assert value == pytest.approx(expected) and item["density"] == pytest.approx(expected)
    assert "NaN" not in json.dumps(view.similar)


def test_similar_lists_leave_out_reserved_features_unless_the_dashboard_shows_one():
    model, tokenizer = tiny_gemma3()
    sae = random_sae(model, "resid_post", 1, d_sae=16, threshold=0.3, seed=3)
    sae.cfg.extra["training"] = {"reserved_direction": True}  # features 0 and 1 are reserved
    with torch.no_grad():  # make them the most similar to every other feature
        sae.W_dec[:2] = sae.W_dec[2:].sum(dim=0)
    sae.labels = {5: "fifth"}
    scope = sw.Scope(model, tokenizer, saes=[sae])
    texts = ["The cat sat on the mat."] * 4
    dashes = scope.dashboards(None, corpus=texts, seq_len=16, cache=False, progress=False)
    raw = {f: {g for g, _ in dashes[f].similar} for f in range(2, 16)}
    dash = dashes[next(f for f in raw if {0, 1} <= raw[f])]
    table = dash.similar_table()  # the raw list holds both reserved features; the table neither
    assert table.feature.tolist() == [f for f, _ in dash.similar if f not in (0, 1)]
    assert {0, 1} <= set(dash.similar_table(include_reserved=True).feature)
    view = DashboardWidget(dashes, feature=dash.feature)
    assert [item["feature"] for item in view.similar] == table.feature.tolist()
    assert all(item["density"] is not None for item in view.similar)  # a pass over every feature
    own = DashboardWidget(dashes, feature=0)  # a reserved feature's dashboard lists its reserved sibling
    assert 1 in [item["feature"] for item in own.similar]
    holder = next(f for f in raw if 5 in raw[f])  # a label is kept beside the density
    item = next(i for i in DashboardWidget(dashes, feature=holder).similar if i["feature"] == 5)
    assert item["label"] == "fifth" and item["density"] == dashes[5].density
