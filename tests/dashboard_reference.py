"""Brute-force dashboards: every statistic recomputed from the dense activations of the whole corpus, with
plain loops, to check the one-pass engine against."""

from __future__ import annotations

import itertools

import numpy as np
import torch

from scopewidgets.core import sites
from scopewidgets.dashboards.select import sample_keys


def dense_activations(scope, sae, tokens: torch.Tensor, batch: int = 16) -> torch.Tensor:
    """`[n_seq, T, d_sae]` activations of a token corpus (BOS zeroed), via `Scope.encode`."""
    return torch.cat(
        [scope.encode(tokens[i : i + batch], [sae])[0].cpu() for i in range(0, len(tokens), batch)]
    )


def stats(acts: torch.Tensor, tokens: torch.Tensor, bos: int, feature: int) -> dict:
    values = acts[..., feature][tokens != bos]
    active = values[values > 0]
    return {
        "n_tokens": int((tokens != bos).sum()),
        "density": float((values > 0).sum()) / int((tokens != bos).sum()),
        "max": float(active.max()) if active.numel() else 0.0,
        "mean": float(active.double().mean()) if active.numel() else 0.0,
        "values": active,
    }


def top_examples(acts: torch.Tensor, tokens: torch.Tensor, feature: int, k: int, context: int) -> list[dict]:
    """Sequences ordered by (max desc, index asc), each with the window around its first maximum."""
    rows = []
    for seq in range(acts.shape[0]):
        column = acts[seq, :, feature]
        peak = float(column.max())
        if peak > 0:
            pos = int(torch.nonzero(column == column.max())[0])
            rows.append((-peak, seq, pos))
    rows.sort()
    out = []
    for neg_peak, seq, pos in rows[:k]:
        lo, hi = max(0, pos - context), min(acts.shape[1], pos + context + 1)
        out.append(
            {
                "value": -neg_peak,
                "seq": seq,
                "pos": pos,
                "ids": tokens[seq, lo:hi].tolist(),
                "values": acts[seq, lo:hi, feature],
                "focus": pos - lo,
            }
        )
    return out


def histogram_counts(values: torch.Tensor, edges: np.ndarray) -> np.ndarray:
    """Counts of `values` in `[edges[i], edges[i + 1])`, by direct comparison."""
    v = values.double().numpy()
    return np.array([int(((v >= lo) & (v < hi)).sum()) for lo, hi in itertools.pairwise(edges)])


def quantile_sample(acts, tokens, bos, feature, lower, upper, per_group, stride, seed=0) -> tuple[int, list]:
    """(count, [(seq, pos)] of the `per_group` smallest sample keys) among tokens with lower <= v < upper."""
    values = acts[..., feature]
    hit = (values >= lower) & (values < upper) & (values > 0) & (tokens != bos)
    seq, pos = torch.nonzero(hit, as_tuple=True)
    keys = sample_keys(seq * stride + pos, torch.full_like(seq, feature), seed)
    order = torch.argsort(keys)[:per_group]
    return int(hit.sum()), sorted(zip(seq[order].tolist(), pos[order].tolist(), strict=True))


def logit_effects(model, sae, feature: int, k: int = 10) -> tuple[list[int], list[int]]:
    direction = sae.W_dec[feature].double() * sites.final_norm_gain(model).double()
    logits = sites.unembedding(model).double() @ direction
    return logits.topk(k).indices.tolist(), logits.topk(k, largest=False).indices.tolist()


def similar(sae, feature: int, k: int = 10) -> list[int]:
    w = sae.W_dec.double()
    cos = (w / w.norm(dim=1, keepdim=True)) @ (w[feature] / w[feature].norm())
    cos[feature] = -2
    return cos.topk(k).indices.tolist()


def assert_same(a, b) -> None:
    """Two `DashboardState`s hold the same tensors (tables in canonical order; totals, float64 sums taken in
    another order, to 1e-12)."""
    ta, tb = a.tensors(), b.tensors()
    for name in ta:
        if name == "total":
            torch.testing.assert_close(ta[name], tb[name], rtol=1e-12, atol=0)
        else:
            assert torch.equal(ta[name], tb[name]), name
