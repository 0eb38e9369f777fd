"""The running state on synthetic activations (no model): growing maxima, exact bin boundaries, ties,
and merges in any order and split."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from dashboard_reference import assert_same, histogram_counts, quantile_sample, top_examples

from scopewidgets.dashboards.encode import SparseBatch
from scopewidgets.dashboards.rows import StateRows
from scopewidgets.dashboards.select import sample_keys, scale_exponents
from scopewidgets.dashboards.state import DashboardState, PassSettings

BOS, N_SEQ, T, N_F = 2, 36, 10, 5
SETTINGS = PassSettings(seq_len=T, n_examples=4, context=2, n_groups=3, per_group=2)


def text(ids: torch.Tensor) -> list[str]:
    return [str(i) for i in ids.tolist()]


@pytest.fixture(scope="module")
def corpus() -> tuple[torch.Tensor, torch.Tensor]:
    """Tokens with BOS first (and once mid-sequence), activations whose scale grows by 2**10 over the corpus,
    some exact powers of two and bin boundaries, and a duplicated sequence (ties)."""
    gen = torch.Generator().manual_seed(0)
    tokens = torch.randint(3, 40, (N_SEQ, T), generator=gen)
    tokens[:, 0] = BOS
    tokens[7, 4] = BOS
    scale = 2.0 ** torch.linspace(-3, 7, N_SEQ)[:, None, None]
    acts = torch.relu(torch.randn(N_SEQ, T, N_F, generator=gen) - 0.3) * scale
    acts[3, 2, :] = 0.5  # powers of two fall exactly on bin and bucket edges
    acts[20, 5, :] = 16.0
    acts[21, 6, 1] = 128.0
    acts[30] = acts[29]  # a tie between two sequences
    tokens[30] = tokens[29]
    acts[:, :, 4] = 0  # a feature that never fires
    acts[tokens == BOS] = 0
    return tokens, acts


def run(tokens, acts, order, batch=4, finish=True) -> DashboardState:
    state = DashboardState.empty(torch.arange(N_F), SETTINGS)
    for start in range(0, len(order), batch):
        seq = torch.as_tensor(order[start : start + batch])
        state.update(
            SparseBatch.from_scores(tokens[seq], seq, acts[seq].reshape(-1, N_F), torch.zeros(N_F), BOS)
        )
    return state.finish() if finish else state


@pytest.mark.parametrize("finish", [True, False])
def test_rows_match_brute_force_with_tables_in_any_slot_order(corpus, finish):
    tokens, acts = corpus
    order = torch.randperm(N_SEQ, generator=torch.Generator().manual_seed(5)).tolist()
    rows = StateRows(run(tokens, acts, order, finish=finish))
    assert rows.n_tokens == int((tokens != BOS).sum())
    stats = rows.stats()
    for col in range(N_F):
        active = acts[..., col][acts[..., col] > 0]
        assert stats["n_active"][col] == active.numel()
        want = top_examples(acts, tokens, col, 4, SETTINGS.top_side)
        got = rows.examples(col, text)
        assert [(e.seq_index, e.position, e.token_ids.tolist()) for e in got] == [
            (w["seq"], w["pos"], w["ids"]) for w in want
        ]
        counts, edges = rows.histogram(col, 7)
        if not active.numel():
            assert counts.sum() == 0 and rows.quantiles(col, text) == []
            continue
        np.testing.assert_array_equal(counts, histogram_counts(active, edges))
        for group in rows.quantiles(col, text):
            count, sample = quantile_sample(acts, tokens, BOS, col, group.lower, group.upper, 2, T)
            assert group.count == count
            assert sorted((e.seq_index, e.position) for e in group.examples) == sample


def test_tables_are_sorted_only_when_needed_and_ordered_reads_equal_the_sorted_table(corpus):
    tokens, acts = corpus
    order = torch.randperm(N_SEQ, generator=torch.Generator().manual_seed(7)).tolist()
    state = run(tokens, acts, order, batch=3, finish=False)
    assert not state.ordered
    keys = state.quant.keys()
    assert bool((keys[:, 1:] < keys[:, :-1]).any()), "the inserts left some group out of order"
    reads = {name: [table.ordered(g, 1) for g in range(table.n_groups)]
             for name, table in (("top", state.top), ("quant", state.quant))}  # fmt: skip
    reference = run(tokens, acts, list(range(N_SEQ)))
    assert_same(state, reference)  # tensors() sorts first
    assert state.ordered
    for name, table in (("top", state.top), ("quant", state.quant)):
        for g, got in enumerate(reads[name]):
            want = table.entries.take(table.flat(torch.tensor([g])))
            for field, tensor in got.tensors().items():
                assert torch.equal(tensor, getattr(want, field)), (name, g, field)


def test_ties_prefer_the_earlier_sequence(corpus):
    tokens, acts = corpus
    rows = StateRows(run(tokens, acts, list(range(N_SEQ))))
    for col in range(4):
        seqs = [e.seq_index for e in rows.examples(col, text)]
        if 30 in seqs:
            assert 29 in seqs and seqs.index(29) < seqs.index(30)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_any_order_split_and_merge_tree_gives_the_same_state(corpus, seed):
    tokens, acts = corpus
    full = run(tokens, acts, list(range(N_SEQ)))
    perm = torch.randperm(N_SEQ, generator=torch.Generator().manual_seed(seed)).tolist()
    parts = [run(tokens, acts, perm[i::3], batch=seed + 1) for i in range(3)]
    assert_same(parts[0].merge(parts[1]).merge(parts[2]), full)
    assert_same(parts[2].merge(parts[0].merge(parts[1])), full)
    assert_same(run(tokens, acts, perm, batch=5), full)


def test_merge_leaves_its_inputs_untouched_and_checks_compatibility(corpus):
    tokens, acts = corpus
    a, b = run(tokens, acts, list(range(0, 18))), run(tokens, acts, list(range(18, 36)))
    before = {k: v.clone() for k, v in a.tensors().items()}
    a.merge(b)
    assert all(torch.equal(before[k], v) for k, v in a.tensors().items())
    other = DashboardState.empty(torch.arange(N_F), PassSettings(seq_len=T, n_examples=3))
    with pytest.raises(ValueError, match="different settings"):
        a.merge(other)


def test_sample_keys_are_a_permutation_per_feature():
    index = torch.arange(1 << 16)
    for feature in (0, 1, 12345):
        keys = sample_keys(index, torch.full_like(index, feature))
        assert keys.unique().numel() == index.numel()
    a = sample_keys(index, torch.zeros_like(index))
    b = sample_keys(index, torch.ones_like(index))
    assert (a != b).float().mean() > 0.99


def test_scale_exponents_bound_the_maximum():
    values = torch.tensor([1e-30, 0.3, 0.5, 1.0, 1.5, 65504.0, 3e38])
    exponent = scale_exponents(values).double()
    assert bool(((2 ** (exponent - 1) <= values.double()) & (values.double() < 2**exponent)).all())


def test_int32_counts_widen_before_they_could_overflow(corpus):
    tokens, acts = corpus
    state = run(tokens, acts, list(range(4)))
    state.n_tokens = 2**31 - 10
    state.update(
        SparseBatch.from_scores(
            tokens[4:8], torch.arange(4, 8), acts[4:8].reshape(-1, N_F), torch.zeros(N_F), BOS
        )
    )
    assert state.hist.dtype == torch.int64


@pytest.mark.parametrize("architecture", ["jumprelu", "standard", "topk"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_sparse_encode_is_bit_identical_to_sae_encode(architecture, dtype):
    from scopewidgets import SAE, SAEConfig
    from scopewidgets.dashboards.encode import encode_batch, scores_scratch

    gen = torch.Generator().manual_seed(7)
    cfg = SAEConfig(d_in=16, d_sae=48, architecture=architecture, apply_b_dec_to_input=True, k=6)
    tensors = {
        "W_enc": torch.randn(16, 48, generator=gen),
        "W_dec": torch.randn(48, 16, generator=gen),
        "b_enc": torch.randn(48, generator=gen),
        "b_dec": torch.randn(16, generator=gen),
        "threshold": torch.rand(48, generator=gen) * 2,
    }
    sae = SAE.from_tensors(cfg, tensors).to(dtype)
    ids = torch.randint(3, 50, (3, 20), generator=gen)
    ids[:, 0] = BOS
    x = torch.randn(60, 16, generator=gen) * 3
    want = sae.encode(x).float() * (ids.reshape(-1, 1) != BOS)
    scratch = scores_scratch(sae, 80, torch.device("cpu"))  # larger than the batch, and dirty
    if scratch is not None:
        scratch.fill_(float("nan"))
    for columns, buffer in itertools.product((None, torch.tensor([1, 7, 30, 47])), (None, scratch)):
        batch = encode_batch(sae, x, ids, torch.arange(3), columns, BOS, buffer)
        dense = want if columns is None else want[:, columns]
        row, col = torch.nonzero(dense > 0, as_tuple=True)
        assert torch.equal(batch.row, row) and torch.equal(batch.col, col)
        assert torch.equal(batch.value, dense[row, col])
        every = torch.arange(60)[:, None].expand(60, dense.shape[1])
        assert torch.equal(batch.at(every, torch.arange(dense.shape[1])[None].expand_as(every)), dense)


@pytest.mark.parametrize("side", [0, 2, 7, 40])
def test_windows_from_active_pairs_equal_dense_reads(corpus, side):
    """`SparseBatch.windows` (ranges of the pairs sorted by column) equals reading the dense activations at
    every window slot (`at`), with -1 ids and 0 activations beyond the sequence, BOS included."""
    tokens, acts = corpus
    seq = torch.arange(5, 13)
    batch = SparseBatch.from_scores(
        tokens[seq], seq, acts[seq].reshape(-1, N_F), torch.full((N_F,), 0.1), BOS
    )
    gen = torch.Generator().manual_seed(side)
    n = 300
    b, pos, col = (torch.randint(0, hi, (n,), generator=gen) for hi in (len(seq), T, N_F))
    ids, got = batch.windows(b, pos, col, side)
    where = pos[:, None] + torch.arange(-side, side + 1)
    inside = (where >= 0) & (where < T)
    row = b[:, None] * T + where.clamp(0, T - 1)
    want = torch.where(inside, batch.at(row, col[:, None]), 0.0)
    assert torch.equal(got, want)
    assert torch.equal(ids, torch.where(inside, tokens[seq].reshape(-1)[row], -1).int())


@pytest.mark.parametrize("slots", [1, 3, 8])
def test_table_keeps_the_smallest_keys_of_each_group_over_many_inserts(slots):
    """`Table.insert` against a brute force: after rounds that fill some groups only part way (records go
    to free slots) and overflow others (keys merge), each group holds exactly its `slots` smallest keys,
    each slot's record is the one offered with that key, and `canonical` orders them."""
    from scopewidgets.dashboards.select import EMPTY_KEY, Entries, Table

    gen = torch.Generator().manual_seed(slots)
    n_groups, width = 40, 3
    table = Table(Entries.empty(n_groups * slots, width), slots)
    offered: dict[int, list[int]] = {g: [] for g in range(n_groups)}
    keys = torch.randperm(10_000, generator=gen)
    used = 0
    for size in (5, 30, 200, 7, 400):  # small rounds leave groups part-full, large ones overflow them
        key = keys[used : used + size]
        used += size
        group = torch.randint(0, n_groups // 2 if size < 10 else n_groups, (size,), generator=gen)

        def records(i, key=key):
            k = key.index_select(0, i)
            return Entries(key=k, value=k.float(), seq=k, pos=k, ids=k[:, None].int().expand(-1, width),
                           acts=k[:, None].float().expand(-1, width))  # fmt: skip

        table.insert(group, key, records)
        for g, k in zip(group.tolist(), key.tolist(), strict=True):
            offered[g].append(k)
    table.canonical()
    for g in range(n_groups):
        want = sorted(offered[g])[:slots]
        want += [EMPTY_KEY] * (slots - len(want))
        assert table.keys()[g].tolist() == want
        used_slots = table.column("seq")[g] >= 0
        assert torch.equal(table.column("value")[g][used_slots], table.keys()[g][used_slots].float())
        assert torch.equal(table.column("ids")[g][used_slots][:, 0], table.keys()[g][used_slots].int())
