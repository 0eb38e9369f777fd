"""Batched materialisation: `DashboardSet.materialize()` equals building each dashboard alone; the effect
table is cached on disk; `to_dataframe()` reads it."""

from __future__ import annotations

import copy

import pytest
import torch

import scopewidgets as sw
from scopewidgets.core.effects import logit_effects, residual_directions
from scopewidgets.dashboards import cache as _dashboard_cache
from scopewidgets.dashboards.effect_table import cached_effect_table, effect_table, table_key
from scopewidgets.testing import random_sae, tiny_gemma3

pytestmark = pytest.mark.usefixtures("private_cache")


@pytest.fixture(scope="module")
def scope():
    model, tokenizer = tiny_gemma3()
    return sw.Scope(model, tokenizer, saes=[random_sae(model, "resid_post", 1, d_sae=48, threshold=0.2)])


def _tokens() -> torch.Tensor:
    tokens = torch.randint(3, 200, (12, 16), generator=torch.Generator().manual_seed(3))
    tokens[:, 0] = 2
    return tokens


def _fields(dash: sw.FeatureDashboard) -> tuple:
    examples = [(e.tokens, e.token_ids.tolist(), e.values.tolist(), e.max_value, e.seq_index, e.position,
                 e.focus) for e in dash.examples]  # fmt: skip
    groups = [(g.lower, g.upper, g.count, [e.tokens for e in g.examples]) for g in dash.quantiles]
    return (dash.density, dash.max_activation, examples, groups, dash.histogram.counts.tolist(),
            dash.top_logits, dash.bottom_logits, dash.similar)  # fmt: skip


def _assert_same(a: sw.FeatureDashboard, b: sw.FeatureDashboard) -> None:
    fa, fb = _fields(a), _fields(b)
    assert fa[:5] == fb[:5]
    for (ta, va), (tb, vb) in zip(fa[5] + fa[6], fb[5] + fb[6], strict=True):
        assert ta == tb and va == pytest.approx(vb, abs=1e-5)
    assert [f for f, _ in fa[7]] == [f for f, _ in fb[7]]
    assert [c for _, c in fa[7]] == pytest.approx([c for _, c in fb[7]], abs=1e-5)


def test_materialize_equals_one_dashboard_at_a_time(scope):
    alone = scope.dashboards(None, corpus=_tokens(), cache=False, progress=False)
    every = scope.dashboards(None, corpus=_tokens(), cache=False, progress=False).materialize(progress=False)
    assert len(every._memo) == len(every) == 48
    for feature in alone.features:
        _assert_same(alone[feature], every[feature])


def test_effect_table_rows_equal_the_per_feature_formula(scope):
    sae, features = scope.saes[0], torch.tensor([0, 5, 47])
    table = effect_table(scope.model, sae, features, k=4)
    top, top_ids, _, bottom_ids = logit_effects(
        scope.model, residual_directions(scope.model, sae, features), k=4
    )
    assert torch.equal(table.top_ids, top_ids) and torch.equal(table.bottom_ids, bottom_ids)
    torch.testing.assert_close(table.top_values, top)
    assert table.row(5) == 1 and table.row(6) is None


def test_effect_table_is_cached_on_disk_and_a_damaged_entry_is_rebuilt(scope, monkeypatch):
    sae, features = scope.saes[0], torch.arange(48)
    first = cached_effect_table(scope.model, sae, features, k=3)
    path = _dashboard_cache.cache_folder() / f"{table_key(scope.model, sae, features, 3)}.safetensors"
    assert path.exists()
    calls = []
    with monkeypatch.context() as patch:
        patch.setattr("scopewidgets.dashboards.effect_table.effect_table", lambda *a: calls.append(a))
        again = cached_effect_table(scope.model, sae, features, k=3)
    assert not calls and torch.equal(again.top_ids, first.top_ids)
    path.write_bytes(b"not a safetensors file")
    with pytest.warns(UserWarning, match="damaged"):
        rebuilt = cached_effect_table(scope.model, sae, features, k=3)
    assert torch.equal(rebuilt.top_ids, first.top_ids)


def test_effect_table_cache_sees_an_edit_of_the_final_norm(scope):
    from scopewidgets.core import sites

    sae, features = scope.saes[0], torch.arange(8)
    model = copy.deepcopy(scope.model)
    before = cached_effect_table(model, sae, features, k=3)
    with torch.no_grad():
        sites.final_norm(model).weight.mul_(-1.0)  # what the logits read, after every layer
    after = cached_effect_table(model, sae, features, k=3)
    assert torch.equal(after.top_ids, effect_table(model, sae, features, 3).top_ids)
    assert not torch.equal(after.top_ids, before.top_ids)


def test_to_dataframe_top_logit_is_the_dashboards_first(scope):
    dashes = scope.dashboards(range(10), corpus=_tokens(), cache=False, progress=False)
    frame = dashes.to_dataframe()
    for feature in (0, 9):
        assert frame.loc[feature, "top_logit"] == dashes[feature].top_logits[0][0]
        assert frame.loc[feature, "bottom_logit_value"] == pytest.approx(dashes[feature].bottom_logits[0][1])
