"""The dashboard pass on the real Gemma 3 270M (slow lane): its BOS residual is ~10x larger than other
tokens', so a BOS leak would dominate every statistic."""

from __future__ import annotations

import inspect

import pytest
import torch
from dashboard_reference import dense_activations, stats, top_examples

import scopewidgets as sw
from scopewidgets.core.corpus import token_windows
from scopewidgets.core.hooks import run_truncated
from scopewidgets.testing import random_sae


@pytest.mark.slow
def test_real_gemma_pass_matches_brute_force(tmp_path, monkeypatch):
    monkeypatch.setenv("SCOPEWIDGETS_CACHE", str(tmp_path))
    from scopewidgets.demo import demo_model

    model, tokenizer = demo_model()
    sae = random_sae(model, "resid_post", 6, d_sae=256, seed=0)
    scope = sw.Scope(model, tokenizer, saes=[sae])
    texts = [inspect.getdoc(obj) for obj in (torch.Tensor.scatter_reduce_, torch.topk, torch.sort, sw.Scope)]
    dashes = scope.dashboards(None, corpus=texts, seq_len=64, batch_size=4, n_examples=5, progress=False)
    tokens = token_windows(tokenizer, texts, 64)
    acts = dense_activations(scope, sae, tokens, batch=4)
    bos = tokenizer.bos_token_id
    for feature in range(0, 256, 17):
        dash, want = dashes[feature], stats(acts, tokens, bos, feature)
        assert dash.max_activation == want["max"]
        assert dash.density == pytest.approx(want["density"], abs=1e-12)
        expected = top_examples(acts, tokens, feature, 5, 5)
        assert [(e.seq_index, e.position) for e in dash.examples] == [(e["seq"], e["pos"]) for e in expected]
    assert dashes[0].top_logits and len(dashes[0].similar) == 10
    # BOS would have dominated: its raw activations exceed every maximum the pass reports
    residual = run_truncated(model, tokens[:1], [("resid_post", 6)])["resid_post", 6][0, 0]
    assert float(sae.encode(residual).max()) > max(dashes.rows.stats()["max_activation"])
