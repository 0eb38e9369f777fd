"""Converting a trained (Batch)TopK SAE to JumpReLU: per-feature thresholds calibrated to reproduce the
TopK codes, and the normalization folded into the weights so that the SAE encodes RAW activations; and
back (`from_jumprelu`), so that training can go on from a finished SAE in any normalized space."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

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

    With `z = (x - mean) @ A` (`A = norm.matrix()`, `scale * I` without a metric), the decoder maps codes to
    `x = (c @ W_dec + b_dec) @ A^-1 + mean`; its rows `W_dec @ A^-1` are rescaled to unit norm (`n_f` the
    norm of row f) and each feature's code by `n_f`, so: `W_dec' = (W_dec @ A^-1) / n`,
    `W_enc' = (A @ W_enc) * n`, `b_enc' = (b_enc - b_dec @ W_enc - mean @ A @ W_enc) * n`,
    `threshold = theta * n`, `b_dec' = b_dec @ A^-1 + mean`. For `A = scale * I`, `n = 1 / scale`.
    """
    calibrator = ThresholdCalibrator(trainer.width)
    for x in calibration:
        calibrator.update(trainer, norm(x))
    theta = calibrator.thresholds()
    theta[: trainer.n_reserved] = 0.0  # the reserved features fire whenever positive
    with torch.no_grad():
        a = norm.matrix().double()
        a_inv = torch.linalg.inv(a)
        w_enc = a @ trainer.W_enc.detach().double()
        w_dec = trainer.W_dec.detach().double() @ a_inv
        n = w_dec.norm(dim=-1).clamp_min(1e-12)
        b_enc = (trainer._bias().double() - norm.mean.double() @ w_enc) * n
        finite_max = torch.finfo(torch.bfloat16).max / 2  # "never fires", and still finite in bf16
        threshold = torch.where(theta.isfinite(), theta * n.float(), torch.full_like(theta, finite_max))
        tensors = {
            "W_enc": (w_enc * n).float(),
            "W_dec": (w_dec / n[:, None]).float(),
            "b_enc": b_enc.float(),
            "b_dec": (trainer.b_dec.detach().double() @ a_inv + norm.mean.double()).float(),
            "threshold": threshold,
        }
    sae = SAE.from_tensors(cfg, tensors)
    for feature, sign in zip(range(trainer.n_reserved), "+-", strict=False):
        sae.labels[feature] = f"reserved: dominant residual direction ({sign}), massive activations"
    return sae


def from_jumprelu(
    sae: SAE,
    norm: Normalizer,
    k: int,
    method: str = "batchtopk",
    seed: int = 0,
    prefixes: Sequence[int] = (),
) -> TopKTrainer:
    """The (Batch)TopK trainer whose `to_jumprelu(..., norm)` has `sae`'s weights: `to_jumprelu` inverted.

    Any normalizer works (the map is a change of variables), so a finished SAE can be trained further on
    new data with a normalizer fitted to that data, without the first run's checkpoint. With `A =
    norm.matrix()`: decoder rows `W_dec = n * (W_dec' @ A)` with `n` making them unit rows, `W_enc = A^-1 @
    W_enc' / n`, `b_dec = (b_dec' - mean) @ A`, and `b_enc` such that the trainer's pre-activations are the
    SAE's divided by `n`. A SAE whose features 0 and 1 are reserved (opposite decoder rows, as `to_jumprelu`
    writes them) gets the dominant direction reserved again. Thresholds are not carried over: the trainer
    selects by `k`; `prefixes` (Matryoshka, as the SAE was trained) are the trainer's.

    Example:
        >>> from scopewidgets.testing import random_sae, tiny_gemma2
        >>> sae = random_sae(tiny_gemma2()[0], "resid_post", 1, d_sae=32)
        >>> norm = Normalizer(torch.zeros(sae.cfg.d_in), 2.0)
        >>> back = to_jumprelu(from_jumprelu(sae, norm, k=4), norm, [torch.randn(64, sae.cfg.d_in)], sae.cfg)
        >>> bool(torch.allclose(back.W_dec, sae.W_dec, atol=1e-5))
        True
    """
    if sae.cfg.architecture not in ("jumprelu", "standard") or sae.cfg.apply_b_dec_to_input:
        raise ValueError(
            f"from_jumprelu reads a JumpReLU/ReLU SAE without b_dec applied to its input, got "
            f"{sae.cfg.architecture!r} (apply_b_dec_to_input={sae.cfg.apply_b_dec_to_input})"
        )
    with torch.no_grad():
        a = norm.matrix().double()
        w_enc_raw, w_dec_raw = sae.W_enc.detach().double().cpu(), sae.W_dec.detach().double().cpu()
        w_dec = w_dec_raw @ a
        n = 1.0 / w_dec.norm(dim=-1).clamp_min(1e-12)  # to_jumprelu's n: the norm of W_dec @ A^-1 rows
        w_dec = w_dec * n[:, None]
        w_enc = torch.linalg.solve(a, w_enc_raw) / n
        b_dec = (sae.b_dec.detach().double().cpu() - norm.mean.double()) @ a
        bias = sae.b_enc.detach().double().cpu() / n + norm.mean.double() @ (w_enc_raw / n)
        trainer = TopKTrainer(sae.cfg.d_in, sae.cfg.d_sae, k, method=method, seed=seed, prefixes=prefixes)
        trainer.W_dec.copy_(w_dec.float())
        trainer.W_enc.copy_(w_enc.float())
        trainer.b_dec.copy_(b_dec.float())
        trainer.b_enc.copy_((bias + b_dec @ w_enc).float())  # `_bias()` = b_enc - b_dec @ W_enc
    if sae.cfg.d_sae >= 2 and bool(torch.allclose(sae.W_dec[0], -sae.W_dec[1], atol=1e-3)):
        trainer.reserve(trainer.W_dec[0].detach().clone())
    return trainer
