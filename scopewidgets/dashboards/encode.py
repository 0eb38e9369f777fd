"""One batch of a dashboard pass: the forward stopped after the SAE's site, and its features in sparse form.

The pass never materialises more than one batch of activations, and touches the dense `[tokens, d_sae]`
block only three times (the encoder's matmul, one sum, one comparison + `nonzero` in cache-sized blocks).
Everything after that is proportional to the number of active (token, feature) pairs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..core.hooks import run_truncated
from ..core.sae import SAE


@dataclass
class SparseBatch:
    """The active features of a batch of `B` sequences of `T` tokens (BOS never included).

    `ids [B, T]` token ids; `seq [B]` int64 sequence indices in the corpus; `row [nnz]` flat token index
    `b * T + t`; `col [nnz]` feature column; `value [nnz]` float32 activation (> 0); `n_tokens` non-BOS
    tokens. The activation of (token r, column c) is `scores[r, c] + bias[c]` (in the scores' dtype) where
    that is above `threshold[c]` and r is not BOS, else 0: `at` reads any of them, active or not.
    """

    ids: torch.Tensor
    seq: torch.Tensor
    row: torch.Tensor
    col: torch.Tensor
    value: torch.Tensor
    n_tokens: int
    scores: torch.Tensor
    bias: torch.Tensor
    threshold: torch.Tensor
    not_bos: torch.Tensor
    _sorted: tuple[torch.Tensor, torch.Tensor] | None = field(default=None, repr=False)

    @classmethod
    def from_scores(
        cls,
        ids: torch.Tensor,
        seq: torch.Tensor,
        scores: torch.Tensor,
        threshold: torch.Tensor,
        bos: int,
        bias: torch.Tensor | None = None,
    ) -> SparseBatch:
        """Activations are `scores + bias` where that is `> max(threshold, 0)`, else 0; BOS tokens dropped.

        `scores [B*T, n_f]`: JumpReLU pre-activations without the encoder bias (`bias`) and its threshold,
        the same for ReLU with a zero threshold, or finished activations with zero bias and threshold. The
        bias is added only to the entries that pass a slightly loose bound, then checked exactly, so the
        values are bit-identical to adding it densely (one pass over the block saved).

        Example:
            >>> ids = torch.tensor([[2, 5, 6]])
            >>> batch = SparseBatch.from_scores(ids, torch.tensor([0]), torch.tensor([[9.], [1.], [-1.]]),
            ...                                 torch.zeros(1), bos=2)
            >>> batch.row.tolist(), batch.value.tolist(), batch.n_tokens
            ([1], [1.0], 2)
        """
        dtype = scores.dtype
        threshold = threshold.clamp(min=0).to(dtype)
        bias = torch.zeros_like(threshold) if bias is None else bias.to(dtype)
        slack = 8 * torch.finfo(dtype).eps * (threshold.abs() + bias.abs()).float() + torch.finfo(dtype).tiny
        not_bos = ids.reshape(-1) != bos
        row, col = _above(scores, threshold.float() - bias.float() - slack)
        batch = cls(ids, seq, row, col, row.float(), int(not_bos.sum()), scores, bias, threshold, not_bos)
        value = batch._activation(row, col)
        keep = (value > threshold.index_select(0, col)) & not_bos.index_select(0, row)
        batch.row, batch.col, batch.value = row[keep], col[keep], value[keep].float()
        return batch

    @property
    def shape(self) -> tuple[int, int]:
        """`(B, T)`."""
        return (int(self.ids.shape[0]), int(self.ids.shape[1]))

    def _activation(self, row: torch.Tensor, col: torch.Tensor) -> torch.Tensor:
        flat = (row * self.scores.shape[1] + col).reshape(-1)
        score = self.scores.reshape(-1).index_select(0, flat).view(row.shape)
        return score + self.bias.index_select(0, col.reshape(-1)).view(col.shape)

    def windows(
        self, b: torch.Tensor, pos: torch.Tensor, col: torch.Tensor, side: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Windows of `side` tokens each side of tokens `(b, pos)`: `ids [N, 2*side+1]` int32 (-1 beyond the
        sequence) and the activations of columns `col [N]` there, `acts [N, 2*side+1]` float32 (0 where
        inactive). Read from the active pairs, not the dense scores: each window is a range of the pairs
        sorted by (column, token), so the cost is the active entries inside the windows, not N x width
        random reads of a `[B*T, n_f]` block. Equal to `at` on the same tokens.
        """
        n_t, width = self.shape[1], 2 * side + 1
        ids = torch.nn.functional.pad(self.ids.int(), (side, side), value=-1).unfold(1, width, 1)[b, pos]
        keys, values = self._by_column()
        span = self.ids.numel()
        first = b * n_t
        origin = col * span + first + pos - side  # key of the window's first slot
        low = col * span + torch.maximum(first, first + pos - side)
        high = col * span + torch.minimum(first + n_t - 1, first + pos + side) + 1
        start = torch.searchsorted(keys, low)
        count = torch.searchsorted(keys, high) - start
        owner = torch.repeat_interleave(torch.arange(len(b), device=b.device), count)
        source = torch.arange(owner.numel(), device=b.device) + (start - count.cumsum(0) + count)[owner]
        acts = torch.zeros(len(b) * width, device=b.device)
        slot = owner * width + keys.index_select(0, source) - origin.index_select(0, owner)
        acts.index_put_((slot,), values.index_select(0, source))
        return ids, acts.view(len(b), width)

    def _by_column(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The active pairs' keys `col * B*T + row`, ascending, and their values (computed once)."""
        if self._sorted is None:
            order = torch.sort(self.col, stable=True).indices  # rows are already ascending within a column
            keys = self.col.index_select(0, order) * self.ids.numel() + self.row.index_select(0, order)
            self._sorted = (keys, self.value.index_select(0, order))
        return self._sorted

    def at(self, row: torch.Tensor, col: torch.Tensor) -> torch.Tensor:
        """Float32 activations at flat token indices `row [N, W]` of columns `col [N, 1]`; 0 at BOS."""
        value = self._activation(row, col)
        threshold = self.threshold.index_select(0, col.reshape(-1)).view(col.shape)
        active = (value > threshold) & self.not_bos.index_select(0, row.reshape(-1)).view(row.shape)
        return torch.where(active, value, torch.zeros_like(value)).float()


def _above(
    scores: torch.Tensor, bound: torch.Tensor, rows_per_chunk: int = 64
) -> tuple[torch.Tensor, torch.Tensor]:
    """`(row, col)` of the entries of `scores [N, n_f]` above `bound [n_f]`, in row-major order: the same
    as `torch.nonzero(scores > bound, as_tuple=True)`, done in blocks of rows on flat masks (the mask of a
    block stays in cache, and 1-D `nonzero` is cheaper: measured ~2x faster at [1024, 65536] on a CPU;
    other devices take one call)."""
    if scores.device.type != "cpu" or scores.shape[0] <= rows_per_chunk:  # a GPU syncs on each `nonzero`
        return torch.nonzero(scores > bound, as_tuple=True)
    n_f = scores.shape[1]
    rows, cols = [], []
    for start in range(0, scores.shape[0], rows_per_chunk):
        flat = torch.nonzero((scores[start : start + rows_per_chunk] > bound).view(-1)).flatten()
        rows.append(flat // n_f + start)
        cols.append(flat % n_f)
    return torch.cat(rows), torch.cat(cols)


def scores_scratch(sae: SAE, rows: int, device: torch.device) -> torch.Tensor | None:
    """A reusable `[rows, d_sae]` block for `encode_batch`'s encoder product (None where it is not used:
    architectures encoded densely, or a GPU, whose caching allocator already reuses blocks)."""
    if sae.cfg.architecture not in ("jumprelu", "standard") or device.type != "cpu":
        return None
    return torch.empty(rows, sae.cfg.d_sae, dtype=sae.dtype, device=device)


def site_activations(model: torch.nn.Module, sae: SAE, ids: torch.Tensor) -> torch.Tensor:
    """`[B*T, d_in]` activations at the SAE's site, from a forward stopped right after it."""
    site = (sae.cfg.site, sae.cfg.layer)
    return run_truncated(model, ids, [site])[site].reshape(-1, sae.cfg.d_in)


@torch.inference_mode()
def encode_scores(
    sae: SAE, x: torch.Tensor, columns: torch.Tensor | None, scratch: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`(scores [B*T, n], bias [n], threshold [n])` of `x [B*T, d_in]` for the feature `columns` (None: all),
    what `SparseBatch.from_scores` and `batch_update.update_from_scores` take.

    JumpReLU and ReLU SAEs are read from `x @ W_enc`, the bias left to be added sparsely (values
    bit-identical to `SAE.encode`); other architectures are encoded densely first. The full product is
    taken even for a few `columns`: `x @ W_enc[:, columns]` rounds differently, and a subset pass must equal
    the full one. `scratch` (`[>= B*T, d_sae]` in the SAE's dtype, from `scores_scratch`) receives the
    product instead of a new block: a pass reuses one buffer for every batch (a fresh `[1024, 65536]` block
    costs ~0.06 s of page faults on a CPU), so the scores must be used before the next batch.

    Example:
        >>> from scopewidgets.testing import random_sae, tiny_gemma3
        >>> sae = random_sae(tiny_gemma3()[0], d_sae=16)
        >>> scores, bias, threshold = encode_scores(sae, torch.randn(5, sae.cfg.d_in), torch.tensor([3, 7]))
        >>> scores.shape, bias.shape, threshold.shape
        (torch.Size([5, 2]), torch.Size([2]), torch.Size([2]))
    """
    if sae.cfg.architecture in ("jumprelu", "standard"):
        x = x.to(sae.dtype)
        if sae.cfg.apply_b_dec_to_input:
            x = x - sae.b_dec
        out = scratch[: x.shape[0]] if scratch is not None else None
        scores, bias = torch.matmul(x, sae.W_enc, out=out), sae.b_enc
        threshold = sae.threshold if sae.cfg.architecture == "jumprelu" else torch.zeros_like(sae.threshold)
    else:
        scores, bias, threshold = sae.encode(x), torch.zeros_like(sae.b_enc), torch.zeros_like(sae.threshold)
    if not bool(torch.isfinite(scores.sum())):  # one read of the block; isfinite().all() costs ~10x more
        sae.check_finite(scores, bias, threshold)  # raises, unless a finite sum overflowed
    sae.check_finite(bias, threshold)
    if columns is not None:
        scores, bias, threshold = scores.index_select(1, columns), bias[columns], threshold[columns]
    return scores, bias, threshold


@torch.inference_mode()
def encode_batch(
    sae: SAE,
    x: torch.Tensor,
    ids: torch.Tensor,
    seq: torch.Tensor,
    columns: torch.Tensor | None,
    bos: int,
    scratch: torch.Tensor | None = None,
) -> SparseBatch:
    """Encode `x [B*T, d_in]` into a `SparseBatch` of the feature `columns` (None: every feature); see
    `encode_scores`. The batch reads `scratch`, so it must not be reused while the batch is in use."""
    scores, bias, threshold = encode_scores(sae, x, columns, scratch)
    return SparseBatch.from_scores(ids, seq, scores, threshold, bos, bias)
