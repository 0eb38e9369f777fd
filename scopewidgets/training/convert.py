"""Converting a trained (Batch)TopK SAE to JumpReLU: per-feature thresholds calibrated to reproduce the
TopK codes, and the normalization folded into the weights so that the SAE encodes RAW activations."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from ..core.sae import SAE, SAEConfig
from .trainer import Normalizer, TopKTrainer

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
    theta[: trainer.n_reserved] = 0.0  # the reserved features fire whenever positive
    with torch.no_grad():
        w_enc = trainer.W_enc.detach().float()
        s, mean = norm.scale, norm.mean
        b_enc = trainer._bias().float() / s - mean @ w_enc
        finite_max = torch.finfo(torch.bfloat16).max / 2  # "never fires", and still finite in bf16
        threshold = torch.where(theta.isfinite(), theta / s, torch.full_like(theta, finite_max))
        tensors = {
            "W_enc": w_enc,
            "W_dec": trainer.W_dec.detach().float(),
            "b_enc": b_enc,
            "b_dec": trainer.b_dec.detach() / s + mean,
            "threshold": threshold,
        }
    sae = SAE.from_tensors(cfg, tensors)
    for feature, sign in zip(range(trainer.n_reserved), "+-", strict=False):
        sae.labels[feature] = f"reserved: dominant residual direction ({sign}), massive activations"
    return sae
