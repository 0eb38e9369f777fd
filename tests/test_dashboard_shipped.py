"""Evidence files of this package (`dashboards.shipped`): written from a pass over every feature, they give
back that pass's dashboards without a forward, only for the weights and the default corpus they were made
from, and stay readable as Gemma Scope evidence."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import scopewidgets as sw
from scopewidgets.core import sites
from scopewidgets.dashboards.cache import corpus_fingerprint
from scopewidgets.dashboards.evidence import Evidence, evidence_dashboards, shipped_mismatch
from scopewidgets.dashboards.shipped import write_evidence
from scopewidgets.dashboards.state import PassSettings
from scopewidgets.testing import random_sae, tiny_gemma3

pytestmark = pytest.mark.usefixtures("private_cache")

D_SAE, N_WINDOWS, ACT_CONTEXT = 24, 6, 3


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """An SAE folder holding an evidence file made over the first windows of the default corpus, and the
    pass it was made from."""
    model, tokenizer = tiny_gemma3()
    folder = tmp_path_factory.mktemp("shipped") / "sae"
    sw.save_sae(random_sae(model, "resid_post", 1, d_sae=D_SAE, threshold=0.2, seed=1), folder)
    scope = sw.Scope(model, tokenizer, saes=[sw.load_sae(folder)])
    every = sw.corpus.token_windows(tokenizer, sw.corpus.default(), 128)
    windows = every[:N_WINDOWS]
    dashes = scope.dashboards(None, corpus=windows, cache=False, progress=False)
    key = corpus_fingerprint(sw.corpus.default(), tokenizer)
    write_evidence(dashes, windows, folder / "examples.safetensors", corpus="test windows", corpus_key=key,
                   total_windows=len(every), act_context=ACT_CONTEXT)  # fmt: skip
    return model, tokenizer, folder, windows, dashes


def fresh_scope(built):
    model, tokenizer, folder, _, _ = built
    return sw.Scope(model, tokenizer, saes=[sw.load_sae(folder)])


def assert_same_examples(got, want, context_known, peak=0.0):
    """Same windows and focus values; context values known within `context_known` tokens, to 1/255 of
    the feature's maximum `peak`."""
    assert [(e.seq_index, e.position, e.focus) for e in got] == [
        (e.seq_index, e.position, e.focus) for e in want
    ]
    for a, b in zip(got, want, strict=True):
        assert a.tokens == b.tokens and torch.equal(a.token_ids, b.token_ids)
        assert a.max_value == b.max_value
        offsets = torch.arange(len(a.values)) - a.focus
        near = offsets.abs() <= context_known
        assert torch.isnan(a.values[~near]).all()
        torch.testing.assert_close(a.values[near], b.values[near], atol=peak / 510 + 1e-6, rtol=0)


def test_dashboards_come_from_the_file_and_equal_the_pass(built):
    scope, want = fresh_scope(built), built[4]
    calls = []
    handle = scope.model.register_forward_pre_hook(lambda *_: calls.append(1))
    try:
        got = scope.dashboards(None, progress=False)
    finally:
        handle.remove()
    assert not calls and "evidence file" in got.rows.source and "examples.safetensors" in got.rows.source
    assert got.features == want.features and got.rows.n_tokens == want.rows.n_tokens
    for name, values in want.rows.stats().items():
        np.testing.assert_array_equal(got.rows.stats()[name], values, err_msg=name)
    fired = 0
    for feature in want:
        a, b = got[feature], want[feature]
        assert (a.density, a.max_activation, a.mean_activation) == (
            b.density,
            b.max_activation,
            b.mean_activation,
        )
        np.testing.assert_array_equal(a.histogram.counts, b.histogram.counts)
        np.testing.assert_array_equal(a.histogram.edges, b.histogram.edges)
        assert_same_examples(a.examples, b.examples, ACT_CONTEXT, b.max_activation)
        assert len(a.quantiles) == len(b.quantiles)
        for qa, qb in zip(a.quantiles, b.quantiles, strict=True):
            assert (qa.lower, qa.upper, qa.count, qa.fraction) == (qb.lower, qb.upper, qb.count, qb.fraction)
            assert_same_examples(qa.examples, qb.examples, 0)
        assert a.top_logits == b.top_logits and a.bottom_logits == b.bottom_logits
        assert [i for i, _ in a.similar] == [i for i, _ in b.similar]
        fired += bool(b.examples)
    assert fired > D_SAE // 2  # the comparison saw real examples and groups


def test_fewer_examples_and_samples_are_the_ones_a_pass_keeps(built):
    scope, windows = fresh_scope(built), built[3]
    small = dict(n_examples=4, per_group=2, context=2, progress=False)
    got = scope.dashboards(range(8), **small)
    want = scope.dashboards(range(8), corpus=windows, cache=False, **small)
    assert "evidence file" in got.rows.source
    for feature in range(8):
        assert_same_examples(
            got[feature].examples, want[feature].examples, ACT_CONTEXT, got[feature].max_activation
        )
        for qa, qb in zip(got[feature].quantiles, want[feature].quantiles, strict=True):
            assert_same_examples(qa.examples, qb.examples, 0)


def test_one_dashboard_opens_from_the_file_and_is_remembered(built):
    scope = fresh_scope(built)
    dash = scope.dashboard(5)
    assert "evidence file" in dash.source and dash.feature == 5
    assert scope.dashboard(6).dashboards is dash.dashboards  # the whole file, read lazily, is remembered


def test_edited_weights_another_corpus_or_more_examples_are_not_served(built):
    scope = fresh_scope(built)
    sae = scope.saes[0]
    meta = _metadata(built[2])
    settings = PassSettings(seq_len=128)
    assert shipped_mismatch(scope, sae, meta, settings, 50)[0] is None
    assert "holds 20 examples" in shipped_mismatch(scope, sae, meta, PassSettings(128, n_examples=30), 50)[0]
    assert "n_bins=50" in shipped_mismatch(scope, sae, meta, settings, 20)[0]
    assert (
        "another default corpus" in shipped_mismatch(scope, sae, {**meta, "corpus_key": "x"}, settings, 50)[0]
    )
    dash = scope.dashboard(3)
    with torch.no_grad():
        sae.W_dec.mul_(2)  # an in-place edit: the file now describes other weights
    assert "other weights" in shipped_mismatch(scope, sae, meta, settings, 50)[0]
    assert evidence_dashboards(scope, sae, torch.arange(4), settings, 50) is None
    assert dash.dashboards not in sw.dashboards.api.remembered(scope, sae)


def test_the_file_reads_as_gemma_scope_evidence(built):
    model, _, folder, windows, want = built
    evidence = Evidence(folder / "examples.safetensors", D_SAE, sites.vocab_size(model))
    for feature in want:
        values, seq, pos = evidence.row(feature)
        examples = want[feature].examples
        assert values.tolist() == [e.max_value for e in examples]
        assert seq.tolist() == [e.seq_index for e in examples]
        tokens = [int(evidence.sequence(s)[p]) for s, p in zip(seq.tolist(), pos.tolist(), strict=True)]
        assert tokens == [int(windows[e.seq_index, e.position]) for e in examples]
        assert math.isclose(float(evidence.frequencies[feature]), want[feature].density, rel_tol=1e-6)


def _metadata(folder):
    from safetensors import safe_open

    with safe_open(str(folder / "examples.safetensors"), framework="pt") as handle:
        return handle.metadata()


def test_ranking_statistics_come_from_the_file_for_its_weights_only(built):
    from scopewidgets.features import _sources

    sae, want = fresh_scope(built).saes[0], built[4].rows.stats()
    stats = _sources.from_evidence(sae)
    np.testing.assert_allclose(stats.density.numpy(), want["density"], rtol=1e-6)
    np.testing.assert_array_equal(stats.max.numpy(), want["max_activation"].astype(np.float32))
    with torch.no_grad():
        sae.W_dec.mul_(2)
    assert _sources.from_evidence(sae) is None
