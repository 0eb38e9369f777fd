"""Feature-sharded passes: each process takes a slice of the features over the whole corpus; the join of
the slices equals one pass, bit for bit (here in 2 processes with torch.distributed and gloo on CPU)."""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import scopewidgets as sw
from scopewidgets.dashboards.shard import feature_slice, join_states
from scopewidgets.testing import random_sae, tiny_gemma3

pytestmark = pytest.mark.usefixtures("private_cache")


def _scope() -> sw.Scope:
    model, tokenizer = tiny_gemma3()
    return sw.Scope(
        model, tokenizer, saes=[random_sae(model, "resid_post", 1, d_sae=40, threshold=0.2, seed=2)]
    )


def _tokens() -> torch.Tensor:
    tokens = torch.randint(3, 200, (10, 16), generator=torch.Generator().manual_seed(4))
    tokens[:, 0] = 2
    return tokens


def _assert_same_state(a, b) -> None:
    ta, tb = a.tensors(), b.tensors()
    assert set(ta) == set(tb)
    for name in ta:
        assert torch.equal(ta[name], tb[name]), name


def _worker(rank: int, world: int, init: str, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        scope = _scope()
        part = scope.dashboards(
            None, corpus=_tokens(), feature_shard=(rank, world), cache=False, progress=False
        )
        states = [None] * world
        dist.all_gather_object(states, part.state.to("cpu"))
        if rank == 0:
            torch.save({k: v for k, v in part.join(*states[1:]).state.tensors().items()}, out)
    finally:
        dist.destroy_process_group()


def test_two_gloo_processes_joined_equal_one_pass(tmp_path):
    out = tmp_path / "joined.pt"
    mp.spawn(_worker, args=(2, f"file://{tmp_path / 'rendezvous'}", str(out)), nprocs=2, join=True)
    whole = _scope().dashboards(None, corpus=_tokens(), cache=False, progress=False)
    joined = torch.load(out)
    assert joined["features"].tolist() == list(range(40))
    for name, tensor in whole.state.tensors().items():
        assert torch.equal(joined[name], tensor), name


def test_join_in_any_order_and_with_sequence_shards_equals_one_pass():
    scope, tokens = _scope(), _tokens()
    whole = scope.dashboards(None, corpus=tokens, cache=False, progress=False)
    parts = [
        scope.dashboards(None, corpus=tokens, feature_shard=(r, 3), cache=False, progress=False)
        for r in range(3)
    ]
    assert (
        sum(len(p) for p in parts) == 40
        and parts[1].features == feature_slice(torch.arange(40), (1, 3)).tolist()
    )
    _assert_same_state(parts[2].join(parts[0], parts[1]).state, whole.state)
    halves = [
        join_states([scope.dashboards(None, corpus=tokens, shard=(s, 2), feature_shard=(r, 2), cache=False,
                                      progress=False).state for r in range(2)])
        for s in range(2)
    ]  # fmt: skip
    _assert_same_state(halves[0].merge(halves[1]), whole.state)
    assert whole[7].examples[0].tokens == parts[0].join(parts[1], parts[2])[7].examples[0].tokens


def test_join_refuses_overlapping_features_or_different_sequences():
    scope, tokens = _scope(), _tokens()
    part = scope.dashboards(None, corpus=tokens, feature_shard=(0, 2), cache=False, progress=False)
    with pytest.raises(ValueError, match="overlap"):
        part.join(part)
    fewer = scope.dashboards(None, corpus=tokens[:5], feature_shard=(1, 2), cache=False, progress=False)
    with pytest.raises(ValueError, match="different sequences"):
        part.join(fewer)
    with pytest.raises(ValueError, match="rank=2 is out of range"):
        scope.dashboards(None, corpus=tokens, feature_shard=(2, 2), cache=False, progress=False)
