"""What a feature's decoder direction does downstream: logit effects and similar features.

Both are chunked so that a 262k vocabulary (or a 262k-wide SAE) times many features never needs more than
`chunk x chunk` floats at once.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

from . import sites
from .sae import SAE


def residual_directions(model: nn.Module, sae: SAE, features: torch.Tensor) -> torch.Tensor:
    """`[n, d_model]` float32: each feature's decoder row as written into the residual stream, times the
    final norm's gain (`1 + weight`), ready to be read by the unembedding.

    `attn_out` features live before `o_proj`: they go through `o_proj` and the post-attention norm's gain
    (the norm's data-dependent scale is left out, as in SAEDashboard / Neuronpedia logit effects).
    """
    device = sae.W_dec.device
    direction = sae.W_dec[features.to(device)].float()
    if (sae.cfg.site_out or sae.cfg.site) == "attn_out":
        layer = sites.decoder_layers(model)[sae.cfg.layer]
        direction = direction @ layer.self_attn.o_proj.weight.detach().to(device).float().T
        post_norm = getattr(layer, "post_attention_layernorm", None)
        if post_norm is not None:
            direction = direction * (1.0 + post_norm.weight.detach().to(device).float())
    return direction * sites.final_norm_gain(model).to(device)


def token_effects(
    model: nn.Module, sae: SAE, token_ids: Sequence[int], features: torch.Tensor | None = None
) -> torch.Tensor:
    """`[n_features, n_tokens]` float32 (CPU): the logit effect of each feature (default: all) on each of
    `token_ids`, its `residual_directions` read by those rows of the unembedding (what logit search ranks).

    Example:
        >>> from scopewidgets.testing import tiny_gemma3, random_sae
        >>> model, _ = tiny_gemma3()
        >>> token_effects(model, random_sae(model, d_sae=32), [5, 7]).shape
        torch.Size([32, 2])
    """
    features = torch.arange(sae.cfg.d_sae) if features is None else features
    directions = residual_directions(model, sae, features)
    rows = torch.as_tensor(list(token_ids), dtype=torch.long)
    unembed = sites.unembedding(model).detach()[rows].to(directions.device).float()
    return (directions @ unembed.T).cpu()


@torch.inference_mode()
def logit_effects(
    model: nn.Module,
    directions: torch.Tensor,
    k: int = 10,
    chunk: int = 16384,
    vocab: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Top and bottom `k` of `directions @ W_U.T`, over vocabulary chunks (only the token ids `vocab`,
    when given).

    Returns `(top_values, top_ids, bottom_values, bottom_ids)`, each `[n, k]`, strongest first
    (bottom: most negative first).

    Example:
        >>> from scopewidgets.testing import tiny_gemma3
        >>> model, _ = tiny_gemma3()
        >>> top, ids, bottom, bottom_ids = logit_effects(model, torch.randn(3, 64), k=5, chunk=100)
        >>> top.shape, bool((top[:, 0] >= top[:, -1]).all())
        (torch.Size([3, 5]), True)
    """
    unembed = sites.unembedding(model).detach()
    device, n = directions.device, directions.shape[0]
    vocab = torch.arange(unembed.shape[0]) if vocab is None else vocab.long().cpu()
    k = min(k, vocab.numel())
    best = (
        torch.full((n, 0), -torch.inf, device=device),
        torch.zeros((n, 0), dtype=torch.long, device=device),
    )
    worst = (
        torch.full((n, 0), torch.inf, device=device),
        torch.zeros((n, 0), dtype=torch.long, device=device),
    )
    for start in range(0, vocab.numel(), chunk):
        rows = vocab[start : start + chunk]
        first = int(rows[0])
        if torch.equal(rows, torch.arange(first, first + rows.numel())):
            weight = unembed[first : first + rows.numel()]  # a contiguous run: a view, no copy
        else:
            weight = unembed.index_select(0, rows.to(unembed.device))
        block = directions @ weight.to(device).float().T
        ids = rows.to(device).expand(n, -1)
        best = _running_topk(best, block, ids, k, largest=True)
        worst = _running_topk(worst, block, ids, k, largest=False)
    return best[0], best[1], worst[0], worst[1]


def _running_topk(
    current: tuple[torch.Tensor, torch.Tensor], block: torch.Tensor, ids: torch.Tensor, k: int, largest: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    values = torch.cat([current[0], block], dim=1)
    index = torch.cat([current[1], ids], dim=1)
    top = values.topk(min(k, values.shape[1]), dim=1, largest=largest, sorted=True)
    return top.values, index.gather(1, top.indices)


@torch.inference_mode()
def similar_features(
    sae: SAE, features: torch.Tensor, k: int = 10, chunk: int = 16384
) -> tuple[torch.Tensor, torch.Tensor]:
    """The `k` features whose decoder rows have the highest cosine with each of `features` (itself left out).

    Returns `(ids, cosines)`, each `[n, k]`, most similar first.

    Example:
        >>> from scopewidgets.testing import tiny_gemma3, random_sae
        >>> model, _ = tiny_gemma3()
        >>> ids, cos = similar_features(random_sae(model, d_sae=32), torch.tensor([3]), k=4, chunk=10)
        >>> ids.shape, 3 in ids.tolist()[0]
        (torch.Size([1, 4]), False)
    """
    w_dec = sae.W_dec.detach().float()
    device, features = w_dec.device, features.to(w_dec.device)
    norms = w_dec.norm(dim=1).clamp_min(1e-12)
    query = w_dec[features] / norms[features, None]
    n, k = features.numel(), min(k, w_dec.shape[0] - 1)
    best = (
        torch.full((n, 0), -torch.inf, device=device),
        torch.zeros((n, 0), dtype=torch.long, device=device),
    )
    for start in range(0, w_dec.shape[0], chunk):
        block = query @ (w_dec[start : start + chunk] / norms[start : start + chunk, None]).T
        ids = torch.arange(start, start + block.shape[1], device=device).expand(n, -1)
        block = block.masked_fill(ids == features[:, None], -torch.inf)
        best = _running_topk(best, block, ids, k, largest=True)
    return best[1], best[0]


def feature_logits(
    model: nn.Module,
    sae: SAE,
    features: torch.Tensor,
    k: int = 10,
    feature_chunk: int = 1024,
    progress: bool = True,
    vocab: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """`logit_effects` of `features`' decoder directions, `feature_chunk` features at a time (CPU results;
    `vocab`: only those token ids).

    Example:
        >>> from scopewidgets.testing import tiny_gemma3, random_sae
        >>> model, _ = tiny_gemma3()
        >>> top, top_ids, _, _ = feature_logits(model, random_sae(model, d_sae=32), torch.arange(32), k=3)
        >>> top.shape
        torch.Size([32, 3])
    """
    parts = []
    starts = range(0, features.numel(), feature_chunk)
    for start in tqdm(starts, desc="Logit effects", unit="chunk", disable=len(starts) < 4 or not progress):
        directions = residual_directions(model, sae, features[start : start + feature_chunk])
        parts.append([t.cpu() for t in logit_effects(model, directions, k, vocab=vocab)])
    return tuple(torch.cat([p[i] for p in parts]) for i in range(4))  # type: ignore[return-value]


def feature_similar(
    sae: SAE, features: torch.Tensor, k: int = 10, feature_chunk: int = 1024
) -> tuple[torch.Tensor, torch.Tensor]:
    """`similar_features` of `features`, `feature_chunk` at a time (bounded memory; CPU results).

    Example:
        >>> from scopewidgets.testing import tiny_gemma3, random_sae
        >>> model, _ = tiny_gemma3()
        >>> ids, cos = feature_similar(random_sae(model, d_sae=32), torch.arange(32), k=3, feature_chunk=5)
        >>> ids.shape
        torch.Size([32, 3])
    """
    parts = [
        [t.cpu() for t in similar_features(sae, features[start : start + feature_chunk], k)]
        for start in range(0, features.numel(), feature_chunk)
    ]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
