"""Exact fingerprints of what a dashboard pass reads, recomputed only when a tensor may have changed.

A pass at (site, layer) reads the model up to that layer (embedding, decoder layers `0..layer`, rotary
buffers) and the SAE; the later layers, the final norm and the LM head do not change it, so editing them
keeps a cached pass valid. The fingerprint hashes every byte of the tensors read (SHA-256), with the model's
class and config and the SAE's config.

Hashing every byte costs about as much as one forward, so it is memoised on each tensor's *signature*:
its identity, storage address, shape, dtype and autograd version counter. The version counter moves on
every in-place edit (`weight.mul_(3)`, `threshold.fill_(0.5)`, `param[0] = 1` under `no_grad`) and a
`param.data = new` swap changes the storage address, so those are caught at the cost of reading the
signatures (microseconds). Edits through `param.data.mul_(...)` bypass the version counter by design in
PyTorch; to catch them too, the memo is trusted only together with a cheap content probe: the wrapping int64
sum of each tensor's raw bytes, computed on the tensor's own device (a tenth of a full hash; see
benchmarks/fingerprint_cost.py).
"""

from __future__ import annotations

import hashlib
import json
import weakref
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from . import sites
from .sae import SAE

# model or SAE -> {key: (signatures, probe, hash)}; entries go when the module is collected
_MEMO: weakref.WeakKeyDictionary[nn.Module, dict[Any, tuple[tuple, tuple, str]]] = weakref.WeakKeyDictionary()


def pass_tensors(model: nn.Module, layer: int, head: bool = False) -> list[tuple[str, torch.Tensor]]:
    """`(name, tensor)` for every parameter and buffer a forward stopped after `layer` reads, each once
    (`head`: the final norm and the output embedding too, what turns the last layer's output into logits)."""
    skipped: set[int] = set()
    later = list(sites.decoder_layers(model))[layer + 1 :]
    unembed = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    tail = [] if head else [sites.final_norm(model), *([unembed] if unembed is not None else [])]
    for module in [*later, *tail]:
        skipped.update(id(m) for m in module.modules())
    seen: dict[int, tuple[str, torch.Tensor]] = {}
    for prefix, module in model.named_modules():
        if id(module) in skipped:
            continue
        for name, tensor in [*module.named_parameters(recurse=False), *module.named_buffers(recurse=False)]:
            if tensor is not None:
                seen.setdefault(id(tensor), (f"{prefix}.{name}", tensor))
    return list(seen.values())


def _signature(tensor: torch.Tensor) -> tuple[Any, ...]:
    return (id(tensor), tensor.data_ptr(), tensor._version, tensor.dtype, tuple(tensor.shape), tensor.device)


def _bits(tensor: torch.Tensor) -> torch.Tensor:
    """The tensor's raw bytes as a flat integer tensor (no copy when contiguous)."""
    flat = tensor.detach().contiguous().reshape(-1)
    if flat.element_size() == 1:
        return flat.view(torch.uint8)
    return flat.view({2: torch.int16, 4: torch.int32, 8: torch.int64}[flat.element_size()])


@torch.inference_mode()
def _probe(tensors: list[torch.Tensor]) -> tuple[int, ...]:
    """A cheap content summary: per tensor, the wrapping int64 sum of its raw bytes read 8 at a time (any
    single changed element changes it). It only confirms a memo; it is never the key itself."""
    sums = []
    for tensor in tensors:  # each summed on its own device (a model may span several), gathered on the CPU
        raw = _bits(tensor).view(torch.uint8)
        whole = raw.numel() // 8 * 8
        words = raw[:whole].view(torch.int64).sum() if whole else raw.new_zeros((), dtype=torch.int64)
        sums.append(torch.cat([words[None], raw[whole:].to(torch.int64)]).cpu())
    return tuple(torch.cat(sums).tolist()) if sums else ()


def _hash_tensor(digest: Any, tensor: torch.Tensor) -> None:
    digest.update(f"{tensor.dtype}{list(tensor.shape)}".encode())
    if tensor.numel():
        digest.update(_bits(tensor.cpu()).view(torch.uint8).numpy().data)


def _content_hash(header: str, named: list[tuple[str, torch.Tensor]]) -> str:
    digest = hashlib.sha256(header.encode())
    with torch.inference_mode():
        for name, tensor in named:
            digest.update(name.encode())
            _hash_tensor(digest, tensor)
    return digest.hexdigest()


def _memoised(owner: Any, key: Any, header: str, named: list[tuple[str, torch.Tensor]]) -> str:
    """The content hash of `named`, reused while every signature and the content probe are unchanged."""
    memo = _MEMO.setdefault(owner, {})
    tensors = [tensor for _, tensor in named]
    signatures = (header, tuple(_signature(t) for t in tensors))
    probe = _probe(tensors)
    hit = memo.get(key)
    if hit is not None and hit[0] == signatures and hit[1] == probe:
        return hit[2]
    value = _content_hash(header, named)
    memo[key] = (signatures, probe, value)
    return value


def model_fingerprint(model: nn.Module, layer: int | None = None, head: bool = False) -> str:
    """Hash of the model's class, config and every tensor a pass stopped after `layer` reads (None: after
    the last layer); with `head`, also the final norm and the output embedding (for what depends on the
    logits: logit tables, steering Jacobians)."""
    layer = sites.n_layers(model) - 1 if layer is None else layer
    config = {
        k: v
        for k, v in model.config.to_dict().items()
        if not k.startswith("_") and k != "transformers_version"
    }
    header = type(model).__name__ + json.dumps(config, sort_keys=True, default=str)
    return _memoised(model, ("model", layer, head), header, pass_tensors(model, layer, head))


def sae_fingerprint(sae: SAE) -> str:
    """Hash of the SAE's config (what it reads and how it encodes) and all of its weights."""
    cfg = sae.cfg
    fields = (cfg.d_in, cfg.d_sae, cfg.architecture, cfg.site, cfg.layer, cfg.k)
    header = repr((*fields, cfg.apply_b_dec_to_input, cfg.site_out))
    return _memoised(sae, "sae", header, sorted(_named_state(sae)))


def _named_state(module: nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    yield from module.named_parameters()
    yield from ((name, t) for name, t in module.named_buffers() if t is not None)


def pass_fingerprint(model: nn.Module, sae: SAE) -> str:
    """One key for (the model up to the SAE's layer, the SAE)."""
    return hashlib.sha256(
        f"{model_fingerprint(model, sae.cfg.layer)}|{sae_fingerprint(sae)}".encode()
    ).hexdigest()
