"""Activation streams for SAE training: activations of a model over a corpus (BOS dropped), and a
shuffling buffer that re-batches any stream of activation chunks."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import torch

from ..core.corpus import bos_id, iter_token_windows
from ..core.hooks import run_truncated


def model_activations(
    model: Any,
    tokenizer: Any,
    site: str,
    layer: int,
    corpus: Any,
    *,
    seq_len: int = 128,
    model_batch: int = 8,
) -> Iterator[torch.Tensor]:
    """Yield `[n, d]` activations at (site, layer) for token windows of `corpus`, BOS positions dropped.

    Example:
        >>> from scopewidgets.testing import tiny_gemma3
        >>> model, tok = tiny_gemma3()
        >>> next(model_activations(model, tok, "resid_post", 1, ["hello world"] * 40, seq_len=16)).shape
        torch.Size([120, 64])
    """
    bos = bos_id(tokenizer)
    device = next(model.parameters()).device
    rows: list[torch.Tensor] = []

    def run() -> torch.Tensor:
        ids = torch.stack(rows).to(device)
        rows.clear()
        acts = run_truncated(model, ids, [(site, layer)])[site, layer]
        return acts[ids != bos].float().cpu()

    for window in iter_token_windows(tokenizer, corpus, seq_len):
        rows.append(window)
        if len(rows) == model_batch:
            yield run()
    if rows:
        yield run()


def shuffled_batches(
    chunks: Iterable[torch.Tensor],
    batch_size: int,
    buffer_size: int,
    *,
    seed: int = 0,
    limit: int | None = None,
) -> Iterator[torch.Tensor]:
    """Re-batch a stream of `[n, d]` chunks into shuffled `[batch_size, d]` batches through a buffer.

    The buffer fills to `buffer_size` rows, then half of it (chosen at random) is emitted and refilled, so
    neighbouring tokens of one text rarely share a batch. Emits at most `limit` rows (stopping at the
    stream's end otherwise; a final partial batch is dropped).

    Example:
        >>> chunks = (torch.arange(10.0).reshape(5, 2) for _ in range(4))
        >>> [b.shape[0] for b in shuffled_batches(chunks, batch_size=4, buffer_size=8)]
        [4, 4, 4, 4, 4]
    """
    if buffer_size < 2 * batch_size:
        raise ValueError(f"buffer_size must be at least 2 * batch_size = {2 * batch_size}, got {buffer_size}")
    gen = torch.Generator().manual_seed(seed)
    buffer: list[torch.Tensor] = []
    held, emitted = 0, 0
    exhausted = False
    stream = iter(chunks)
    while not exhausted:
        while held < buffer_size:
            chunk = next(stream, None)
            if chunk is None:
                exhausted = True
                break
            buffer.append(chunk)
            held += len(chunk)
        if not buffer:
            return
        data = torch.cat(buffer)
        data = data[torch.randperm(len(data), generator=gen)]
        n_out = len(data) if exhausted else len(data) // 2
        n_out = n_out // batch_size * batch_size
        for start in range(0, n_out, batch_size):
            if limit is not None and emitted + batch_size > limit:
                return
            yield data[start : start + batch_size]
            emitted += batch_size
        buffer, held = [data[n_out:]], len(data) - n_out
