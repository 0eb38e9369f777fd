"""Dashboards from a Gemma Scope 2 `examples.safetensors` written in the described layout."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from dashboard_reference import dense_activations
from safetensors.torch import save_file

import scopewidgets as sw
from scopewidgets.testing import random_sae, tiny_gemma3

D_SAE, LISTED = 12, 25


pytestmark = pytest.mark.usefixtures("private_cache")


@pytest.fixture(scope="module")
def model_and_tokens():
    model, tokenizer = tiny_gemma3()
    tokens = torch.randint(3, 200, (14, 20), generator=torch.Generator().manual_seed(2))
    tokens[:, 0] = 2
    return model, tokenizer, tokens


def evidence_tensors(scope, sae, tokens) -> dict[str, torch.Tensor]:
    """The strongest `LISTED` activations of each feature, as the file is described (unused slots 0)."""
    acts = dense_activations(scope, sae, tokens)
    flat = acts.permute(2, 0, 1).reshape(D_SAE, -1)
    values, where = flat.topk(LISTED, dim=1)
    seq, pos = where // tokens.shape[1], where % tokens.shape[1]
    seq[values <= 0], pos[values <= 0], values[values <= 0] = -1, -1, 0.0
    density = (flat > 0).sum(1).double() / (tokens != 2).sum()
    return {
        "activations": values,
        "seq_ids": seq.int(),
        "positions": pos.int(),
        "tokens": tokens.int(),
        "feature_frequencies": density.float(),
        "top_tokens": torch.zeros(D_SAE, 10, dtype=torch.int32),
        "top_logits": torch.zeros(D_SAE, 10),
    }


def scope_with_evidence(tmp_path, model_and_tokens, change=None):
    model, tokenizer, tokens = model_and_tokens
    sae = random_sae(model, "resid_post", 1, d_sae=D_SAE, threshold=0.3, seed=4)
    scope = sw.Scope(model, tokenizer, saes=[sae])
    tensors = evidence_tensors(scope, sae, tokens)
    if change:
        change(tensors)
    folder = sw.save_sae(sae, tmp_path / "layer_1_width_16_l0_small")
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(folder / "examples.safetensors"))
    loaded = sw.load_sae(folder)
    return sw.Scope(model, tokenizer, saes=[loaded]), tensors, tokens


def test_dashboards_come_from_the_file_without_a_forward(tmp_path, model_and_tokens):
    scope, tensors, tokens = scope_with_evidence(tmp_path, model_and_tokens)
    calls = []
    handle = scope.model.register_forward_pre_hook(lambda *_: calls.append(1))
    dashes = scope.dashboards(None, n_examples=4, context=2, n_quantile_groups=3, per_group=2, n_bins=8)
    handle.remove()
    assert not calls and "examples.safetensors" in dashes.rows.source
    acts = dense_activations(scope, scope.saes[0], tokens)
    for feature in dashes:
        dash = dashes[feature]
        assert dash.density == pytest.approx(float(tensors["feature_frequencies"][feature]))
        assert dash.max_activation == pytest.approx(float(acts[..., feature].max()))
        assert math.isnan(dash.mean_activation)
        listed = tensors["activations"][feature]
        assert dash.histogram.counts.sum() == int((listed > 0).sum())
        for example in dash.examples:
            want = tokens[example.seq_index, example.position - example.focus :][: len(example.token_ids)]
            assert example.token_ids.tolist() == want.tolist()
            assert example.max_value == pytest.approx(
                float(acts[example.seq_index, example.position, feature])
            )
            known = ~torch.isnan(example.values)
            start = example.position - example.focus
            truth = acts[example.seq_index, start : start + len(example.values), feature]
            torch.testing.assert_close(example.values[known], truth[known])
        seqs = [e.seq_index for e in dash.examples]
        assert len(seqs) == len(set(seqs))
        values = [e.max_value for e in dash.examples]
        assert values == sorted(values, reverse=True)
        assert sum(g.count for g in dash.quantiles) == int((listed > 0).sum())
    assert scope.dashboard(3).feature == 3
    frame = dashes.to_dataframe()
    assert len(frame) == D_SAE and frame["mean_activation"].isna().all()


def _drop(key):
    return lambda t: t.pop(key)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_drop("positions"), r"missing \['positions'\]; found keys \['activations', 'feature_frequencies'"),
        (
            lambda t: t.update(activations=t["activations"][:5]),
            "activations cover 5 features but this SAE has d_sae=12",
        ),
        (lambda t: t.update(seq_ids=t["seq_ids"][:, :3]), "seq_ids has shape"),
        (lambda t: t.update(tokens=t["tokens"].float()), "tokens is F32"),
        (lambda t: t["seq_ids"].__setitem__((0, 0), 99), "outside tokens"),
        (lambda t: t.update(feature_frequencies=t["feature_frequencies"] * 100), r"expected 12 fractions"),
        (lambda t: t["tokens"].__setitem__((0, 3), 5000), "outside this model's vocabulary"),
    ],
)
def test_an_unexpected_layout_fails_clearly(tmp_path, model_and_tokens, change, message):
    scope, _, _ = scope_with_evidence(tmp_path, model_and_tokens, change)
    with pytest.raises(ValueError, match=message):
        dashes = scope.dashboards(None)
        for feature in dashes:
            dashes[feature]


def test_a_corpus_still_wins_over_the_file(tmp_path, model_and_tokens):
    scope, _, tokens = scope_with_evidence(tmp_path, model_and_tokens)
    dashes = scope.dashboards([0, 1], corpus=tokens, cache=False, progress=False)
    assert dashes.rows.source == "corpus pass"
    assert np.isfinite(dashes[0].mean_activation)


def test_feature_statistics_come_from_the_file(tmp_path, model_and_tokens):
    """Rankings need no pass: density from `feature_frequencies`, max and mean from the listed activations."""
    scope, tensors, _ = scope_with_evidence(tmp_path, model_and_tokens)
    stats = scope.feature_stats()
    assert "feature_frequencies" in stats.source and stats.n_tokens == 14 * 20
    assert torch.equal(stats.density, tensors["feature_frequencies"])
    listed = tensors["activations"]
    assert torch.allclose(stats.max, listed.max(1).values)
    means = [float(row[row > 0].mean()) if (row > 0).any() else 0.0 for row in listed]
    assert stats.mean.tolist() == pytest.approx(means, rel=1e-6)
