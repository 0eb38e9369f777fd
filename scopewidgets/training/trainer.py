"""The SAE training core: a (Batch)TopK autoencoder fitted on batches of activations (converted to a
JumpReLU `SAE` by `_sae_convert.to_jumprelu`).

Training happens in a normalized space `z = (x - mean) * scale` (`scale` makes the mean squared norm of the
centred activations equal `d_in`), so one learning rate suits any model; the conversion folds the mean and
the scale back into the weights, so the saved SAE encodes RAW activations and its decoder rows have unit
norm. Dead features (not fired for `dead_after` tokens) are revived by the AuxK loss (Gao et al. 2024):
they are asked to reconstruct the residual error.

Massive activations: some models write a huge value along one direction on a few tokens (Gemma 3 270M,
layer 6: ~30,000 along dimension 163 on some apostrophes, 10x the usual norm), a direction that ordinary
tokens also use. A linear encoder cannot tell "large" from "huge", so after conversion to JumpReLU such a
token would light up thousands of features. When `dominant_direction` finds such tokens, two features are
reserved for that direction (feature 0 reads and writes +u, feature 1 -u, threshold 0, so its component is
reconstructed exactly) and every other encoder column is kept orthogonal to it.

Matryoshka (Bussmann et al. 2025, "Learning Multi-Level Features with Matryoshka SAEs"): with `prefixes`
(say 128, 512, 2048 for 8,192 features), the loss is the mean of the reconstruction errors of the first 128
features alone, the first 512, the first 2,048 and all of them (the codes are selected once, over the whole
width). The first features must then reconstruct on their own, so they learn the general directions ("a
month", "a colour") that a flat SAE splits into many narrow ones and absorbs into token features.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import nn

METHODS = ("topk", "batchtopk")


@dataclass(frozen=True)
class Normalizer:
    """`z = (x - mean) @ metric * scale` (no `metric`: `(x - mean) * scale`); estimated once from a sample.

    With a `metric` A, squared distances in the normalized space are `(x - y)^T A A^T (x - y)` in raw
    units, so an SAE trained on `z` minimizes its error in that metric (see `training.metric`).
    """

    mean: torch.Tensor
    scale: float
    metric: torch.Tensor | None = None

    @classmethod
    def fit(cls, sample: torch.Tensor, metric: torch.Tensor | None = None) -> Normalizer:
        """Mean and scale from `[n, d_in]` activations (the scale makes the mean squared norm of `z` equal
        `d_in`); `metric` is a `[d_in, d_in]` matrix applied after centring."""
        mean = sample.float().mean(0)
        centred = sample.float() - mean
        if metric is not None:
            metric = metric.float()
            centred = centred @ metric
        msq = centred.pow(2).sum(-1).mean().item()
        return cls(mean=mean, scale=math.sqrt(sample.shape[-1] / max(msq, 1e-12)), metric=metric)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        z = x.float() - self.mean
        if self.metric is not None:
            z = z @ self.metric
        return z * self.scale

    def matrix(self) -> torch.Tensor:
        """`[d_in, d_in]` the whole linear map `A` of `z = (x - mean) @ A`."""
        if self.metric is None:
            return torch.eye(len(self.mean)) * self.scale
        return self.metric * self.scale


def sparse_decode(
    rows: torch.Tensor, cols: torch.Tensor, values: torch.Tensor, w_dec: torch.Tensor, n_rows: int
) -> torch.Tensor:
    """`[n_rows, d_in]`: sum of `values * w_dec[cols]` per row; `rows` must be sorted. No dense codes."""
    offsets = torch.searchsorted(rows, torch.arange(n_rows, device=rows.device))
    return F.embedding_bag(cols, w_dec, offsets, mode="sum", per_sample_weights=values)


class _SelectedProduct(torch.autograd.Function):
    """`(z @ w_enc)[rows, cols]`, read off `pre = z @ w_enc + bias` computed without grad; the backward gives
    `w_enc` its gradient through the selected entries only (a sparse matmul: ~nnz * d_in, not a dense one)."""

    @staticmethod
    def forward(ctx, w_enc, z, pre, bias, rows, cols):  # type: ignore[override]
        ctx.save_for_backward(z, rows, cols)
        ctx.width = w_enc.shape[1]
        return pre[rows, cols] - bias[cols]

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        z, rows, cols = ctx.saved_tensors
        picked = torch.sparse_coo_tensor(
            torch.stack([cols, rows]), grad, (ctx.width, len(z)), check_invariants=False
        )
        return torch.sparse.mm(picked, z).T, None, None, None, None, None


# BatchTopK finds its batch threshold on at most this many sampled pre-activations (exact below it).
_THRESHOLD_SAMPLE = 1 << 18


class TopKTrainer(nn.Module):
    """A TopK or BatchTopK SAE in the normalized space, with the AuxK dead-feature loss."""

    def __init__(
        self,
        d_in: int,
        width: int,
        k: int,
        method: str = "topk",
        seed: int = 0,
        prefixes: Sequence[int] = (),
    ) -> None:
        super().__init__()
        if method not in METHODS:
            raise ValueError(f"Unknown training method {method!r}; allowed: {', '.join(METHODS)}")
        if not 0 < k <= width:
            raise ValueError(f"k must be in [1, {width}] (the width), got {k}")
        self.prefixes = check_prefixes(prefixes, width)
        gen = torch.Generator().manual_seed(seed)
        w_dec = torch.randn(width, d_in, generator=gen)
        w_dec /= w_dec.norm(dim=-1, keepdim=True)
        self.W_dec = nn.Parameter(w_dec)
        self.W_enc = nn.Parameter(w_dec.T.clone())
        self.b_enc = nn.Parameter(torch.zeros(width))
        self.b_dec = nn.Parameter(torch.zeros(d_in))
        self.k, self.method, self.width = k, method, width
        self.max_per_token: int | None = None  # BatchTopK: most features one token may take (None: no cap)
        self.max_density: float | None = None  # BatchTopK: largest share of a batch one feature may fire on
        self._sampler = torch.Generator().manual_seed(seed + 1)
        self.register_buffer("dominant", None)  # unit [d_in]: the reserved direction (features 0 and 1)

    @property
    def n_reserved(self) -> int:
        """How many features are reserved for the dominant direction (0 or 2); they never compete."""
        return 0 if self.dominant is None else 2

    def reserve(self, direction: torch.Tensor) -> None:
        """Reserve features 0 (+direction) and 1 (-direction); other encoders become orthogonal to it."""
        if self.width < 2 + self.k:
            raise ValueError(f"Reserving a direction needs width >= k + 2 = {self.k + 2}, got {self.width}")
        self.dominant = direction.float() / direction.norm()
        self.enforce_constraints()

    @torch.no_grad()
    def enforce_constraints(self) -> None:
        """Unit decoder rows, and the reserved features' fixed weights (called after every step)."""
        self.W_dec /= self.W_dec.norm(dim=-1, keepdim=True).clamp_min(1e-8)
        if self.dominant is None:
            return
        u = self.dominant
        self.W_enc -= u[:, None] * (u @ self.W_enc)[None, :]
        self.W_enc[:, 0], self.W_enc[:, 1] = u, -u
        self.W_dec[0], self.W_dec[1] = u, -u
        shift = self.b_dec @ u  # pre_0 = (z - b_dec) @ u + b_enc_0 = z @ u
        self.b_enc[0], self.b_enc[1] = shift, -shift

    def pre(self, z: torch.Tensor) -> torch.Tensor:
        """`[batch, width]` pre-activations (the input minus the decoder bias, as in TopK SAEs); no grad."""
        with torch.no_grad():
            return torch.addmm(self._bias(), z, self.W_enc)

    def _bias(self) -> torch.Tensor:
        return self.b_enc - self.b_dec @ self.W_enc

    def select(self, pre: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The active codes as `(rows, cols, values)`, rows sorted: per-token top-k, or (BatchTopK) every
        pre-activation above the batch's threshold, so that `k` features fire per token on average (at
        most `max_per_token` on one token, and on at most a `max_density` share of the batch's tokens,
        when set). Reserved features fire whenever positive, uncounted."""
        r = self.n_reserved
        rows, cols = self._select_learned(pre[:, r:])
        cols = cols + r
        if r:
            extra_rows, extra_cols = (pre[:, :r] > 0).nonzero(as_tuple=True)
            rows, cols = torch.cat([rows, extra_rows]), torch.cat([cols, extra_cols])
            order = rows.argsort(stable=True)
            rows, cols = rows[order], cols[order]
        return rows, cols, pre[rows, cols]

    def _select_learned(self, pre: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.method == "topk":
            values, cols = pre.topk(self.k, dim=-1)
            rows = torch.arange(len(pre), device=pre.device).repeat_interleave(self.k)
            keep = values.reshape(-1) > 0
            return rows[keep], cols.reshape(-1)[keep]
        if pre.numel() > _THRESHOLD_SAMPLE:  # sample entries without copying the (strided) matrix
            picks = [torch.randint(n, (_THRESHOLD_SAMPLE,), generator=self._sampler) for n in pre.shape]
            flat = pre[picks[0], picks[1]]
        else:
            flat = pre.reshape(-1)
        share = self.k / pre.shape[1]  # the fraction of entries that fire
        threshold = flat.topk(max(1, round(share * flat.numel()))).values[-1].clamp_min(0)
        active = pre > threshold
        if self.max_per_token is not None:
            crowded = (active.sum(1) > self.max_per_token).nonzero().squeeze(1)
            if len(crowded):
                kth = pre[crowded].topk(self.max_per_token, dim=1).values[:, -1:]
                active[crowded] &= pre[crowded] >= kth
        if self.max_density is not None:
            cap = max(1, math.ceil(self.max_density * len(pre)))
            dense = (active.sum(0) > cap).nonzero().squeeze(1)
            if len(dense):  # keep each over-dense feature's `cap` strongest tokens of the batch
                kth = pre[:, dense].topk(cap, dim=0).values[-1:]
                active[:, dense] &= pre[:, dense] >= kth
        return active.nonzero(as_tuple=True)

    def dense_codes(self, z: torch.Tensor) -> torch.Tensor:
        """`[batch, width]` codes of the trained (Batch)TopK encoder."""
        pre = self.pre(z)
        rows, cols, values = self.select(pre)
        codes = torch.zeros_like(pre)
        codes[rows, cols] = values
        return codes

    def _values(
        self, z: torch.Tensor, pre: torch.Tensor, bias: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor
    ) -> torch.Tensor:
        """Pre-activations at (rows, cols), with gradients for the encoder and both biases."""
        picked = _SelectedProduct.apply(self.W_enc, z, pre, bias, rows, cols)
        return picked - (self.b_dec @ self.W_enc)[cols] + self.b_enc[cols]

    def losses(self, z: torch.Tensor, dead: torch.Tensor, aux_k: int) -> dict[str, torch.Tensor]:
        """For one batch `[batch, d_in]`: the reconstruction loss to minimize (`recon`: the FVU, or with
        `prefixes` the mean FVU of every prefix and of the whole width), the whole width's `fvu`, the
        AuxK loss on dead features, and the active codes."""
        with torch.no_grad():
            bias = self._bias()
            pre = torch.addmm(bias, z, self.W_enc)
        rows, cols, _ = self.select(pre)
        values = self._values(z, pre, bias, rows, cols)
        variance = (z - z.mean(0)).pow(2).sum(-1).mean()
        if self.prefixes:  # one decode per nested group; the prefix reconstructions are running sums
            group = torch.bucketize(cols, torch.tensor(self.prefixes, device=cols.device), right=True)
            z_hat, prefix_fvus = self.b_dec.expand_as(z), []
            for g in range(len(self.prefixes) + 1):
                m = group == g
                z_hat = z_hat + sparse_decode(rows[m], cols[m], values[m], self.W_dec, len(z))
                prefix_fvus.append((z - z_hat).pow(2).sum(-1).mean() / variance)
            fvu, recon = prefix_fvus[-1], torch.stack(prefix_fvus).mean()
        else:
            z_hat = sparse_decode(rows, cols, values, self.W_dec, len(z)) + self.b_dec
            fvu = recon = (z - z_hat).pow(2).sum(-1).mean() / variance
        error = z - z_hat
        out = {
            "fvu": fvu,
            "recon": recon,
            "aux": torch.zeros((), device=z.device),
            "rows": rows,
            "cols": cols,
        }
        dead_cols = dead[self.n_reserved :].nonzero().squeeze(1) + self.n_reserved
        if len(dead_cols) and aux_k:
            # the dead features' raw pre-activations (no ReLU: negative ones must get a gradient too)
            top = pre[:, dead_cols].topk(min(aux_k, len(dead_cols)), dim=-1).indices
            aux_rows = torch.arange(len(z), device=z.device).repeat_interleave(top.shape[1])
            aux_cols = dead_cols[top.reshape(-1)]
            aux_values = self._values(z, pre, bias, aux_rows, aux_cols)
            residual_hat = sparse_decode(aux_rows, aux_cols, aux_values, self.W_dec, len(z))
            target = error.detach()
            aux = (target - residual_hat).pow(2).sum(-1).mean() / target.pow(2).sum(-1).mean().clamp_min(
                1e-12
            )
            out["aux"] = torch.nan_to_num(aux, nan=0.0)
        return out

    @torch.no_grad()
    def project_decoder_grad(self) -> None:
        """Remove the gradient component parallel to each decoder row (it would only change its norm)."""
        if self.W_dec.grad is not None:
            parallel = (self.W_dec.grad * self.W_dec).sum(-1, keepdim=True)
            self.W_dec.grad -= parallel * self.W_dec


def check_prefixes(prefixes: Sequence[int], width: int) -> tuple[int, ...]:
    """Matryoshka prefix sizes as a tuple: ints, increasing, each in [1, width) (the whole width is implied).

    Example:
        >>> check_prefixes([128, 512], 2048)
        (128, 512)
    """
    out = tuple(prefixes)
    if any(isinstance(p, bool) or not isinstance(p, int) for p in out):
        raise ValueError(f"Matryoshka prefixes must be ints, got {list(prefixes)!r}")
    if any(not 0 < p < width for p in out) or any(a >= b for a, b in pairwise(out)):
        raise ValueError(
            f"Matryoshka prefixes must increase strictly within [1, {width - 1}] (the whole width "
            f"{width} is implied), got {list(prefixes)!r}"
        )
    return out


def dominant_direction(z: torch.Tensor, ratio: float = 8.0, min_count: int = 3) -> torch.Tensor | None:
    """The direction of massive activations in normalized activations `z [n, d_in]`, or None.

    Tokens whose norm exceeds `ratio` times the median are massive; when there are at least `min_count`,
    returns the unit direction of their mean deviation from the other tokens.

    Example:
        >>> z = torch.randn(1000, 8)
        >>> dominant_direction(z) is None
        True
        >>> z[:5, 3] += 100.0
        >>> dominant_direction(z).abs().argmax().item()
        3
    """
    norms = z.norm(dim=-1)
    massive = norms > ratio * norms.median()
    if int(massive.sum()) < min_count:
        return None
    deviation = z[massive].mean(0) - z[~massive].mean(0)
    return deviation / deviation.norm()
