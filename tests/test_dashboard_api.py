"""`Scope.dashboards` / `Scope.dashboard`: token corpora, BOS, reuse, the disk cache, and bad inputs."""

from __future__ import annotations

import os

import pytest
import torch
from dashboard_reference import dense_activations, stats, top_examples
from test_dashboard_pass import SETTINGS, synthetic_texts

import scopewidgets as sw
from scopewidgets.core import corpus
from scopewidgets.dashboards import cache as _dashboard_cache
from scopewidgets.testing import random_sae, tiny_gemma3

pytestmark = pytest.mark.usefixtures("private_cache")


@pytest.fixture
def scope():
    model, tokenizer = tiny_gemma3()
    return sw.Scope(
        model, tokenizer, saes=[random_sae(model, "resid_post", 1, d_sae=16, threshold=0.2, seed=5)]
    )


class ForwardCounter:
    def __init__(self, model):
        self.calls = 0
        self.handle = model.register_forward_pre_hook(self)

    def __call__(self, *_):
        self.calls += 1


def test_token_tensor_corpus_is_used_as_given_and_bos_is_never_counted(scope):
    gen = torch.Generator().manual_seed(1)
    tokens = torch.randint(3, 200, (9, 17), generator=gen)
    tokens[:, 0] = 2
    tokens[4, 8] = 2  # a BOS inside a sequence is skipped too
    tokens[6, 0] = 77  # a row without BOS is used as it is
    dashes = scope.dashboards(None, corpus=tokens, cache=False, **{**SETTINGS, "seq_len": 5})
    acts = dense_activations(scope, scope.saes[0], tokens)
    raw = torch.cat([scope.encode(tokens[i : i + 1], [0])[0] for i in range(9)])
    for feature in dashes:
        dash, want = dashes[feature], stats(acts, tokens, 2, feature)
        assert dash.n_tokens == 9 * 17 - 9 == want["n_tokens"]
        assert dash.max_activation == want["max"]
        for example in dash.examples:
            assert example.token_ids[example.focus] != 2
            window = tokens[example.seq_index, example.position - example.focus :][: len(example.token_ids)]
            assert example.token_ids.tolist() == window.tolist()
            assert example.max_value == raw[example.seq_index, example.position, feature]
        assert [e.seq_index for e in dash.examples] == [
            e["seq"] for e in top_examples(acts, tokens, feature, 6, 3)
        ]


def test_a_second_pass_comes_from_the_cache_without_a_forward(scope):
    texts = synthetic_texts(12)
    counter = ForwardCounter(scope.model)
    first = scope.dashboards([1, 3], corpus=texts, **SETTINGS)
    assert counter.calls > 0 and len(list(_dashboard_cache.cache_folder().glob("*.safetensors"))) == 1
    counter.calls = 0
    again = scope.dashboards([1, 3], corpus=list(texts), **SETTINGS)
    assert counter.calls == 0
    assert all(torch.equal(a, again.state.tensors()[k]) for k, a in first.state.tensors().items())
    scope.dashboards([1, 3], corpus=texts[:-1], **SETTINGS)  # other corpus: another entry
    assert counter.calls > 0 and len(list(_dashboard_cache.cache_folder().glob("*.safetensors"))) == 2


def test_the_cache_evicts_least_recently_used_entries_beyond_its_bound(scope, monkeypatch):
    texts = synthetic_texts(12)
    folder = _dashboard_cache.cache_folder()
    passes = [texts, texts[:-1], texts[:-2]]
    for texts_of_pass in passes:
        scope.dashboards([1, 3], corpus=texts_of_pass, **SETTINGS)
        for j, path in enumerate(sorted(folder.glob("*.safetensors"), key=lambda p: p.stat().st_mtime)):
            os.utime(path, (1000 + j, 1000 + j))  # distinct ages, oldest first
    entries = sorted(folder.glob("*.safetensors"), key=lambda p: p.stat().st_mtime)
    assert len(entries) == 3
    size = entries[0].stat().st_size
    counter = ForwardCounter(scope.model)
    scope.dashboards([1, 3], corpus=passes[0], **SETTINGS)  # a cache hit marks the oldest entry as used
    assert counter.calls == 0 and entries[0].stat().st_mtime > entries[2].stat().st_mtime
    monkeypatch.setenv(_dashboard_cache.LIMIT_VARIABLE, str(2.5 * size / 1e6))
    scope.dashboards([1, 3], corpus=texts[:-3], **SETTINGS)  # a fourth entry: the two least used go
    remaining = set(folder.glob("*.safetensors"))
    assert entries[0] in remaining and entries[1] not in remaining and entries[2] not in remaining
    assert len(remaining) == 2
    monkeypatch.setenv(_dashboard_cache.LIMIT_VARIABLE, "0")
    assert len(_dashboard_cache.evict(keep=entries[0])) == 1  # the kept entry survives any bound
    assert set(folder.glob("*.safetensors")) == {entries[0]}


@pytest.mark.parametrize("limit", ["-1", "lots", "nan"])
def test_a_bad_cache_bound_is_named(monkeypatch, limit):
    monkeypatch.setenv(_dashboard_cache.LIMIT_VARIABLE, limit)
    with pytest.raises(ValueError, match=f"SCOPEWIDGETS_DASHBOARD_CACHE_MB={limit!r}"):
        _dashboard_cache.cache_limit_bytes()


@pytest.mark.parametrize("damage", ["truncate", "flip", "foreign"])
def test_a_damaged_cache_entry_is_rebuilt_not_trusted(scope, damage):
    texts = synthetic_texts(12)
    first = scope.dashboards([2], corpus=texts, **SETTINGS)
    (path,) = _dashboard_cache.cache_folder().glob("*.safetensors")
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip":
        data[-50] ^= 0xFF
    else:  # a valid file whose tensors belong to other settings
        other = scope.dashboards([2], corpus=texts, **{**SETTINGS, "n_examples": 2})
        data = bytearray(_dashboard_cache.save_state("x" * 64, other.state).read_bytes())
    path.write_bytes(bytes(data))
    counter = ForwardCounter(scope.model)
    with pytest.warns(UserWarning, match="damaged"):
        again = scope.dashboards([2], corpus=texts, **SETTINGS)
    assert counter.calls > 0
    assert all(
        torch.equal(a, again.state.tensors()[k]) for k, a in first.state.tensors().items() if k != "total"
    )
    counter.calls = 0
    scope.dashboards([2], corpus=texts, **SETTINGS)
    assert counter.calls == 0


def test_scope_dashboard_reuses_a_covering_pass(scope):
    texts = synthetic_texts(12)
    dashes = scope.dashboards(range(0, 16, 2), corpus=texts, cache=False, **SETTINGS)
    counter = ForwardCounter(scope.model)
    dash = scope.dashboard(4)
    assert counter.calls == 0 and dash is dashes[4]
    other = scope.dashboard(5, corpus=texts)
    assert counter.calls > 0 and other.feature == 5
    assert dash.label is None and scope.dashboard(5).feature == 5


def test_bad_inputs_raise_value_errors_naming_the_allowed_range(scope, monkeypatch):
    texts = synthetic_texts(4)
    for bad in (16, -1, [3, 99], range(10, 17), torch.tensor([0, 16])):
        with pytest.raises(ValueError, match=r"\[0, 16\)"):
            scope.dashboards(bad, corpus=texts)
    with pytest.raises(ValueError, match=r"\[0, 16\)"):
        scope.dashboard(16, corpus=texts)
    with pytest.raises(ValueError, match="No features"):
        scope.dashboards([], corpus=texts)
    for empty in ([], [""], torch.zeros(0, 8, dtype=torch.long), iter([])):
        with pytest.raises(ValueError, match="empty"):
            scope.dashboards([1], corpus=empty, cache=False, progress=False)
    with pytest.raises(ValueError, match="2-D integer"):
        scope.dashboards([1], corpus=torch.zeros(3, 4))
    with pytest.raises(ValueError, match=r"\[0, 260\)"):
        scope.dashboards([1], corpus=torch.full((2, 4), 999))
    with pytest.raises(ValueError, match="n_bins must be an int >= 1"):
        scope.dashboards([1], corpus=texts, n_bins=0)
    monkeypatch.delattr(corpus, "default", raising=False)
    with pytest.raises(ValueError, match="need a corpus"):
        scope.dashboards([1])
    with pytest.raises(ValueError, match="No dashboard pass covers feature 3"):
        scope.dashboard(3)
    dashes = scope.dashboards([1], corpus=texts, cache=False, progress=False)
    with pytest.raises(ValueError, match="not in this pass"):
        dashes[2]
