"""How one batch of encoder scores enters a `DashboardState`.

Two paths give the same state (slot order aside; `tests/test_dashboard_kernels.py`):

- compiled (`kernels.py`): float32 blocks of at least `kernels.MIN_ENTRIES` scores on a CPU with numba. The
  active pairs are found in one pass over the block and kept column-major; the formulas (bins, scales, order
  and sample keys) come from `select.py`; the tables are filled by `kernels.insert_records`.
- torch ops (`SparseBatch.from_scores` + `DashboardState.update`): every other case, any device.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from . import kernels
from .encode import SparseBatch
from .select import bucket_index, order_keys, scale_exponents
from .state import DashboardState, PassSettings


@torch.inference_mode()
def update_from_scores(
    state: DashboardState,
    ids: torch.Tensor,
    seq: torch.Tensor,
    scores: torch.Tensor,
    threshold: torch.Tensor,
    bos: int,
    bias: torch.Tensor,
    compiled: bool | None = None,
) -> None:
    """Fold one batch, given as encoder scores (`SparseBatch.from_scores`'s arguments), into `state`: the same
    state as `state.update(SparseBatch.from_scores(...))`, slot order aside. `compiled` picks the path: None
    takes the compiled kernels for wide float32 blocks on a CPU (`kernels.applies`); True forces them (any
    CPU float32 block).

    Example:
        >>> state = DashboardState.empty(torch.arange(2), PassSettings(seq_len=3))
        >>> update_from_scores(state, torch.tensor([[2, 5, 6]]), torch.tensor([0]),
        ...                    torch.tensor([[9., 0.], [1., 0.], [3., 2.]]), torch.zeros(2), 2, torch.zeros(2))
        >>> state.finish().top.column("value")[:, 0].tolist(), state.n_tokens
        ([3.0, 2.0], 2)
    """
    if compiled is None:
        compiled = state.device.type == "cpu" and kernels.applies(scores)
    if not compiled:
        batch = SparseBatch.from_scores(ids, seq, scores, threshold, bos, bias)
        with bookkeeping_threads(state.device, batch.value.numel()):
            state.update(batch)
        return
    _compile_once()
    if state.scratch is None or not state.scratch.fits(*scores.shape):
        state.scratch = kernels.SearchScratch(*scores.shape)
    not_bos = ids.reshape(-1) != bos
    pairs = kernels.active_pairs(scores, bias, threshold, not_bos, state.scratch)
    bins = _count(state, pairs, int(not_bos.sum()), int(ids.shape[0]))
    _insert(state, pairs, bins, ids, seq)


_compiled = False


def _compile_once() -> None:
    """Compile every kernel of the compiled path (~4 s, once per process) on a tiny two-batch pass, so that
    no compile lands inside a real pass (the scale fold is first needed at its second batch)."""
    global _compiled
    if _compiled:
        return
    _compiled = True
    state = DashboardState.empty(torch.arange(2), PassSettings(seq_len=2))
    for scale in (1.0, 4.0):
        scores = torch.tensor([[scale, 0.0], [0.0, scale]])
        ids, zeros = torch.tensor([[5, 6]]), torch.zeros(2)
        update_from_scores(state, ids, torch.tensor([0]), scores, zeros, -1, zeros, compiled=True)


def _count(state: DashboardState, pairs: kernels.ColumnPairs, n_tokens: int, n_seq: int) -> torch.Tensor:
    """Scales, histograms, totals and counts; returns each pair's histogram bin."""
    col, n_f, resolution = pairs.col, state.features.numel(), state.settings.hist_resolution
    state.ordered = False
    batch_max = torch.zeros(n_f).scatter_reduce_(0, col, pairs.value, "amax", include_self=True)
    state._rescale(scale_exponents(batch_max), compiled=True)
    state._widen_counts(n_tokens)
    bins = bucket_index(pairs.value, state.exponent.index_select(0, col), resolution)
    state.hist.view(-1).scatter_add_(
        0, col * resolution + bins, torch.ones_like(bins, dtype=state.hist.dtype)
    )
    state.total.index_add_(0, col, pairs.value.double())
    state.n_tokens += n_tokens
    state.n_sequences += n_seq
    return bins


def _insert(
    state: DashboardState,
    pairs: kernels.ColumnPairs,
    bins: torch.Tensor,
    ids: torch.Tensor,
    seq: torch.Tensor,
) -> None:
    """Offer each (sequence, feature) maximum to the top table and each pair to the sample table."""
    settings, n_t, col = state.settings, int(ids.shape[1]), pairs.col
    b = pairs.row // n_t
    top = kernels.first_maxima(pairs, n_t)
    top_key = order_keys(pairs.value.index_select(0, top), seq.index_select(0, b.index_select(0, top)))
    entries = state.top.entries.tensors()
    kernels.insert_records(
        entries, state.top.slots, col[top], top_key, top, 1, ids, seq, pairs, settings.top_side
    )
    if not settings.n_groups:
        return
    groups, resolution = settings.group_resolution, settings.hist_resolution
    token = seq.index_select(0, b) * settings.seq_len + pairs.row % n_t
    key = kernels.sample_keys(token, state.features[col], settings.seed)
    group = col * groups + bins // (resolution // groups)
    entries, pair = state.quant.entries.tensors(), torch.arange(col.numel())
    kernels.insert_records(
        entries, state.quant.slots, group, key, pair, groups, ids, seq, pairs, settings.context
    )


# Active (token, feature) pairs in a batch from which the state update keeps all CPU threads.
PARALLEL_UPDATE_PAIRS = 1 << 18


@contextmanager
def bookkeeping_threads(device: torch.device, n_active: int = 0) -> Iterator[None]:
    """On CPU, run the state update of a batch with fewer than `PARALLEL_UPDATE_PAIRS` active pairs on one
    thread: its ops are then small, gain little from OpenMP, and pay a barrier per op that costs a whole
    scheduler slice whenever the cores are shared. Larger batches (wide SAEs: ~350k pairs per 1,024
    tokens at 65k features and L0 300) keep every thread: there each op moves megabytes, and 2 threads
    took the update from 0.60 to 0.41 s per batch on a quiet 2-vCPU machine. The forward and the encoder
    always keep all threads."""
    threads = torch.get_num_threads()
    if device.type != "cpu" or threads == 1 or n_active >= PARALLEL_UPDATE_PAIRS:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
