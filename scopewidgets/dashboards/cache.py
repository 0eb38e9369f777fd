"""The disk cache of dashboard passes: content-hash keys, atomic writes, damaged entries rebuilt.

An entry is one safetensors file under `cache_dir() / "dashboards"`, named by a key that hashes
- the model up to the SAE's layer and the SAE: every byte they hold, with their configs (`core.fingerprint`:
  memoised on version counters, so an in-place edit of a weight the pass reads is noticed);
- the corpus: the texts (with the tokenizer's identity: class, vocabulary size, special ids and the ids of
  a probe string) or the bytes of a token tensor; a Hugging Face dataset by its own fingerprint. One-shot
  iterators cannot be hashed before they are consumed, so their passes are not cached;
- the settings and the features.
The file's metadata holds the key and a SHA-256 of every tensor; a file that cannot be read, whose checksum
or key does not match, or whose tensors have the wrong shapes is deleted and rebuilt, never trusted.

The folder is bounded: after each write, the least recently used entries are deleted until the folder holds
at most `SCOPEWIDGETS_DASHBOARD_CACHE_MB` megabytes (default 4096, `inf` for no bound; the entry just written
is always kept). A read marks an entry as used. A folder that cannot be used is reported once and the
results are returned uncached.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import tempfile
import warnings
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from ..core.corpus import iter_texts
from ..core.fingerprint import model_fingerprint, sae_fingerprint  # noqa: F401 (feature statistics key on them)
from ..core.paths import cache_dir
from .state import DashboardState, PassSettings

FORMAT = "scopewidgets-dashboard-state/1"
LIMIT_VARIABLE = "SCOPEWIDGETS_DASHBOARD_CACHE_MB"
DEFAULT_LIMIT_MB = 4096
_PROBE = "The Eiffel Tower is in Paris. 1234 ünïcödé\n\tdef f(x): return x ** 2  <bos>"


def cache_folder() -> Path:
    """`scopewidgets.core.paths.cache_dir() / "dashboards"`."""
    return cache_dir() / "dashboards"


def _hash_tensor(digest: Any, tensor: torch.Tensor) -> None:
    tensor = tensor.detach().cpu()
    digest.update(f"{tensor.dtype}{list(tensor.shape)}".encode())
    if tensor.numel():
        digest.update(tensor.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())


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


def save_state(key: str, state: DashboardState) -> Path | None:
    """Write `state` under `key` atomically (a temporary file, then `os.replace`). When the folder cannot
    be written (a file in its place, a directory at the entry's path, a read-only mount), warn once and
    return None: the pass's result is still returned to the caller, just not cached."""
    folder = cache_folder()
    try:
        path = _write(folder, key, state)
        evict(keep=path)
    except OSError as err:
        _warn_unusable(folder, err)
        return None
    return path


def _write(folder: Path, key: str, state: DashboardState) -> Path:
    from safetensors.torch import save_file

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
    return folder / f"{key}.safetensors"


_WARNED: set[str] = set()  # cache folders already reported unusable in this process


def _warn_unusable(folder: Path, err: OSError) -> None:
    if str(folder) not in _WARNED:
        _WARNED.add(str(folder))
        warnings.warn(
            f"The dashboard cache folder {folder} cannot be used ({err}); results are returned uncached. "
            "Fix the folder or set SCOPEWIDGETS_CACHE to a writable one",
            stacklevel=4,
        )


def cache_limit_bytes() -> int | float:
    """The folder's size bound, from `SCOPEWIDGETS_DASHBOARD_CACHE_MB` (default 4096 MB; `inf`: no bound)."""
    raw = os.environ.get(LIMIT_VARIABLE, str(DEFAULT_LIMIT_MB))
    try:
        megabytes = float(raw)
    except ValueError:
        megabytes = -1.0
    if not megabytes >= 0:
        raise ValueError(
            f"{LIMIT_VARIABLE}={raw!r}: expected a number of megabytes >= 0 (or inf for no bound)"
        )
    return math.inf if math.isinf(megabytes) else int(megabytes * 1e6)


def evict(keep: Path | None = None, folder: Path | None = None) -> list[Path]:
    """Delete the least recently used entries of `folder` (default `cache_folder()`) until it fits
    `cache_limit_bytes()`; return them."""
    limit = cache_limit_bytes()
    if math.isinf(limit):
        return []
    entries = []
    for path in (cache_folder() if folder is None else folder).glob("*.safetensors"):
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
        if path == keep or not path.is_file():
            continue
        path.unlink(missing_ok=True)
        total -= size
        removed.append(path)
    return removed


def load_state(key: str) -> DashboardState | None:
    """The cached state under `key`, or None. A damaged entry is reported, deleted and None returned; an
    unusable folder (a file in its place, a directory at the entry's path) is reported once."""
    folder = cache_folder()
    path = folder / f"{key}.safetensors"
    if not path.is_file():
        if path.exists():
            _warn_unusable(folder, IsADirectoryError(f"{path} is not a file"))
        elif folder.exists() and not folder.is_dir():
            _warn_unusable(folder, NotADirectoryError(f"{folder} is not a folder"))
        return None
    try:
        state = _read(path, key)
    except Exception as err:
        warnings.warn(f"The dashboard cache entry {path} is damaged ({err}); rebuilding it", stacklevel=3)
        try:
            path.unlink(missing_ok=True)
        except OSError as unlink_error:
            _warn_unusable(folder, unlink_error)
        return None
    with contextlib.suppress(OSError):  # a read-only folder still serves its entries
        os.utime(path)  # most recently used: evicted last
    return state


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
