"""The compiled (numba) state update against the torch one: the same state, tensor for tensor, on batches
that grow the scale (folds), hit BOS, tie, fire at the sequence edges and use biases and thresholds."""

from __future__ import annotations

import pytest
import torch
from dashboard_reference import assert_same

from scopewidgets.dashboards import kernels
from scopewidgets.dashboards.batch_update import update_from_scores
from scopewidgets.dashboards.encode import SparseBatch
from scopewidgets.dashboards.state import DashboardState, PassSettings

BOS = 2


def test_numba_is_installed():
    assert kernels.AVAILABLE, "numba is a dependency of scopewidgets: the wide-SAE pass needs it"


@pytest.fixture(autouse=True)
def small_blocks_compiled(monkeypatch):
    monkeypatch.setattr(kernels, "MIN_ENTRIES", 0)


def batches(n_batches: int, n_seq: int, n_t: int, n_f: int, seed: int = 0):
    """`(ids, seq, scores, threshold, bias)` per batch: scores on a grid of 1/8 (ties), scale x 2**6 over the
    batches, BOS first and once mid-sequence."""
    gen = torch.Generator().manual_seed(seed)
    threshold = torch.rand(n_f, generator=gen) * 2 - 0.5  # some negative: clamped to 0
    bias = torch.randn(n_f, generator=gen)
    for i in range(n_batches):
        ids = torch.randint(3, 50, (n_seq, n_t), generator=gen)
        ids[:, 0] = BOS
        ids[0, n_t // 2] = BOS
        scale = 2.0 ** (6 * i / max(n_batches - 1, 1))
        scores = torch.round(torch.randn(n_seq * n_t, n_f, generator=gen) * 8 * scale) / 8 - bias
        scores[:, -1] = -100  # a feature that never fires
        scores[n_t - 1, 0] = 1000 * scale  # the last token of a sequence
        seq = torch.arange(i * n_seq, (i + 1) * n_seq)
        yield ids, seq, scores, threshold, bias


def both(settings: PassSettings, features: torch.Tensor, data) -> tuple[DashboardState, DashboardState]:
    compiled = DashboardState.empty(features, settings)
    reference = DashboardState.empty(features, settings)
    for ids, seq, scores, threshold, bias in data:
        update_from_scores(compiled, ids, seq, scores, threshold, BOS, bias)
        reference.update(SparseBatch.from_scores(ids, seq, scores, threshold, BOS, bias))
    return compiled.finish(), reference.finish()


@pytest.mark.parametrize(
    "settings",
    [
        PassSettings(seq_len=16),
        PassSettings(seq_len=16, n_examples=3, context=2, n_groups=2, per_group=1, top_context=3, seed=7),
        PassSettings(seq_len=16, n_groups=0),
    ],
)
def test_compiled_update_equals_torch_update(settings):
    compiled, reference = both(settings, torch.arange(40), batches(5, 6, 16, 40))
    assert compiled.n_tokens == reference.n_tokens == 5 * 6 * 15 - 5
    assert int((compiled.top.entries.seq >= 0).sum()) > 40  # the tables did fill
    assert_same(compiled, reference)


def test_feature_ids_key_the_samples_and_hist_widens():
    features = torch.tensor([3, 17, 90, 91, 400, 1000])
    settings = PassSettings(seq_len=8, per_group=2)
    compiled = DashboardState.empty(features, settings)
    compiled.hist = compiled.hist.long()  # what `_widen_counts` does past 2**31 tokens
    reference = DashboardState.empty(features, settings)
    for ids, seq, scores, threshold, bias in batches(3, 4, 8, 6, seed=3):
        update_from_scores(compiled, ids, seq, scores, threshold, BOS, bias)
        reference.update(SparseBatch.from_scores(ids, seq, scores, threshold, BOS, bias))
    assert compiled.hist.dtype == torch.int64
    reference.hist = reference.hist.long()
    assert_same(compiled.finish(), reference.finish())


def test_windows_read_the_neighbours_of_the_same_feature():
    ids = torch.tensor([[BOS, 5, 6, 7, 8]])
    scores = torch.zeros(5, 2)
    scores[1:, 0] = torch.tensor([1.0, 0.0, 4.0, 2.0])  # feature 0 at t = 1, 3, 4; the max at t = 3
    scores[2, 1] = 9.0
    state = DashboardState.empty(torch.arange(2), PassSettings(seq_len=5, top_context=2, context=1))
    update_from_scores(state, ids, torch.tensor([0]), scores, torch.zeros(2), BOS, torch.zeros(2))
    top = state.finish().top
    assert top.column("pos")[0, 0] == 3 and top.column("value")[0, 0] == 4.0
    assert top.column("ids")[0, 0].tolist() == [5, 6, 7, 8, -1]
    assert top.column("acts")[0, 0].tolist() == [1.0, 0.0, 4.0, 2.0, 0.0]
    assert top.column("acts")[1, 0].tolist() == [0.0, 0.0, 9.0, 0.0, 0.0]


def test_bf16_scores_and_small_blocks_take_the_torch_path(monkeypatch):
    assert not kernels.applies(torch.zeros(2, 2, dtype=torch.bfloat16))
    assert kernels.applies(torch.zeros(2, 2))
    monkeypatch.setattr(kernels, "MIN_ENTRIES", 5)
    assert not kernels.applies(torch.zeros(2, 2))


@pytest.mark.usefixtures("private_cache")
@pytest.mark.parametrize("features", [None, [31, 4, 17]])
def test_a_pass_through_the_kernels_equals_the_torch_pass(monkeypatch, features):
    import scopewidgets as sw
    from scopewidgets.testing import random_sae, tiny_gemma3

    model, tokenizer = tiny_gemma3()
    sae = random_sae(model, "resid_post", 1, d_sae=40, threshold=0.4, seed=3)
    scope = sw.Scope(model, tokenizer, saes=[sae])
    texts = [" ".join(["the cat sat on Paris", "tower 1789 é !", "def f(x): return"][i % 3] * (i % 5 + 1)) for i in range(30)]  # fmt: skip
    settings = dict(seq_len=24, batch_size=5, n_examples=6, context=3, n_quantile_groups=4, per_group=3)
    compiled = scope.dashboards(features, corpus=texts, cache=False, progress=False, **settings)
    monkeypatch.setattr(kernels, "MIN_ENTRIES", 1 << 62)
    reference = scope.dashboards(features, corpus=texts, cache=False, progress=False, **settings)
    assert compiled.state.n_tokens > 300 and int((compiled.state.quant.entries.seq >= 0).sum()) > 40
    assert_same(compiled.state, reference.state)


def test_compiled_sample_keys_are_the_formula_in_select():
    from scopewidgets.dashboards.select import sample_keys

    gen = torch.Generator().manual_seed(1)
    token = torch.randint(0, 2**56, (50_000,), generator=gen)
    feature = torch.randint(0, 1 << 20, (50_000,), generator=gen)
    for seed in (0, 12345):
        assert torch.equal(kernels.sample_keys(token, feature, seed), sample_keys(token, feature, seed))
