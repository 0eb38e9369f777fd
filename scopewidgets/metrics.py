"""Reconstruction metrics of SAEs on a model: L0, FVU, and next-token loss with the SAE spliced in.

Definitions (REFERENCE.md), BOS excluded throughout:
- `l0`: mean number of non-zero features per non-BOS token;
- `fvu`: sum ||x - x_hat||^2 / sum ||x - mean(x)||^2 over non-BOS tokens;
- `ce_clean`: mean next-token cross-entropy of the untouched model, over predictions made from non-BOS
  positions;
- `ce_spliced`: the same with the SAE's reconstruction written at its site (BOS positions untouched);
- `ce_ablated`: the same with the site zeroed (BOS untouched);
- `frac_loss_recovered`: (ce_ablated - ce_spliced) / (ce_ablated - ce_clean).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .core import validate as checked
from .core.corpus import bos_id, token_windows
from .core.hooks import capture, patch
from .core.sae import SAE

if TYPE_CHECKING:
    from .core.engine import Engine


@dataclass
class _Totals:
    """Running sums for one SAE (float64, so long corpora do not lose precision)."""

    tokens: int = 0
    l0: float = 0.0
    sse: float = 0.0
    sum_x: torch.Tensor | None = None
    sum_sq: float = 0.0
    ce_spliced: float = 0.0
    ce_ablated: float = 0.0

    def add_reconstruction(self, x: torch.Tensor, x_hat: torch.Tensor, feats: torch.Tensor) -> None:
        x, x_hat = x.double(), x_hat.double()
        self.tokens += x.shape[0]
        self.l0 += float((feats > 0).sum())
        self.sse += float(((x - x_hat) ** 2).sum())
        self.sum_sq += float((x**2).sum())
        self.sum_x = x.sum(0) if self.sum_x is None else self.sum_x + x.sum(0)

    def fvu(self) -> float:
        assert self.sum_x is not None
        total_var = self.sum_sq - float((self.sum_x**2).sum()) / self.tokens
        return self.sse / total_var


def _next_token_ce(logits: torch.Tensor, ids: torch.Tensor, keep: torch.Tensor) -> tuple[float, int]:
    """Summed CE of predicting ids[:, 1:] from positions where `keep[:, :-1]`; returns (sum, count)."""
    losses = F.cross_entropy(logits[:, :-1].float().flatten(0, 1), ids[:, 1:].flatten(), reduction="none")
    mask = keep[:, :-1].flatten()
    return float(losses[mask].sum()), int(mask.sum())


def _writer(values: torch.Tensor, keep: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """An edit that writes `values` at positions `keep` and leaves the other positions (BOS) untouched."""

    def edit(h: torch.Tensor) -> torch.Tensor:
        return torch.where(keep[..., None], values.to(h.dtype), h)

    return edit


@torch.inference_mode()
def evaluate(
    scope: Engine, texts: Any, saes: Sequence[SAE], *, seq_len: int = 128, batch_size: int = 8
) -> pd.DataFrame:
    """One row per SAE with l0, fvu, ce_clean, ce_spliced, ce_ablated, frac_loss_recovered (see module doc).

    Example:
        >>> scope.evaluate(texts)                                              # doctest: +SKIP
    """
    if not saes:
        raise ValueError("evaluate needs at least one SAE")
    seq_len = checked.integer(seq_len, "seq_len", minimum=2)
    batch_size = checked.integer(batch_size, "batch_size", minimum=1)
    model, device = scope.model, scope.device
    windows = token_windows(scope.tokenizer, texts, seq_len)
    bos = bos_id(scope.tokenizer)
    totals = [_Totals() for _ in saes]
    ce_clean, n_pred = 0.0, 0
    read_sites = [(s.cfg.site, s.cfg.layer) for s in saes] + [
        (s.cfg.site_out, s.cfg.layer) for s in saes if s.cfg.site_out
    ]
    for start in tqdm(range(0, len(windows), batch_size), desc="evaluate", unit="batch", leave=False):
        ids = windows[start : start + batch_size].to(device)
        keep = ids != bos
        with capture(model, read_sites, stop=False) as acts:
            logits = model(input_ids=ids, use_cache=False).logits
        loss, count = _next_token_ce(logits, ids, keep)
        ce_clean, n_pred = ce_clean + loss, n_pred + count
        for sae, total in zip(saes, totals, strict=True):
            x_in = acts[sae.cfg.site, sae.cfg.layer]
            write_site = sae.cfg.site_out or sae.cfg.site
            target = acts[write_site, sae.cfg.layer]
            feats = sae.encode(x_in)
            x_hat = sae.decode(feats)
            if sae.W_skip is not None:
                x_hat = x_hat + x_in.to(sae.dtype) @ sae.W_skip
            total.add_reconstruction(target[keep], x_hat[keep], feats[keep])
            for field, values in (("ce_spliced", x_hat), ("ce_ablated", torch.zeros_like(target))):
                with patch(model, write_site, sae.cfg.layer, _writer(values, keep)):
                    edited = model(input_ids=ids, use_cache=False).logits
                setattr(total, field, getattr(total, field) + _next_token_ce(edited, ids, keep)[0])
    if n_pred == 0:
        raise ValueError("evaluate needs texts of at least two tokens after BOS")
    return _table(saes, totals, ce_clean / n_pred, n_pred)


def _table(saes: Sequence[SAE], totals: Sequence[_Totals], ce_clean: float, n_pred: int) -> pd.DataFrame:
    rows = []
    for sae, total in zip(saes, totals, strict=True):
        spliced, ablated = total.ce_spliced / n_pred, total.ce_ablated / n_pred
        rows.append(
            {
                "sae": f"{sae.cfg.site}@{sae.cfg.layer}/{sae.cfg.d_sae}",
                "l0": total.l0 / total.tokens,
                "fvu": total.fvu(),
                "ce_clean": ce_clean,
                "ce_spliced": spliced,
                "ce_ablated": ablated,
                "frac_loss_recovered": (ablated - spliced) / (ablated - ce_clean)
                if ablated != ce_clean
                else float("nan"),
                "tokens": total.tokens,
            }
        )
    return pd.DataFrame(rows).set_index("sae")
