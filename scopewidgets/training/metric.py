"""Training an SAE in the model's output metric instead of plain squared error.

Plain MSE treats every residual direction alike, but the model does not: an error along a direction the
later layers ignore costs nothing, while a small one along a direction they read changes the next-token
distribution. The Fisher information of the next-token distribution with respect to the activation,
`F = E[g g^T]` with `g = d log p(y) / d h` for `y` sampled from the model's own prediction, says how much
the prediction moves (in KL) per unit of error along each direction: `KL ~ e^T F e / 2`.

The training metric mixes it with plain MSE so that no direction is free:
`Q = (1 - beta) F / tr(F S) + beta I / tr(S)` (`S` the activations' covariance; both terms give
`E[(x - mean)^T Q (x - mean)] = 1`, so `beta` is the share of the "budget" left to plain MSE). Training on
`z = (x - mean) @ L` with `Q = L L^T` (a `Normalizer` with `metric=L`) minimizes `e^T Q e`, and
`to_jumprelu` folds `L` back, so the saved SAE still encodes and decodes RAW activations.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from ..core.hooks import patch
from ..core.sites import site_width


def output_fisher(
    model: Any,
    windows: Iterable[torch.Tensor],
    site: str,
    layer: int,
    *,
    seed: int = 0,
    progress: bool = True,
) -> torch.Tensor:
    """`[d, d]` Fisher information of the next-token predictions w.r.t. the activation at (site, layer).

    For every batch of token windows (`[batch, seq]` ids, BOS first), a label is sampled at each position
    from the model's own prediction, and `g_t = d sum_s log p(y_s) / d h_t` (the activation at position t
    moves its own and all later predictions) is collected; the result is the mean of `g g^T` over non-BOS
    positions. Costs one full forward and backward per batch.

    Example:
        >>> from scopewidgets.testing import tiny_gemma3
        >>> model, _ = tiny_gemma3()
        >>> fisher = output_fisher(model, [torch.randint(3, 200, (2, 16))], "resid_post", 1, progress=False)
        >>> fisher.shape == (64, 64), bool(torch.allclose(fisher, fisher.T))
        (True, True)
    """
    from tqdm.auto import tqdm

    d = site_width(model, site)
    total = torch.zeros(d, d, dtype=torch.float64)
    count = 0
    gen = torch.Generator().manual_seed(seed)
    held: dict[str, torch.Tensor] = {}

    def leaf(act: torch.Tensor) -> torch.Tensor:
        held["h"] = act.detach().requires_grad_(True)
        return held["h"]

    for ids in tqdm(list(windows), desc="Output metric", unit="batch", disable=not progress):
        with torch.enable_grad(), patch(model, site, layer, leaf):
            logits = model(ids).logits.float()
            logp = logits.log_softmax(-1).flatten(0, 1)
            with torch.no_grad():
                labels = torch.multinomial(logp.exp(), 1, generator=gen)
            (grad,) = torch.autograd.grad(logp.gather(1, labels).sum(), held["h"])
        g = grad[:, 1:].reshape(-1, d).double()
        total += g.T @ g
        count += len(g)
    if not count:
        raise ValueError("output_fisher needs at least one window of two or more tokens")
    return (total / count).float()


def metric_matrix(fisher: torch.Tensor, covariance: torch.Tensor, beta: float = 0.1) -> torch.Tensor:
    """`Q = (1 - beta) F / tr(F S) + beta I / tr(S)`: the training metric (see the module docstring).

    Example:
        >>> q = metric_matrix(torch.eye(4), torch.eye(4) * 2, beta=0.5)
        >>> float(torch.trace(q @ (torch.eye(4) * 2)))
        1.0
    """
    if not 0.0 < beta <= 1.0:
        raise ValueError(f"beta must be in (0, 1], got {beta!r}")
    fisher, covariance = fisher.double(), covariance.double()
    eye = torch.eye(len(fisher), dtype=torch.float64)
    q = (1 - beta) * fisher / torch.trace(fisher @ covariance) + beta * eye / torch.trace(covariance)
    return ((q + q.T) / 2).float()


def metric_factor(q: torch.Tensor) -> torch.Tensor:
    """`L` with `Q = L L^T` (Cholesky), the `metric` of a `Normalizer`: `|(x - y) @ L|^2 = (x-y)^T Q (x-y)`.

    Example:
        >>> q = torch.tensor([[2.0, 0.5], [0.5, 1.0]])
        >>> l = metric_factor(q)
        >>> bool(torch.allclose(l @ l.T, q))
        True
    """
    return torch.linalg.cholesky(q.double()).float()


def typical_rows(sample: torch.Tensor, ratio: float = 8.0) -> torch.Tensor:
    """The rows of `[n, d]` activations whose norm is under `ratio` times the median (massive ones left out),
    for statistics such as the covariance that a handful of huge tokens would otherwise swamp.

    Example:
        >>> x = torch.randn(100, 4)
        >>> x[0] *= 1000
        >>> len(typical_rows(x))
        99
    """
    norms = (sample.float() - sample.float().median(0).values).norm(dim=-1)
    return sample[norms <= ratio * norms.median()]


def covariance(sample: torch.Tensor) -> torch.Tensor:
    """`[d, d]` covariance of `[n, d]` activations (float64 accumulation).

    Example:
        >>> covariance(torch.tensor([[1.0, 0.0], [-1.0, 0.0]])).tolist()
        [[1.0, 0.0], [0.0, 0.0]]
    """
    x = sample.double()
    x = x - x.mean(0)
    return (x.T @ x / len(x)).float()
