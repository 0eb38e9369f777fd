"""The disk cache of dashboard passes: content-hash keys, atomic writes, damaged entries rebuilt.

An entry is one safetensors file under `cache_dir() / "dashboards"`, named by a key that hashes
- the model: its class, config, and a strided sample of every parameter (cheap, and any retraining or
  different checkpoint changes it);
- the SAE: its config and all of its weights;
- the corpus: the texts (with the tokenizer's identity: class, vocabulary size, special ids and the ids of
  a probe string) or the bytes of a token tensor; a Hugging Face dataset by its own fingerprint. One-shot
  iterators cannot be hashed before they are consumed, so their passes are not cached;
- the settings and the features.
The file's metadata holds the key and a SHA-256 of every tensor; a file that cannot be read, whose checksum
or key does not match, or whose tensors have the wrong shapes is deleted and rebuilt, never trusted.

The folder is bounded: after each write, the least recently used entries are deleted until the folder holds
at most `SCOPEWIDGETS_DASHBOARD_CACHE_MB` megabytes (default 4096; the entry just written is always kept).
A read marks an entry as used.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ._dashboard_state import DashboardState, PassSettings
from .corpus import iter_texts
from .sae import SAE

FORMAT = "scopewidgets-dashboard-state/1"
LIMIT_VARIABLE = "SCOPEWIDGETS_DASHBOARD_CACHE_MB"
DEFAULT_LIMIT_MB = 4096
_PROBE = "The Eiffel Tower is in Paris. 1234 ünïcödé\n\tdef f(x): return x ** 2  <bos>"


def cache_folder() -> Path:
    """`scopewidgets.demo.cache_dir() / "dashboards"`."""
    from .demo import cache_dir

    return cache_dir() / "dashboards"


def _hash_tensor(digest: Any, tensor: torch.Tensor) -> None:
    tensor = tensor.detach().cpu()
    digest.update(f"{tensor.dtype}{list(tensor.shape)}".encode())
    if tensor.numel():
        digest.update(tensor.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())


def model_fingerprint(model: nn.Module, samples: int = 1024) -> str:
    """Hash of the model's class, config and a strided sample of each parameter."""
    digest = hashlib.sha256(type(model).__name__.encode())
    config = {
        k: v
        for k, v in model.config.to_dict().items()
        if not k.startswith("_") and k != "transformers_version"
    }
    digest.update(json.dumps(config, sort_keys=True, default=str).encode())
    for name, param in model.named_parameters():
        flat = param.detach().reshape(-1)
        digest.update(name.encode())
        _hash_tensor(digest, flat[:: max(1, flat.numel() // samples)][:samples].float())
    return digest.hexdigest()


def sae_fingerprint(sae: SAE) -> str:
    """Hash of the SAE's config (what it reads and how it encodes) and all of its weights."""
    cfg = sae.cfg
    digest = hashlib.sha256(
        repr(
            (
                cfg.d_in,
                cfg.d_sae,
                cfg.architecture,
                cfg.site,
                cfg.layer,
                cfg.k,
                cfg.apply_b_dec_to_input,
                cfg.site_out,
            )
        ).encode()
    )
    for name, tensor in sorted(sae.state_dict().items()):
        digest.update(name.encode())
        _hash_tensor(digest, tensor)
    return digest.hexdigest()


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """Hash of a tokenizer's class, size, special ids and its ids for a probe string."""
    probe = tokenizer(_PROBE, add_special_tokens=False)["input_ids"]
    parts = (type(tokenizer).__name__, len(tokenizer), tokenizer.bos_token_id, tokenizer.eos_token_id, probe)
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def corpus_fingerprint(corpus: Any, tokenizer: Any) -> str | None:
    """Hash of a corpus's content, or None when it cannot be read twice (a one-shot iterator)."""
    if isinstance(corpus, torch.Tensor):
        digest = hashlib.sha256(b"tokens")
        _hash_tensor(digest, corpus)
        return digest.hexdigest()
    if hasattr(corpus, "column_names") and getattr(corpus, "_fingerprint", None):
        content = f"dataset:{corpus._fingerprint}"
    elif isinstance(corpus, str | list | tuple) or (hasattr(corpus, "to_list") and hasattr(corpus, "dtype")):
        content = _hash_texts(iter_texts(corpus))
    else:
        return None
    return hashlib.sha256(f"{content}|{tokenizer_fingerprint(tokenizer)}".encode()).hexdigest()


def _hash_texts(texts: Iterable[str]) -> str:
    digest = hashlib.sha256(b"texts")
    for text in texts:
        data = text.encode("utf-8", "surrogatepass")
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


def entry_key(parts: dict[str, Any]) -> str:
    """The cache key of a pass described by `parts` (fingerprints, settings, features)."""
    return hashlib.sha256(
        json.dumps({"format": FORMAT, **parts}, sort_keys=True, default=str).encode()
    ).hexdigest()


def _checksum(tensors: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for name in sorted(tensors):
        digest.update(name.encode())
        _hash_tensor(digest, tensors[name])
    return digest.hexdigest()


def save_state(key: str, state: DashboardState) -> Path:
    """Write `state` under `key` atomically (a temporary file, then `os.replace`)."""
    from safetensors.torch import save_file

    folder = cache_folder()
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in state.tensors().items()}
    metadata = {
        "format": FORMAT,
        "key": key,
        "checksum": _checksum(tensors),
        "settings": json.dumps(asdict(state.settings), sort_keys=True),
    }
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{key[:16]}-", suffix=".tmp")
    os.close(handle)
    try:
        save_file(tensors, temporary, metadata=metadata)
        os.replace(temporary, folder / f"{key}.safetensors")
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    path = folder / f"{key}.safetensors"
    evict(keep=path)
    return path


def cache_limit_bytes() -> int:
    """The folder's size bound, from `SCOPEWIDGETS_DASHBOARD_CACHE_MB` (default 4096 MB)."""
    raw = os.environ.get(LIMIT_VARIABLE, str(DEFAULT_LIMIT_MB))
    try:
        megabytes = float(raw)
    except ValueError:
        megabytes = -1.0
    if not megabytes >= 0:
        raise ValueError(f"{LIMIT_VARIABLE}={raw!r}: expected a number of megabytes >= 0")
    return int(megabytes * 1e6)


def evict(keep: Path | None = None) -> list[Path]:
    """Delete the least recently used entries until the folder fits `cache_limit_bytes()`; return them."""
    limit = cache_limit_bytes()
    entries = []
    for path in cache_folder().glob("*.safetensors"):
        try:
            stat = path.stat()
        except FileNotFoundError:  # deleted by another process meanwhile
            continue
        entries.append((stat.st_mtime, stat.st_size, path))
    total = sum(size for _, size, _ in entries)
    removed = []
    for _, size, path in sorted(entries, key=lambda entry: entry[0]):
        if total <= limit:
            break
        if path == keep:
            continue
        path.unlink(missing_ok=True)
        total -= size
        removed.append(path)
    return removed


def load_state(key: str) -> DashboardState | None:
    """The cached state under `key`, or None. A damaged entry is reported, deleted and None returned."""
    path = cache_folder() / f"{key}.safetensors"
    if not path.exists():
        return None
    try:
        state = _read(path, key)
        os.utime(path)  # most recently used: evicted last
        return state
    except Exception as err:
        warnings.warn(f"The dashboard cache entry {path} is damaged ({err}); rebuilding it", stacklevel=3)
        path.unlink(missing_ok=True)
        return None


def _read(path: Path, key: str) -> DashboardState:
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
    if metadata.get("format") != FORMAT or metadata.get("key") != key:
        raise ValueError(f"format/key mismatch: {metadata.get('format')!r}, {metadata.get('key')!r}")
    tensors = load_file(str(path))
    if _checksum(tensors) != metadata.get("checksum"):
        raise ValueError("checksum mismatch")
    settings = PassSettings(**json.loads(metadata["settings"]))
    return DashboardState.from_tensors(tensors, settings)
