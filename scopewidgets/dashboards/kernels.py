"""Compiled CPU kernels (numba) for the per-active-pair work of a dashboard pass on wide SAEs.

A pass at 65k features and L0 ~300 has ~300k active (token, feature) pairs per 1,024 tokens. In torch each
stage over them is a chain of whole-array ops (compare, `nonzero`, sorts, `index_select`, `index_copy_`),
each moving megabytes; here each stage is one loop that touches a pair once:

- `active_pairs`: the `[N, n_f]` encoder scores -> the active pairs in column-major order (feature, then
  token), values `scores + bias` in float32 (bit-identical to torch's add) where above the threshold and not
  BOS. One read of the block, in parallel over rows; the pairs land in row-local lists first (a scratch whose
  untouched pages are never faulted in) and are then counted into their columns.
- `insert_records`: offer candidates to a `Table` (each group keeps the `slots` smallest keys), writing the
  entering records with their windows read from the column-major pairs. In parallel over features: every
  candidate of one feature is handled by one thread, so no two threads touch one group.
- `fold`: a feature's histogram and quantile samples re-bucketed in place when its scale grows.
- `sample_keys`: compiled from `select.sample_keys` itself.

The formulas (sample and order keys, histogram bins, scales) live in `select.py` only: bins, scales and order
keys are computed in torch on the compacted pairs, and the sample keys' function is compiled as it is. The
result is the same state as the torch path's, slot order aside (`Table.canonical` sorts it);
`tests/test_dashboard_kernels.py` checks it. `batch_update.py` chooses the path: the torch one runs without
numba, off the CPU, for scores that are not float32, and for blocks under `MIN_ENTRIES` (where the compile,
~4 s once per process, would cost more than it saves).

The parallel kernels are compiled per process, not cached: on this machine (AVX-512, numba 0.68) the search
compiled fresh ran in 30 ms per `[1024, 65536]` block and the same code loaded from numba's disk cache in
60 ms (the fresh build vectorises the compaction, the cached one does not). Measured in
`benchmarks/RESULTS.md`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from . import select

try:
    from numba import njit, prange
    from numba.extending import register_jitable
except ImportError:  # pragma: no cover - numba is an optional speed-up
    njit = None

AVAILABLE = njit is not None


# Blocks from this many scores up take the compiled path (1,024 tokens x 16,384 features): below it a batch
# has few active pairs, the torch path costs milliseconds, and compiling costs seconds once per process.
MIN_ENTRIES = 1 << 24


def applies(scores: torch.Tensor) -> bool:
    """Whether the compiled path takes this block: numba importable, float32 `[N, n_f]` on a CPU, and at
    least `MIN_ENTRIES` scores."""
    return (
        AVAILABLE
        and scores.device.type == "cpu"
        and scores.dtype == torch.float32
        and scores.ndim == 2
        and scores.numel() >= MIN_ENTRIES
    )


@dataclass
class ColumnPairs:
    """Active pairs sorted by (column, row): the pairs of column `c` are `start[c]:start[c+1]` of `row`
    (flat token index `b * T + t`, int64) and `value` (float32 > 0)."""

    start: torch.Tensor
    row: torch.Tensor
    value: torch.Tensor

    @cached_property
    def col(self) -> torch.Tensor:
        """The column of every pair, ascending (computed once)."""
        counts = self.start[1:] - self.start[:-1]
        return torch.repeat_interleave(torch.arange(counts.numel()), counts)


class SearchScratch:
    """Row-local pair lists for `active_pairs` (`[rows, n_f]` int32 and float32, ~8 bytes x rows x n_f of
    address space): only the first pairs of each row are ever written, so only those pages become memory.
    Reuse one across batches: fresh blocks cost ~3x the search itself in page faults (measured)."""

    def __init__(self, n_rows: int, n_f: int) -> None:
        self.cols = np.empty((n_rows, n_f), dtype=np.int32)
        self.vals = np.empty((n_rows, n_f), dtype=np.float32)

    def fits(self, n_rows: int, n_f: int) -> bool:
        return self.cols.shape[0] >= n_rows and self.cols.shape[1] == n_f


def active_pairs(
    scores: torch.Tensor,
    bias: torch.Tensor,
    threshold: torch.Tensor,
    not_bos: torch.Tensor,
    scratch: SearchScratch | None = None,
) -> ColumnPairs:
    """The pairs with `scores[r, c] + bias[c] > max(threshold[c], 0)` and `not_bos[r]`, column-major.

    Example:
        >>> pairs = active_pairs(torch.tensor([[2., 0.], [3., 1.]]), torch.zeros(2), torch.full((2,), 0.5),
        ...                      torch.tensor([True, True]))
        >>> pairs.start.tolist(), pairs.row.tolist(), pairs.value.tolist()
        ([0, 2, 3], [0, 1, 1], [2.0, 3.0, 1.0])
    """
    block = scores.contiguous().numpy()
    n_rows, n_f = block.shape
    if scratch is None or not scratch.fits(n_rows, n_f):
        scratch = SearchScratch(n_rows, n_f)
    cols, vals = scratch.cols[:n_rows], scratch.vals[:n_rows]
    count = np.zeros(n_rows, dtype=np.int64)
    bias32 = bias.float().contiguous().numpy()
    bound = threshold.float().clamp(min=0).contiguous().numpy()
    _search(block, bias32, bound, cols, vals, count)
    start, row, value = _by_column(cols, vals, count, not_bos.contiguous().numpy(), n_f)
    return ColumnPairs(torch.from_numpy(start), torch.from_numpy(row), torch.from_numpy(value))


def first_maxima(pairs: ColumnPairs, n_t: int) -> torch.Tensor:
    """For every run of one column's pairs inside one sequence of `n_t` tokens, the index of the pair at
    its maximum (the earliest on a tie): the top-example candidates, in column order."""
    return torch.from_numpy(_first_maxima(pairs.start.numpy(), pairs.row.numpy(), pairs.value.numpy(), n_t))


def sample_keys(token_index: torch.Tensor, feature: torch.Tensor, seed: int) -> torch.Tensor:
    """`select.sample_keys`, compiled from that same function (one formula): ~25x faster on 350k pairs.

    Example:
        >>> token, feature = torch.arange(5), torch.full((5,), 3)
        >>> torch.equal(sample_keys(token, feature, 1), select.sample_keys(token, feature, 1))
        True
    """
    token, feature = token_index.long().contiguous().numpy(), feature.long().contiguous().numpy()
    return torch.from_numpy(_sample_keys(token, feature, seed))


def fold(
    hist: torch.Tensor,
    rows: torch.Tensor,
    shift: torch.Tensor,
    quant: dict[str, torch.Tensor] | None,
    groups_per_feature: int,
    slots: int,
) -> None:
    """`DashboardState._rescale`'s folds, in place, for features `rows` whose scale grew by `2 ** shift`:
    histogram bin `j` -> `j >> shift`, and each quantile sample from bucket `b` to `b >> shift`, a group
    keeping its `slots` smallest keys (`quant`: the sample table's `Entries` tensors; None without one).
    One pass over each feature's row and records, where the torch ops copy them three times."""
    q = {name: t.numpy() for name, t in (quant or {}).items()}
    empty = np.zeros(0, dtype=np.int64)
    _fold(
        hist.numpy(), rows.numpy(), shift.numpy(), quant is not None, q.get("key", empty),
        q.get("value", empty.astype(np.float32)), q.get("seq", empty), q.get("pos", empty),
        q.get("ids", np.zeros((0, 1), np.int32)), q.get("acts", np.zeros((0, 1), np.float32)),
        groups_per_feature, slots, select.EMPTY_KEY,
    )  # fmt: skip


def insert_records(
    entries: dict[str, torch.Tensor],
    slots: int,
    group: torch.Tensor,
    key: torch.Tensor,
    pair: torch.Tensor,
    groups_per_column: int,
    ids: torch.Tensor,
    seq: torch.Tensor,
    pairs: ColumnPairs,
    side: int,
) -> None:
    """Offer candidates to a table whose groups each keep the `slots` smallest keys; the entering ones
    overwrite the slots they free, in place (`entries`: the table's `Entries` tensors by name).

    Candidate `i` offers key `key[i]` to group `group[i]` (of column `group[i] // groups_per_column`;
    candidates sorted by column) for the token of pair `pair[i]` (an index into `pairs`): the record holds
    its value, its sequence `seq[b]`, position, and the window of `side` tokens each side (ids from `ids
    [B, T]`, -1 beyond the sequence; the column's activations there, 0 where inactive).
    """
    e = {name: t.numpy() for name, t in entries.items()}
    n_columns = pairs.start.numel() - 1
    first = torch.searchsorted(group // groups_per_column, torch.arange(n_columns + 1))
    _insert(
        e["key"], e["value"], e["seq"], e["pos"], e["ids"], e["acts"], slots, first.numpy(), group.numpy(),
        key.numpy(), pair.numpy(), seq.numpy(), ids.numpy(), pairs.start.numpy(), pairs.row.numpy(),
        pairs.value.numpy(), side,
    )  # fmt: skip


if AVAILABLE:
    register_jitable(select._mix)  # callable from compiled code; still the plain function in Python
    _sample_key = njit(select.sample_keys)

    @njit(parallel=True, nogil=True)  # not cached: see the module docstring
    def _sample_keys(token, feature, seed):  # pragma: no cover - compiled
        out = np.empty(token.shape[0], dtype=np.int64)
        for i in prange(token.shape[0]):
            out[i] = _sample_key(token[i], feature[i], seed)
        return out

    @njit(parallel=True, nogil=True)  # not cached: see the module docstring
    def _search(block, bias, bound, cols, vals, count):  # pragma: no cover - compiled
        # Kept this plain on purpose: a branch (BOS) or a chunked row loop here doubles its time (measured).
        n_rows, n_f = block.shape
        for r in prange(n_rows):
            n = 0
            for c in range(n_f):
                v = block[r, c] + bias[c]
                if v > bound[c]:
                    cols[r, n] = c
                    vals[r, n] = v
                    n += 1
            count[r] = n

    @njit(cache=True, nogil=True)
    def _by_column(cols, vals, count, not_bos, n_f):  # pragma: no cover - compiled
        start = np.zeros(n_f + 1, dtype=np.int64)
        for r in range(cols.shape[0]):
            if not_bos[r]:
                for i in range(count[r]):
                    start[cols[r, i] + 1] += 1
        for c in range(n_f):
            start[c + 1] += start[c]
        cursor = start[:-1].copy()
        row = np.empty(start[n_f], dtype=np.int64)
        value = np.empty(start[n_f], dtype=np.float32)
        for r in range(cols.shape[0]):  # rows ascending, so each column's rows come out ascending
            if not_bos[r]:
                for i in range(count[r]):
                    c = cols[r, i]
                    row[cursor[c]] = r
                    value[cursor[c]] = vals[r, i]
                    cursor[c] += 1
        return start, row, value

    @njit(cache=True, nogil=True)
    def _first_maxima(start, row, value, n_t):  # pragma: no cover - compiled
        out = np.empty(row.shape[0], dtype=np.int64)
        n = 0
        for c in range(start.shape[0] - 1):
            j = start[c]
            while j < start[c + 1]:
                b = row[j] // n_t
                best = j
                j += 1
                while j < start[c + 1] and row[j] // n_t == b:
                    if value[j] > value[best]:
                        best = j
                    j += 1
                out[n] = best
                n += 1
        return out[:n]

    @njit(parallel=True, nogil=True)  # not cached: see the module docstring
    def _fold(
        hist, rows, shift, with_quant, key, value, seq, pos, ids, acts, groups, slots, empty_key
    ):  # pragma: no cover - compiled  # fmt: skip
        n_bins, width = hist.shape[1], ids.shape[1]
        region = groups * slots
        for i in prange(rows.shape[0]):
            f, s = rows[i], shift[i]
            for j in range(n_bins):  # in place: bin j >> s <= j was already folded when j arrives
                count = hist[f, j]
                hist[f, j] = 0
                hist[f, j >> s] += count
            if not with_quant:
                continue
            base = f * region
            used = np.nonzero(seq[base : base + region] >= 0)[0]
            k, v, q, p = key[base + used], value[base + used], seq[base + used], pos[base + used]
            d, a = ids[base + used].copy(), acts[base + used].copy()
            for slot in range(base, base + region):
                key[slot], value[slot], seq[slot], pos[slot] = empty_key, 0.0, -1, -1
                for w in range(width):
                    ids[slot, w], acts[slot, w] = -1, 0.0
            for r in range(used.shape[0]):
                first = base + ((used[r] // slots) >> s) * slots
                worst = first
                for slot in range(first + 1, first + slots):
                    if key[slot] > key[worst]:
                        worst = slot
                if k[r] < key[worst]:
                    key[worst], value[worst], seq[worst], pos[worst] = k[r], v[r], q[r], p[r]
                    ids[worst], acts[worst] = d[r], a[r]

    @njit(parallel=True, nogil=True)  # not cached: see the module docstring
    def _insert(
        key, value, seq_out, pos_out, ids_out, acts_out, slots, first, group, cand_key, cand_pair, seq,
        ids, start, row, pair_value, side,
    ):  # pragma: no cover - compiled  # fmt: skip
        n_t = ids.shape[1]
        for c in prange(first.shape[0] - 1):
            for i in range(first[c], first[c + 1]):
                base = group[i] * slots
                worst = base
                for s in range(base + 1, base + slots):
                    if key[s] > key[worst]:
                        worst = s
                if cand_key[i] >= key[worst]:
                    continue
                p = cand_pair[i]
                b = row[p] // n_t
                focus = row[p] - b * n_t
                key[worst] = cand_key[i]
                value[worst] = pair_value[p]
                seq_out[worst] = seq[b]
                pos_out[worst] = focus
                for w in range(2 * side + 1):
                    t = focus - side + w
                    ids_out[worst, w] = ids[b, t] if 0 <= t < n_t else -1
                    acts_out[worst, w] = 0.0
                lo = p  # the column's pairs in the window: walk out from the focus both ways
                while lo > start[c] and row[lo - 1] >= row[p] - min(side, focus):
                    lo -= 1
                hi = p
                while hi + 1 < start[c + 1] and row[hi + 1] <= row[p] + min(side, n_t - 1 - focus):
                    hi += 1
                for j in range(lo, hi + 1):
                    acts_out[worst, row[j] - row[p] + side] = pair_value[j]
