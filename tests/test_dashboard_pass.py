"""The one-pass dashboard engine equals a brute-force computation over the same corpus."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest
import torch
from dashboard_reference import (
    dense_activations,
    histogram_counts,
    logit_effects,
    quantile_sample,
    similar,
    stats,
    top_examples,
)

import scopewidgets as sw
from scopewidgets.core.corpus import token_windows
from scopewidgets.dashboards.state import PassSettings
from scopewidgets.testing import random_sae, tiny_gemma3

SEQ_LEN = 24
SETTINGS = {
    "seq_len": SEQ_LEN,
    "batch_size": 5,
    "n_examples": 6,
    "context": 3,
    "n_quantile_groups": 4,
    "per_group": 3,
    "n_bins": 12,
    "progress": False,
}
TOP_CONTEXT = PassSettings(seq_len=SEQ_LEN).top_context  # top examples keep +-20 (quantile samples +-3)


def synthetic_texts(n: int = 30, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    words = [
        "the",
        "cat",
        "sat",
        "on",
        "a",
        "mat",
        "Paris",
        "tower",
        "1789",
        "def",
        "f(x):",
        "return",
        "é",
        "!",
    ]
    return [" ".join(rng.choice(words) for _ in range(rng.randint(3, 25))) for _ in range(n)]


pytestmark = pytest.mark.usefixtures("private_cache")


@pytest.fixture(scope="module")
def scope():
    model, tokenizer = tiny_gemma3()
    return sw.Scope(
        model, tokenizer, saes=[random_sae(model, "resid_post", 1, d_sae=40, threshold=0.4, seed=3)]
    )


@pytest.fixture(scope="module")
def texts():
    return synthetic_texts()


@pytest.fixture(scope="module")
def dashes(scope, texts):
    return scope.dashboards(None, corpus=texts, cache=False, **SETTINGS)


@pytest.fixture(scope="module")
def reference(scope, texts):
    tokens = token_windows(scope.tokenizer, texts, SEQ_LEN)
    return tokens, dense_activations(scope, scope.saes[0], tokens)


def check_examples(got, expected, scope):
    assert [e.seq_index for e in got] == [e["seq"] for e in expected]
    for example, want in zip(got, expected, strict=True):
        assert example.position == want["pos"] and example.focus == want["focus"]
        assert example.token_ids.tolist() == want["ids"]
        assert example.tokens == scope.token_strings(want["ids"])
        assert example.max_value == pytest.approx(want["value"], rel=0, abs=0)
        torch.testing.assert_close(example.values, want["values"], rtol=0, atol=0)


def test_every_feature_matches_brute_force(scope, dashes, reference):
    tokens, acts = reference
    bos = scope.tokenizer.bos_token_id
    assert dashes.features == list(range(40))
    fired = 0
    for feature in dashes:
        dash, want = dashes[feature], stats(acts, tokens, bos, feature)
        assert dash.n_tokens == want["n_tokens"]
        assert dash.density == pytest.approx(want["density"], abs=1e-12)
        assert dash.max_activation == want["max"]
        assert dash.mean_activation == pytest.approx(want["mean"], rel=1e-9)
        check_examples(dash.examples, top_examples(acts, tokens, feature, 6, TOP_CONTEXT), scope)
        counts, edges = dash.histogram
        assert len(counts) == 12 and np.allclose(np.diff(edges), edges[1] - edges[0])
        if want["values"].numel():
            fired += 1
            assert edges[0] == 0 and want["max"] < edges[-1] <= want["max"] * 1.1
            np.testing.assert_array_equal(counts, histogram_counts(want["values"], edges))
            assert counts.sum() == want["values"].numel()
    assert fired > 30


def test_quantile_groups_are_uniform_samples_of_equal_ranges(scope, dashes, reference):
    tokens, acts = reference
    bos = scope.tokenizer.bos_token_id
    for feature in dashes:
        dash = dashes[feature]
        if dash.max_activation == 0:
            assert dash.quantiles == []
            continue
        groups = dash.quantiles
        assert len(groups) == 4 and groups[0].lower == 0 and groups[-1].upper > dash.max_activation
        widths = [g.upper - g.lower for g in groups]
        assert max(widths) / min(widths) <= 1.5
        assert sum(g.count for g in groups) == round(dash.density * dash.n_tokens)
        for lower, group in zip([0.0] + [g.upper for g in groups[:-1]], groups, strict=True):
            assert group.lower == lower
            count, sample = quantile_sample(acts, tokens, bos, feature, group.lower, group.upper, 3, SEQ_LEN)
            assert group.count == count
            assert sorted((e.seq_index, e.position) for e in group.examples) == sample
            values = [e.max_value for e in group.examples]
            assert values == sorted(values, reverse=True)
            assert all(group.lower <= v < group.upper for v in values)
            for example in group.examples:
                assert example.max_value == acts[example.seq_index, example.position, feature]


def test_logit_effects_and_similar_features_match_brute_force(scope, dashes):
    sae = scope.saes[0]
    for feature in (0, 7, 39):
        dash = dashes[feature]
        top, bottom = logit_effects(scope.model, sae, feature)
        assert [t for t, _ in dash.top_logits] == scope.token_strings(top)
        assert [t for t, _ in dash.bottom_logits] == scope.token_strings(bottom)
        values = [v for _, v in dash.top_logits]
        assert values == sorted(values, reverse=True)
        assert [f for f, _ in dash.similar] == similar(sae, feature)


def test_merge_of_two_halves_equals_one_pass(scope, texts, dashes):
    halves = [
        scope.dashboards(None, corpus=texts, cache=False, shard=(rank, 2), **SETTINGS) for rank in (0, 1)
    ]
    merged = halves[0].merge(halves[1])
    assert merged.state.n_tokens == dashes.state.n_tokens
    full, got = dashes.state.tensors(), merged.state.tensors()
    for name, tensor in full.items():
        if name == "total":
            torch.testing.assert_close(got[name], tensor, rtol=1e-12, atol=0)
        else:
            assert torch.equal(got[name], tensor), name


def test_contiguous_halves_and_batch_size_do_not_matter(scope, texts, dashes):
    from scopewidgets.dashboards.encode import encode_batch, site_activations
    from scopewidgets.dashboards.state import DashboardState

    tokens = token_windows(scope.tokenizer, texts, SEQ_LEN)
    sae, half = scope.saes[0], len(tokens) // 2
    parts = []
    for rows, batch in ((range(0, half), 3), (range(half, len(tokens)), 7)):
        state = DashboardState.empty(torch.arange(40), dashes.state.settings)
        for start in range(rows.start, rows.stop, batch):
            seq = torch.arange(start, min(start + batch, rows.stop))
            x = site_activations(scope.model, sae, tokens[seq])
            state.update(encode_batch(sae, x, tokens[seq], seq, None, scope.tokenizer.bos_token_id))
        parts.append(state)
    merged = parts[1].merge(parts[0]).tensors()
    for name, tensor in dashes.state.tensors().items():
        if name != "total":
            assert torch.equal(merged[name], tensor), name


def test_a_subset_of_features_gives_the_same_dashboards(scope, texts, dashes):
    subset = scope.dashboards([31, 4, 4], corpus=texts, cache=False, **SETTINGS)
    assert subset.features == [4, 31] and 5 not in subset
    for feature in (4, 31):
        a, b = subset[feature], dashes[feature]
        assert (a.density, a.max_activation, a.mean_activation) == (
            b.density,
            b.max_activation,
            b.mean_activation,
        )
        assert [(e.seq_index, e.position) for e in a.examples] == [
            (e.seq_index, e.position) for e in b.examples
        ]
        assert [[(e.seq_index, e.position) for e in g.examples] for g in a.quantiles] == [
            [(e.seq_index, e.position) for e in g.examples] for g in b.quantiles
        ]
        np.testing.assert_array_equal(a.histogram.counts, b.histogram.counts)


@pytest.mark.parametrize("architecture", ["standard", "topk"])
def test_other_architectures_match_brute_force(scope, texts, architecture):
    sae = random_sae(scope.model, "resid_post", 2, d_sae=24, architecture=architecture, seed=1)
    dashes = scope.dashboards([0, 5, 23], corpus=texts, sae=sae, cache=False, **SETTINGS)
    tokens = token_windows(scope.tokenizer, texts, SEQ_LEN)
    acts = dense_activations(scope, sae, tokens)
    for feature in (0, 5, 23):
        want = stats(acts, tokens, scope.tokenizer.bos_token_id, feature)
        assert dashes[feature].max_activation == want["max"]
        assert dashes[feature].density == pytest.approx(want["density"], abs=1e-12)
        check_examples(dashes[feature].examples, top_examples(acts, tokens, feature, 6, TOP_CONTEXT), scope)


class DatasetLike:
    """What the pass reads of a Hugging Face `datasets.Dataset`: column names, rows as dicts, a fingerprint."""

    _fingerprint = "fake-dataset-1"

    def __init__(self, texts):
        self.column_names = ["id", "text"]
        self.rows = [{"id": i, "text": t} for i, t in enumerate(texts)]

    def __iter__(self):
        return iter(self.rows)


def test_corpus_kinds_give_the_same_pass(scope, texts, dashes):
    for corpus in (pd.Series(texts), (t for t in texts), tuple(texts), DatasetLike(texts)):
        other = scope.dashboards([2, 9], corpus=corpus, cache=False, **SETTINGS)
        for feature in (2, 9):
            assert [(e.seq_index, e.position) for e in other[feature].examples] == [
                (e.seq_index, e.position) for e in dashes[feature].examples
            ]


def test_dataframes_and_plot(dashes):
    frame = dashes.to_dataframe()
    assert list(frame["feature"]) == list(range(40))
    assert {"density", "max_activation", "mean_activation", "n_active", "top_logit", "label"} <= set(
        frame.columns
    )
    assert frame.loc[7, "top_logit"] == dashes[7].top_logits[0][0]
    dash = next(dashes[f] for f in dashes if dashes[f].examples)
    table = dash.to_dataframe()
    assert list(table.columns) == ["group", "max_value", "seq_index", "position", "text"]
    assert (table["group"] == "top").sum() == len(dash.examples)
    assert "[[" in table.loc[0, "text"]
    import matplotlib

    matplotlib.use("Agg")
    ax = dash.plot()
    assert len(ax.patches) == len(dash.histogram.counts)


def test_progress_bar_counts_tokens(scope, texts, capsys):
    scope.dashboards([1], corpus=texts[:5], cache=False, **{**SETTINGS, "progress": True})
    err = capsys.readouterr().err
    assert "tok" in err and "tok/s" in err.replace("it/s", "")


@pytest.mark.parametrize(
    ("rows", "width", "dtype"),
    [(0, 97, torch.float32), (1, 97, torch.float32), (63, 97, torch.float32), (65, 97, torch.float32),
     (200, 97, torch.float32), (65, 4096, torch.float32), (130, 8192, torch.float32),
     (130, 8192, torch.bfloat16), (70, 8200, torch.float32)],
)  # fmt: skip
def test_blocked_threshold_search_equals_one_nonzero(rows, width, dtype):
    """Plain blocks (97 or 8,200 columns) and lane maxima (4,096 and 8,192): the same pairs as one
    `nonzero`, in the same order, ties and negative bounds included."""
    from scopewidgets.dashboards.encode import _above

    gen = torch.Generator().manual_seed(rows + width)
    scores = torch.randn(rows, width, generator=gen).to(dtype)
    bound = torch.randn(width, generator=gen) + 1.5
    bound[::7] = -0.5  # negative bounds (a large encoder bias) fire on most rows
    if rows:
        bound[:50] = scores[0, :50].float()  # equal to the bound: not above it
        scores[1:, 5] = torch.inf
    want = torch.nonzero(scores > bound, as_tuple=True)
    got = _above(scores, bound, rows_per_chunk=64)
    assert all(torch.equal(g, w) for g, w in zip(got, want, strict=True))
