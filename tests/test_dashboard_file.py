"""`DashboardSet.save` / `load`: the exact pass and effect table back, fingerprints checked, and the file
readable as Gemma Scope evidence (`examples.safetensors` layout)."""

from __future__ import annotations

import pytest
import torch

import scopewidgets as sw
from scopewidgets.core import sites
from scopewidgets.dashboards import DashboardSet
from scopewidgets.dashboards.evidence import Evidence
from scopewidgets.testing import random_sae, tiny_gemma3

pytestmark = pytest.mark.usefixtures("private_cache")


@pytest.fixture(scope="module")
def scope():
    model, tokenizer = tiny_gemma3()
    return sw.Scope(
        model, tokenizer, saes=[random_sae(model, "resid_post", 1, d_sae=24, threshold=0.2, seed=1)]
    )


@pytest.fixture(scope="module")
def dashes(scope):
    tokens = torch.randint(3, 200, (10, 16), generator=torch.Generator().manual_seed(2))
    tokens[:, 0] = 2
    return scope.dashboards(range(4, 20), corpus=tokens, cache=False, progress=False)


def test_load_gives_back_the_same_pass_and_dashboards(scope, dashes, tmp_path):
    path = dashes.save(tmp_path / "dashes.safetensors")
    back = DashboardSet.load(path, scope)
    for name, tensor in dashes.state.tensors().items():
        assert torch.equal(back.state.tensors()[name].cpu(), tensor.cpu()), name
    assert back.features == dashes.features and back.n_bins == dashes.n_bins
    for feature in (4, 11, 19):
        a, b = dashes[feature], back[feature]
        assert (a.top_logits, a.similar, a.density) == (b.top_logits, b.similar, b.density)
        assert [e.tokens for e in a.examples] == [e.tokens for e in b.examples]


def test_the_file_reads_as_gemma_scope_evidence(scope, dashes, tmp_path):
    path = dashes.save(tmp_path / "examples.safetensors")
    evidence = Evidence(path, 24, sites.vocab_size(scope.model))
    for feature in (4, 11):
        values, seq, pos = evidence.row(feature)
        examples = dashes[feature].examples
        assert values.tolist() == pytest.approx([e.max_value for e in examples])
        for example, s, p in zip(examples, seq.tolist(), pos.tolist(), strict=True):
            row = evidence.sequence(s)
            assert int(row[p]) == int(example.token_ids[example.focus])
    assert evidence.row(0)[0].numel() == 0  # not in the pass: no examples
    assert float(evidence.frequencies[11]) == pytest.approx(dashes[11].density)


def test_load_refuses_other_weights_unless_told(scope, dashes, tmp_path):
    path = dashes.save(tmp_path / "dashes.safetensors")
    other = sw.Scope(
        scope.model, scope.tokenizer, saes=[random_sae(scope.model, "resid_post", 1, d_sae=24, seed=9)]
    )
    with pytest.raises(ValueError, match="another sae"):
        DashboardSet.load(path, other)
    assert DashboardSet.load(path, other, check=False).features == dashes.features
    with pytest.raises(FileNotFoundError):
        DashboardSet.load(tmp_path / "missing.safetensors", scope)
