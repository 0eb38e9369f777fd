"""One batch of a dashboard pass: the forward stopped after the SAE's site, and its features in sparse form.

The pass never materialises more than one batch of activations, and touches the dense `[tokens, d_sae]`
block only three times (the encoder's matmul, one comparison, one `nonzero`). Everything after that is
proportional to the number of active (token, feature) pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .hooks import capture
from .sae import SAE


@dataclass
class SparseBatch:
    """The active features of a batch of `B` sequences of `T` tokens (BOS never included).

    `ids [B, T]` token ids; `seq [B]` int64 sequence indices in the corpus; `row [nnz]` flat token index
    `b * T + t`; `col [nnz]` feature column; `value [nnz]` float32 activation (> 0); `n_tokens` non-BOS
    tokens. `scores`/`threshold`/`not_bos` let `at` read any (token, column) activation, active or not.
    """

    ids: torch.Tensor
    seq: torch.Tensor
    row: torch.Tensor
    col: torch.Tensor
    value: torch.Tensor
    n_tokens: int
    scores: torch.Tensor
    threshold: torch.Tensor
    not_bos: torch.Tensor

    @classmethod
    def from_scores(
        cls, ids: torch.Tensor, seq: torch.Tensor, scores: torch.Tensor, threshold: torch.Tensor, bos: int
    ) -> SparseBatch:
        """Activations are `scores` where `scores > max(threshold, 0)`, else 0; BOS tokens are dropped.

        `scores [B*T, n_f]`: JumpReLU pre-activations with its threshold, ReLU pre-activations with a
        zero threshold, or finished activations (any architecture) with a zero threshold.

        Example:
            >>> ids = torch.tensor([[2, 5, 6]])
            >>> batch = SparseBatch.from_scores(ids, torch.tensor([0]), torch.tensor([[9.], [1.], [-1.]]),
            ...                                 torch.zeros(1), bos=2)
            >>> batch.row.tolist(), batch.value.tolist(), batch.n_tokens
            ([1], [1.0], 2)
        """
        threshold = threshold.clamp(min=0).to(scores.dtype)
        not_bos = ids.reshape(-1) != bos
        row, col = torch.nonzero(scores > threshold, as_tuple=True)
        keep = not_bos[row]
        row, col = row[keep], col[keep]
        return cls(
            ids=ids,
            seq=seq,
            row=row,
            col=col,
            value=scores[row, col].float(),
            n_tokens=int(not_bos.sum()),
            scores=scores,
            threshold=threshold,
            not_bos=not_bos,
        )

    @property
    def shape(self) -> tuple[int, int]:
        """`(B, T)`."""
        return (int(self.ids.shape[0]), int(self.ids.shape[1]))

    def at(self, row: torch.Tensor, col: torch.Tensor) -> torch.Tensor:
        """Float32 activations at flat token indices `row [N, W]` of columns `col [N, 1]`; 0 at BOS."""
        flat = (row * self.scores.shape[1] + col).reshape(-1)
        score = self.scores.reshape(-1).index_select(0, flat).view(row.shape)
        threshold = self.threshold.index_select(0, col.reshape(-1)).view(col.shape)
        active = (score > threshold) & self.not_bos.index_select(0, row.reshape(-1)).view(row.shape)
        return torch.where(active, score, torch.zeros_like(score)).float()


def site_activations(model: torch.nn.Module, sae: SAE, ids: torch.Tensor) -> torch.Tensor:
    """`[B*T, d_in]` activations at the SAE's site, from a forward stopped right after it."""
    with torch.inference_mode(), capture(model, [(sae.cfg.site, sae.cfg.layer)]) as acts:
        model(input_ids=ids, use_cache=False)
    return acts[sae.cfg.site, sae.cfg.layer].reshape(-1, sae.cfg.d_in)


@torch.inference_mode()
def encode_batch(
    sae: SAE, x: torch.Tensor, ids: torch.Tensor, seq: torch.Tensor, columns: torch.Tensor | None, bos: int
) -> SparseBatch:
    """Encode `x [B*T, d_in]` into a `SparseBatch` of the feature `columns` (None: every feature).

    JumpReLU and ReLU SAEs are read from their pre-activations (bit-identical to `SAE.encode`, one pass
    fewer); other architectures are encoded densely first.
    """
    architecture = sae.cfg.architecture
    if architecture in ("jumprelu", "standard"):
        scores = sae.pre_activations(x)
        threshold = sae.threshold if architecture == "jumprelu" else torch.zeros_like(sae.threshold)
    else:
        scores = sae.encode(x)
        threshold = torch.zeros_like(sae.threshold)
    if columns is not None:
        scores, threshold = scores.index_select(1, columns), threshold[columns]
    return SparseBatch.from_scores(ids, seq, scores, threshold, bos)
