"""Feature statistics and the specific-first ranking (issue 10): the documented score against a brute force
written here, reserved features hidden and shown, logit search among live features, where statistics come
from and when they are forgotten."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

import scopewidgets as sw
from scopewidgets.features import FeatureStats, feature_stats, register_feature_stats
from scopewidgets.features.logit import token_forms
from scopewidgets.testing import random_sae

pytestmark = pytest.mark.usefixtures("private_cache", "one_torch_thread")

TEXT = "the cat sat on the mat"
D_SAE = 48


def _stats(seed: int = 1, dead: tuple[int, ...] = ()) -> FeatureStats:
    """Made-up statistics with spread densities (some below the 0.001 floor) and means."""
    g = torch.Generator().manual_seed(seed)
    density = 10 ** (-4 * torch.rand(D_SAE, generator=g))  # 1e-4 .. 1
    density[list(dead)] = 0.0
    mean = 0.2 + 2 * torch.rand(D_SAE, generator=g)
    mean[list(dead)] = 0.0
    return FeatureStats(density, mean * 3, mean, n_tokens=50_000, source="test")


def _reserved_sae(model) -> sw.SAE:
    """A random SAE whose features 0 and 1 are reserved and fire strongly on every token (like the demo's)."""
    sae = random_sae(model, "resid_post", 1, D_SAE, threshold=0.3)
    sae.cfg.extra["training"] = {"reserved_direction": True}
    with torch.no_grad():
        sae.b_enc[:2] = 50.0
    return sae


@pytest.fixture
def scope(gemma3):
    model, tok = gemma3
    scope = sw.Scope(model, tok, saes=[_reserved_sae(model)])
    register_feature_stats(scope.sae(), _stats())
    return scope


def brute_force_order(peak: torch.Tensor, stats: FeatureStats, hidden: set[int]) -> list[int]:
    """The documented score, computed one feature at a time in plain Python."""
    means = [float(m) for m in stats.mean if m > 0]
    median = sorted(means)[(len(means) - 1) // 2]
    floor = max(0.001, 1 / stats.n_tokens)
    scored = []
    for f in range(len(peak)):
        a = float(peak[f])
        if a <= 0 or f in hidden:
            continue
        typical = float(stats.mean[f]) if stats.mean[f] > 0 else median
        score = (a / typical) ** 3 * math.log(1 / max(float(stats.density[f]), floor))
        scored.append((-score, f))
    return [f for _, f in sorted(scored)]


def test_top_features_follow_the_documented_score(scope):
    acts = scope.activations(TEXT)
    peak = acts.values.max(0).values
    expected = brute_force_order(peak, scope.feature_stats(), hidden={0, 1})
    table = acts.top_features(10)
    assert table.feature.tolist() == expected[:10]
    assert table.score.is_monotonic_decreasing
    assert table.density.tolist() == pytest.approx(scope.feature_stats().density[expected[:10]].tolist())
    assert table.max_activation.tolist() == pytest.approx(peak[expected[:10]].tolist())
    where = acts.values[:, expected[:10]].argmax(dim=0).tolist()
    assert table.top_token.tolist() == [acts.tokens[i] for i in where]
    assert table.label.tolist() == [""] * len(table)  # never None or NaN
    raw = acts.top_features(10, rank="activation").feature.tolist()
    assert raw == [f for f in peak.argsort(descending=True).tolist() if f not in (0, 1)][:10]
    assert raw != table.feature.tolist()  # the made-up densities reorder them


def test_search_at_a_token_follows_the_documented_score(scope):
    acts = scope.activations(TEXT)
    rows = [i for i, t in enumerate(acts.tokens) if t == "t"]
    peak = acts.values[rows].max(0).values
    found = scope.search(TEXT, token="t", k=6)
    assert found.features == brute_force_order(peak, scope.feature_stats(), hidden={0, 1})[:6]
    assert set(found.table.columns) >= {"feature", "score", "density", "label", "token"}
    assert found.table.activation.tolist() == pytest.approx(peak[found.features].tolist())
    where = [rows[i] for i in acts.values[rows][:, found.features].argmax(dim=0).tolist()]
    assert found.table.position.tolist() == where


def test_reserved_features_are_hidden_by_default_and_shown_on_request(scope):
    acts = scope.activations(TEXT)
    assert set(acts.values[1:, :2].flatten().tolist()) != {0.0}  # they do fire, strongly
    for rank in ("specific", "activation"):
        assert not {0, 1} & set(acts.top_features(D_SAE, rank=rank).feature)
        assert not {0, 1} & set(scope.search(TEXT, k=D_SAE, rank=rank).features)
        assert not {0, 1} & set(scope.compare(TEXT, "a dog ran", k=D_SAE, rank=rank).table.feature)
    assert acts.top_features(2, rank="activation", include_reserved=True).feature.tolist() == [0, 1]
    assert {0, 1} <= set(scope.search(TEXT, k=D_SAE, include_reserved=True).features)


def test_token_view_hides_reserved_until_toggled(scope):
    from scopewidgets.widgets._serialize import from_binary
    from scopewidgets.widgets._tokens import unpack_entries

    view = scope.activations(TEXT).widget(k=8)
    listed = lambda: set(unpack_entries({n: getattr(view, n) for n in ("feature_table", "topk_features",  # noqa: E731
                                                                     "topk_values", "topk_scale", "topk_counts")})[0])  # fmt: skip
    side = lambda: [item["feature"] for item in view.top_features]  # noqa: E731
    assert view.reserved == [0, 1] and not view.include_reserved
    assert not {0, 1} & (listed() | set(side()))
    assert not {0, 1} & set(from_binary(view.color_features).tolist())
    assert all(item["density"] > 0 for item in view.top_features)
    assert side() == scope.activations(TEXT).top_features(50).feature.tolist()
    view.include_reserved = True  # what the toggle sets
    assert {0, 1} <= listed() and set(from_binary(view.color_features)[1:].tolist()) <= {0, 1}
    view.include_reserved = False
    assert not {0, 1} & (listed() | set(side()))


def test_logit_search_returns_live_features_only(gemma3):
    model, tok = gemma3
    scope = sw.Scope(model, tok, saes=[random_sae(model, "resid_post", 1, D_SAE)])
    dead = tuple(range(0, D_SAE, 2))
    register_feature_stats(scope.sae(), _stats(dead=dead))
    found = scope.search(logit="m", k=D_SAE)
    assert len(found.table) == D_SAE - len(dead)
    assert (found.table.density > 0).all() and not set(dead) & set(found.features)
    assert found.table.score.is_monotonic_decreasing
    assert "token 'm'" in found.query


def _stub_scope(vocab: dict[str, list[int]]) -> SimpleNamespace:
    names = {ids[0]: text for text, ids in vocab.items() if len(ids) == 1}
    return SimpleNamespace(
        tokenizer=lambda text, add_special_tokens=False: {"input_ids": vocab[text]},
        token_strings=lambda ids: [names.get(i, f"<{i}>") for i in ids],
        model=None,
    )


def test_logit_token_forms_handle_the_leading_space():
    both = _stub_scope({"Paris": [5], " Paris": [9]})
    assert token_forms(both, "Paris") == ([5, 9], "tokens 'Paris' and ' Paris'")
    assert token_forms(both, " Paris")[0] == [9]
    spaced = _stub_scope({"Paris": [1, 2], " Paris": [9]})
    ids, said = token_forms(spaced, "Paris")
    assert ids == [9] and "' Paris'" in said and "('Paris' is 2 tokens)" in said
    split = _stub_scope({"Parisian": [1, 2, 3], " Parisian": [4, 3]})
    with pytest.raises(ValueError, match=r"'Parisian' is 3 tokens .*' Parisian' is 2 tokens"):
        token_forms(split, "Parisian")


def test_statistics_come_from_the_sae_folder_then_a_pass_after_an_edit(gemma3, tmp_path):
    model, tok = gemma3
    folder = sw.save_sae(random_sae(model, "resid_post", 1, D_SAE, threshold=0.3), tmp_path / "sae")
    shipped = _stats(seed=3)
    shipped.save(folder / "feature_stats.safetensors")
    scope = sw.Scope(model, tok, saes=[sw.load_sae(folder)])
    first = scope.feature_stats()
    assert first.source.endswith("feature_stats.safetensors") and first.n_tokens == 50_000
    assert torch.equal(first.density, shipped.density)
    assert scope.feature_stats() is first  # loaded once
    with torch.no_grad():
        scope.sae().W_enc.mul_(1.5)  # the shipped statistics no longer describe these weights
    second = scope.feature_stats(progress=False)
    assert second.source.startswith("a pass over") and second.n_tokens > 0
    fresh = sw.features._sources.run_stats_pass(scope, scope.sae(), n_windows=8, progress=False)
    assert torch.allclose(second.density, fresh.density) and torch.allclose(second.mean, fresh.mean)


def test_a_pass_is_cached_on_disk(gemma3, private_cache):
    model, tok = gemma3
    scope = sw.Scope(model, tok, saes=[random_sae(model, "resid_post", 1, D_SAE, threshold=0.3)])
    computed = feature_stats(scope.sae(), scope, progress=False)
    assert computed.source.startswith("a pass over")
    assert computed.density.max() <= 1 and (computed.mean >= 0).all()
    sw.features.forget_feature_stats(scope.sae())
    cached = feature_stats(scope.sae(), scope, progress=False)
    assert str(private_cache) in cached.source and torch.equal(cached.density, computed.density)
    sw.features.forget_feature_stats(scope.sae())
    stored = feature_stats(scope.sae(), scope, compute=False)  # no pass may run, but the disk cache counts
    assert torch.equal(stored.density, computed.density)
    other = sw.Scope(model, tok, saes=[random_sae(model, "resid_post", 1, D_SAE, threshold=0.3, seed=9)])
    with pytest.raises(ValueError, match="No feature statistics"):
        feature_stats(other.sae(), other, compute=False)
    (entry,) = (private_cache / "feature_stats").glob("*.safetensors")
    entry.write_bytes(b"not a safetensors file")
    sw.features.forget_feature_stats(scope.sae())
    with pytest.warns(UserWarning, match="is damaged"):
        rebuilt = feature_stats(scope.sae(), scope, progress=False)  # deleted, then a pass stores it again
    assert torch.equal(rebuilt.density, computed.density) and entry.stat().st_size > 100


def test_long_table_carries_each_rows_density_and_label(scope):
    scope.sae().labels = {5: "five"}
    acts = scope.activations(TEXT)
    frame = acts.to_dataframe()
    assert list(frame.columns) == ["position", "token", "feature", "value", "density", "label"]
    assert len(frame) == int((acts.values > 0).sum())
    density = scope.feature_stats().density
    assert frame.density.tolist() == pytest.approx(density[frame.feature.tolist()].double().tolist())
    assert frame.label.tolist() == ["five" if f == 5 else "" for f in frame.feature]
    assert frame.value.tolist() == pytest.approx(acts.values[frame.position, frame.feature].tolist())


def test_long_table_never_starts_a_pass_for_the_density(gemma3, monkeypatch):
    from scopewidgets.features import _sources

    model, tok = gemma3
    scope = sw.Scope(model, tok, saes=[random_sae(model, "resid_post", 1, D_SAE, threshold=0.3, seed=7)])
    monkeypatch.setattr(_sources, "from_pass", lambda *a, **k: pytest.fail("a corpus pass was started"))
    acts = scope.activations(TEXT)  # an SAE with no statistics anywhere, ranked by nothing yet
    frame = acts.to_dataframe()
    assert len(frame) == int((acts.values > 0).sum()) > 0
    assert frame.density.isna().all() and (frame.label == "").all()  # unknown: NaN; no label: "", not NaN


def test_without_a_scope_or_statistics_ranking_falls_back_with_a_warning(gemma3):
    model, _ = gemma3
    sae = random_sae(model, "resid_post", 1, D_SAE, threshold=0.3)
    values = torch.rand(3, D_SAE)
    values[0] = 0
    acts = sw.Activations(
        tokens=["<bos>", "a", "b"], token_ids=torch.tensor([2, 3, 4]), values=values, sae=sae
    )
    with pytest.warns(UserWarning, match="ranked by activation"):
        table = acts.top_features(3)
    assert table.feature.tolist() == values.max(0).values.topk(3).indices.tolist()
    assert table.density.isna().all()
    with pytest.raises(ValueError, match="rank must be one of"):
        acts.top_features(3, rank="popular")


def test_statistics_come_from_a_dashboard_pass_over_every_feature(gemma3):
    model, tok = gemma3
    scope = sw.Scope(model, tok, saes=[random_sae(model, "resid_post", 1, D_SAE, threshold=0.3)])
    dashes = scope.dashboards(
        None, corpus=["the cat sat on the mat", "a dog ran"] * 4, seq_len=16, cache=False
    )
    stats = scope.feature_stats()
    assert stats.source == "a dashboard pass over every feature"
    assert stats.density.tolist() == pytest.approx([dashes[f].density for f in range(D_SAE)])
    assert stats.max.tolist() == pytest.approx([dashes[f].max_activation for f in range(D_SAE)])


# ------------------------------------------------------------------ statistics at a text's first token
def _with_starts(stats: FeatureStats, seed: int = 5) -> FeatureStats:
    """`stats` with made-up statistics at text starts that differ from the corpus ones."""
    g = torch.Generator().manual_seed(seed)
    density = 10 ** (-4 * torch.rand(D_SAE, generator=g))
    mean = 0.2 + 2 * torch.rand(D_SAE, generator=g)
    mean[::7] = 0.0  # never seen firing at a start: the feature's usual typical level is used
    return stats.with_starts(density, mean, n_starts=2_000)


def brute_force_text_order(values: torch.Tensor, starts: list[int], stats: FeatureStats, hidden: set[int]):
    """The documented score at every token (a start row against the start statistics), best per feature,
    in plain Python."""
    means = [float(m) for m in stats.mean if m > 0]
    median = sorted(means)[(len(means) - 1) // 2]
    best = {}
    for row in range(values.shape[0]):
        at_start = row in starts
        density = stats.start_density if at_start else stats.density
        floor = max(0.001, 1 / (stats.n_starts if at_start else stats.n_tokens))
        for f in range(values.shape[1]):
            a = float(values[row, f])
            if a <= 0 or f in hidden:
                continue
            usual = float(stats.mean[f]) if stats.mean[f] > 0 else median
            typical = float(stats.start_mean[f]) if at_start and stats.start_mean[f] > 0 else usual
            score = (a / typical) ** 3 * math.log(1 / max(float(density[f]), floor))
            best[f] = max(best.get(f, -1.0), score)
    return [f for f, _ in sorted(best.items(), key=lambda item: (-item[1], item[0]))]


@pytest.fixture
def start_scope(gemma3):
    model, tok = gemma3
    scope = sw.Scope(model, tok, saes=[_reserved_sae(model)])
    register_feature_stats(scope.sae(), _with_starts(_stats()))
    return scope


def test_a_texts_first_token_is_scored_against_the_statistics_at_text_starts(start_scope):
    scope, stats = start_scope, start_scope.feature_stats()
    acts = scope.activations(TEXT)
    assert acts.start_rows == [1]
    expected = brute_force_text_order(acts.values, [1], stats, hidden={0, 1})
    plain = brute_force_order(acts.values.max(0).values, stats, hidden={0, 1})
    assert expected != plain  # the start statistics change the order here
    assert acts.top_features(12).feature.tolist() == expected[:12]
    assert scope.search(TEXT, k=12).features == expected[:12]
    rows = [i for i, t in enumerate(acts.tokens) if t == "t"]  # the first token and later ones
    assert 1 in rows and len(rows) > 1
    assert (
        scope.search(TEXT, token="t", k=8).features
        == brute_force_text_order(acts.values[rows], [0], stats, hidden={0, 1})[:8]
    )
    later = [r for r in rows if r != 1]  # a token inside the text keeps the corpus statistics
    mid = brute_force_order(acts.values[later].max(0).values, stats, hidden={0, 1})
    assert brute_force_text_order(acts.values[later], [], stats, hidden={0, 1}) == mid


def test_the_token_view_and_compare_use_the_statistics_at_text_starts(start_scope):
    from scopewidgets.features import ranking
    from scopewidgets.widgets._tokens import unpack_entries

    scope, stats = start_scope, start_scope.feature_stats()
    acts, other = scope.activations(TEXT), scope.activations("a dog ran home")
    view = acts.widget(k=5, n_features=12)
    assert [item["feature"] for item in view.top_features] == acts.top_features(12).feature.tolist()
    features, _, counts = unpack_entries({n: getattr(view, n) for n in ("feature_table", "topk_features",
                                                                      "topk_values", "topk_scale", "topk_counts")})  # fmt: skip
    first = features[counts[0] : counts[0] + counts[1]].tolist()  # the text's first token (row 1)
    assert first == brute_force_text_order(acts.values[1:2], [0], stats, hidden={0, 1})[:5]
    table = scope.compare(TEXT, "a dog ran home", k=D_SAE).table
    text_score = lambda a: ranking.text_scores(a.values, stats, "specific", a.start_rows)  # noqa: E731
    difference = text_score(other) - text_score(acts)
    assert table.score.tolist() == pytest.approx(difference[table.feature.tolist()].tolist())
    several = scope.activations([TEXT, "a dog ran home"])
    both = brute_force_text_order(torch.cat([acts.values, other.values]), [1, len(acts) + 1], stats, {0, 1})
    assert several.top_features(10).feature.tolist() == both[:10]


def test_start_statistics_equal_a_brute_force_over_the_openings(gemma3):
    from scopewidgets.features.starts import openings, start_stats

    model, tok = gemma3
    scope = sw.Scope(model, tok, saes=[random_sae(model, "resid_post", 1, D_SAE, threshold=0.3)])
    texts = ["The cat sat. The dog ran!\nA bird sang", "Then it rained. It was cold? The end."]
    counts = openings(tok, texts)
    pieces = ["The cat sat.", "The dog ran!", "A bird sang", "Then it rained.", "It was cold?", "The end."]
    assert sum(counts.values()) == len(pieces)
    density, mean, n_starts = start_stats(scope, scope.sae(), texts, progress=False)
    assert n_starts == len(pieces)
    rows = torch.stack([scope.activations(p).values[1] for p in pieces]).clamp_min(0)  # whole texts
    fires = (rows > 0).float()
    assert torch.allclose(density, fires.mean(0))
    assert torch.allclose(mean, rows.sum(0) / fires.sum(0).clamp_min(1), rtol=1e-4, atol=1e-4)
    _, _, kept = start_stats(scope, scope.sae(), texts, max_openings=1, progress=False)
    assert kept == max(counts.values())  # only the most frequent opening token
    with pytest.raises(ValueError, match="No sentence or line starts"):
        start_stats(scope, scope.sae(), ["a"], progress=False)


def test_start_statistics_are_saved_loaded_and_checked(tmp_path):
    stats = _with_starts(_stats())
    loaded = FeatureStats.load(stats.save(tmp_path / "s.safetensors"), D_SAE)
    assert loaded.has_starts and loaded.n_starts == 2_000
    assert torch.equal(loaded.start_density, stats.start_density) and torch.equal(
        loaded.start_mean, stats.start_mean
    )
    assert not FeatureStats.load(_stats().save(tmp_path / "plain.safetensors")).has_starts
    with pytest.raises(ValueError, match="together"):
        FeatureStats(stats.density, stats.max, stats.mean, 10, "x", start_density=stats.density)
    with pytest.raises(ValueError, match=r"start_density must be \[48\]"):
        FeatureStats(stats.density, stats.max, stats.mean, 10, "x", start_density=torch.ones(3),
                     start_mean=torch.ones(3), n_starts=5)  # fmt: skip
    with pytest.raises(ValueError, match="fractions"):
        stats.with_starts(torch.full((D_SAE,), 2.0), stats.mean, 5)
    with pytest.raises(ValueError, match="n_starts"):
        stats.with_starts(stats.density, stats.mean, 0)


def test_a_shipped_file_without_start_statistics_gets_them_once(gemma3, tmp_path, private_cache):
    from scopewidgets.features import _sources
    from scopewidgets.features.starts import start_stats

    model, tok = gemma3
    folder = sw.save_sae(random_sae(model, "resid_post", 1, D_SAE, threshold=0.3), tmp_path / "sae")
    _stats(seed=3).save(folder / "feature_stats.safetensors")
    scope = sw.Scope(model, tok, saes=[sw.load_sae(folder)])
    assert not feature_stats(scope.sae(), scope, compute=False).has_starts  # nothing computed, nothing cached
    sw.features.forget_feature_stats(scope.sae())
    found = scope.feature_stats(progress=False)
    assert found.source.endswith("feature_stats.safetensors") and found.has_starts
    density, mean, n_starts = start_stats(scope, scope.sae(), progress=False)
    assert torch.equal(found.start_density, density) and found.n_starts == n_starts
    path = _sources.starts_path(scope, scope.sae())
    assert path.is_file()
    sw.features.forget_feature_stats(scope.sae())
    assert torch.equal(feature_stats(scope.sae(), scope, compute=False).start_mean, mean)  # from the disk
    path.write_bytes(b"damaged")
    sw.features.forget_feature_stats(scope.sae())
    with pytest.warns(UserWarning, match="is damaged"):
        assert feature_stats(scope.sae(), scope, progress=False).has_starts
    computed = sw.features._sources.run_stats_pass(scope, scope.sae(), n_windows=4, progress=False)
    assert computed.has_starts and torch.equal(computed.start_density, density)  # the pass brings its own


def test_text_scores_equal_the_best_token_score_per_feature():
    from scopewidgets.features import ranking

    g = torch.Generator().manual_seed(0)
    stats = _with_starts(_stats())
    for n, starts in [(5, [1]), (1, [0]), (7, [1, 4]), (6, []), (3, [0, 1, 2])]:
        values = (torch.randn(n, D_SAE, generator=g) * 3).clamp_min(0)
        for rank in ("specific", "activation"):
            best = ranking.token_scores(values, stats, rank, starts).max(dim=0).values
            assert torch.allclose(ranking.text_scores(values, stats, rank, starts), best)
            peak, score = ranking.peak_and_scores(values, stats, rank, starts)
            assert torch.equal(peak, values.max(dim=0).values) and torch.allclose(score, best)
