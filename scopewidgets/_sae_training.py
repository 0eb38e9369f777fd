"""The SAE training core: a (Batch)TopK autoencoder fitted on batches of activations, then converted to a
JumpReLU `SAE` with per-feature thresholds calibrated to reproduce the TopK codes.

Training happens in a normalized space `z = (x - mean) * scale` (`scale` makes the mean squared norm of the
centred activations equal `d_in`), so one learning rate suits any model; the conversion folds the mean and
the scale back into the weights, so the saved SAE encodes RAW activations and its decoder rows have unit
norm. Dead features (not fired for `dead_after` tokens) are revived by the AuxK loss (Gao et al. 2024):
they are asked to reconstruct the residual error.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .sae import SAE, SAEConfig

METHODS = ("topk", "batchtopk")


@dataclass(frozen=True)
class Normalizer:
    """`z = (x - mean) * scale`; estimated once from a sample of activations."""

    mean: torch.Tensor
    scale: float

    @classmethod
    def fit(cls, sample: torch.Tensor) -> Normalizer:
        """Mean and scale from `[n, d_in]` activations."""
        mean = sample.float().mean(0)
        msq = (sample.float() - mean).pow(2).sum(-1).mean().item()
        return cls(mean=mean, scale=math.sqrt(sample.shape[-1] / max(msq, 1e-12)))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return (x.float() - self.mean) * self.scale


def sparse_decode(
    rows: torch.Tensor, cols: torch.Tensor, values: torch.Tensor, w_dec: torch.Tensor, n_rows: int
) -> torch.Tensor:
    """`[n_rows, d_in]`: sum of `values * w_dec[cols]` per row; `rows` must be sorted. No dense codes."""
    offsets = torch.searchsorted(rows, torch.arange(n_rows, device=rows.device))
    return F.embedding_bag(cols, w_dec, offsets, mode="sum", per_sample_weights=values)


class _SelectedProduct(torch.autograd.Function):
    """`product[rows, cols]` where `product = z @ w_enc` was computed without grad; the backward gives
    `w_enc` its gradient through the selected entries only (a sparse matmul: ~nnz * d_in, not a dense one)."""

    @staticmethod
    def forward(ctx, w_enc, z, product, rows, cols):  # type: ignore[override]
        ctx.save_for_backward(z, rows, cols)
        ctx.width = w_enc.shape[1]
        return product[rows, cols]

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        z, rows, cols = ctx.saved_tensors
        picked = torch.sparse_coo_tensor(
            torch.stack([cols, rows]), grad, (ctx.width, len(z)), check_invariants=False
        )
        return torch.sparse.mm(picked, z).T, None, None, None, None


# BatchTopK finds its batch threshold on at most this many sampled pre-activations (exact below it).
_THRESHOLD_SAMPLE = 1 << 20


class TopKTrainer(nn.Module):
    """A TopK or BatchTopK SAE in the normalized space, with the AuxK dead-feature loss."""

    def __init__(self, d_in: int, width: int, k: int, method: str = "topk", seed: int = 0) -> None:
        super().__init__()
        if method not in METHODS:
            raise ValueError(f"Unknown training method {method!r}; allowed: {', '.join(METHODS)}")
        if not 0 < k <= width:
            raise ValueError(f"k must be in [1, {width}] (the width), got {k}")
        gen = torch.Generator().manual_seed(seed)
        w_dec = torch.randn(width, d_in, generator=gen)
        w_dec /= w_dec.norm(dim=-1, keepdim=True)
        self.W_dec = nn.Parameter(w_dec)
        self.W_enc = nn.Parameter(w_dec.T.clone())
        self.b_enc = nn.Parameter(torch.zeros(width))
        self.b_dec = nn.Parameter(torch.zeros(d_in))
        self.k, self.method, self.width = k, method, width
        self._sampler = torch.Generator().manual_seed(seed + 1)

    def pre(self, z: torch.Tensor) -> torch.Tensor:
        """`[batch, width]` pre-activations (the input minus the decoder bias, as in TopK SAEs); no grad."""
        with torch.no_grad():
            return (z - self.b_dec) @ self.W_enc + self.b_enc

    def select(self, pre: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The active codes as `(rows, cols, values)`, rows sorted: per-token top-k, or (BatchTopK) every
        pre-activation above the batch's threshold, so that `k` features fire per token on average (at
        most `4k` on one token)."""
        if self.method == "topk":
            values, cols = pre.topk(self.k, dim=-1)
            rows = torch.arange(len(pre), device=pre.device).repeat_interleave(self.k)
            cols, values = cols.reshape(-1), values.reshape(-1)
            keep = values > 0
            return rows[keep], cols[keep], values[keep]
        flat = pre.reshape(-1)
        share = self.k / self.width  # the fraction of entries that fire
        if flat.numel() > _THRESHOLD_SAMPLE:
            flat = flat[torch.randint(flat.numel(), (_THRESHOLD_SAMPLE,), generator=self._sampler)]
        threshold = flat.topk(max(1, round(share * flat.numel()))).values[-1].clamp_min(0)
        active = pre > threshold
        crowded = (active.sum(1) > 4 * self.k).nonzero().squeeze(1)
        if len(crowded):  # outlier tokens (huge norms) keep at most 4k features, as in BatchTopK's spirit
            kth = pre[crowded].topk(4 * self.k, dim=1).values[:, -1:]
            active[crowded] &= pre[crowded] >= kth
        rows, cols = active.nonzero(as_tuple=True)
        return rows, cols, pre[rows, cols]

    def dense_codes(self, z: torch.Tensor) -> torch.Tensor:
        """`[batch, width]` codes of the trained (Batch)TopK encoder."""
        pre = self.pre(z)
        rows, cols, values = self.select(pre)
        codes = torch.zeros_like(pre)
        codes[rows, cols] = values
        return codes

    def _values(
        self, z: torch.Tensor, product: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor
    ) -> torch.Tensor:
        """Pre-activations at (rows, cols), with gradients for the encoder and both biases."""
        picked = _SelectedProduct.apply(self.W_enc, z, product, rows, cols)
        return picked - (self.b_dec @ self.W_enc)[cols] + self.b_enc[cols]

    def losses(self, z: torch.Tensor, dead: torch.Tensor, aux_k: int) -> dict[str, torch.Tensor]:
        """MSE (as FVU), AuxK loss on dead features, and the active codes, for one batch `[batch, d_in]`."""
        with torch.no_grad():
            product = z @ self.W_enc
            pre = product - self.b_dec @ self.W_enc + self.b_enc
        rows, cols, _ = self.select(pre)
        values = self._values(z, product, rows, cols)
        z_hat = sparse_decode(rows, cols, values, self.W_dec, len(z)) + self.b_dec
        variance = (z - z.mean(0)).pow(2).sum(-1).mean()
        error = z - z_hat
        fvu = error.pow(2).sum(-1).mean() / variance
        out = {"fvu": fvu, "aux": torch.zeros((), device=z.device), "rows": rows, "cols": cols}
        dead_cols = dead.nonzero().squeeze(1)
        if len(dead_cols) and aux_k:
            # the dead features' raw pre-activations (no ReLU: negative ones must get a gradient too)
            top = pre[:, dead_cols].topk(min(aux_k, len(dead_cols)), dim=-1).indices
            aux_rows = torch.arange(len(z), device=z.device).repeat_interleave(top.shape[1])
            aux_cols = dead_cols[top.reshape(-1)]
            aux_values = self._values(z, product, aux_rows, aux_cols)
            residual_hat = sparse_decode(aux_rows, aux_cols, aux_values, self.W_dec, len(z))
            target = error.detach()
            aux = (target - residual_hat).pow(2).sum(-1).mean() / target.pow(2).sum(-1).mean().clamp_min(
                1e-12
            )
            out["aux"] = torch.nan_to_num(aux, nan=0.0)
        return out

    @torch.no_grad()
    def normalize_decoder(self) -> None:
        """Keep decoder rows at unit norm (called after every optimizer step)."""
        self.W_dec /= self.W_dec.norm(dim=-1, keepdim=True).clamp_min(1e-8)

    @torch.no_grad()
    def project_decoder_grad(self) -> None:
        """Remove the gradient component parallel to each decoder row (it would only change its norm)."""
        if self.W_dec.grad is not None:
            parallel = (self.W_dec.grad * self.W_dec).sum(-1, keepdim=True)
            self.W_dec.grad -= parallel * self.W_dec


# Geometric bin edges for threshold calibration, in the normalized space: 1e-4 .. 1e3 (~1.6% apart).
_EDGES = torch.logspace(-4, 3, 1024)


class ThresholdCalibrator:
    """Chooses, per feature, the JumpReLU threshold that best reproduces the (Batch)TopK firing pattern.

    Over calibration batches it histograms each feature's positive pre-activations, split into "selected by
    TopK" and "not selected"; the threshold is the bin edge minimizing false positives + false negatives.
    """

    def __init__(self, width: int) -> None:
        self.selected = torch.zeros(width, len(_EDGES) + 1)
        self.everything = torch.zeros(width, len(_EDGES) + 1)

    @torch.no_grad()
    def update(self, trainer: TopKTrainer, z: torch.Tensor) -> None:
        pre = trainer.pre(z)
        _, cols, values = trainer.select(pre)
        width = pre.shape[1]
        bins = torch.bucketize(pre.clamp_min(0), _EDGES)
        feature = torch.arange(width).expand_as(bins)
        self.everything.view(-1).index_add_(
            0, (feature * (len(_EDGES) + 1) + bins).reshape(-1), torch.ones(bins.numel())
        )
        sel_bins = torch.bucketize(values, _EDGES)
        self.selected.view(-1).index_add_(0, cols * (len(_EDGES) + 1) + sel_bins, torch.ones(len(cols)))

    def thresholds(self) -> torch.Tensor:
        """`[width]` thresholds; features never selected get +inf (they never fire)."""
        # values above edge j = counts in bins j+1.. (bucketize: bin j+1 holds edge_j < v <= edge_j+1)
        above_all = self.everything.flip(1).cumsum(1).flip(1)[:, 1:]
        above_sel = self.selected.flip(1).cumsum(1).flip(1)[:, 1:]
        errors = above_all - 2 * above_sel
        best = errors.argmin(dim=1)
        theta = _EDGES[best]
        theta[self.selected.sum(1) == 0] = float("inf")
        return theta


def to_jumprelu(
    trainer: TopKTrainer, norm: Normalizer, calibration: Iterable[torch.Tensor], cfg: SAEConfig
) -> SAE:
    """Fold normalization into the weights and calibrate thresholds: a JumpReLU `SAE` on RAW activations.

    Raw codes are the normalized codes divided by `scale`, so with unit decoder rows:
    `W_enc` unchanged, `b_enc = (b_enc - b_dec @ W_enc) / scale - mean @ W_enc`, `threshold = theta / scale`,
    `b_dec = b_dec / scale + mean`.
    """
    calibrator = ThresholdCalibrator(trainer.width)
    for x in calibration:
        calibrator.update(trainer, norm(x))
    theta = calibrator.thresholds()
    with torch.no_grad():
        w_enc = trainer.W_enc.detach().float()
        s, mean = norm.scale, norm.mean
        b_enc = (trainer.b_enc - trainer.b_dec @ w_enc) / s - mean @ w_enc
        finite_max = torch.finfo(torch.bfloat16).max / 2  # "never fires", and still finite in bf16
        threshold = torch.where(theta.isfinite(), theta / s, torch.full_like(theta, finite_max))
        tensors = {
            "W_enc": w_enc,
            "W_dec": trainer.W_dec.detach().float(),
            "b_enc": b_enc,
            "b_dec": trainer.b_dec.detach() / s + mean,
            "threshold": threshold,
        }
    return SAE.from_tensors(cfg, tensors)
