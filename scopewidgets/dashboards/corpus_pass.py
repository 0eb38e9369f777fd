"""Running a dashboard pass: corpus -> fixed-length windows -> batches -> truncated forward -> sparse
features -> `DashboardState.update`. Windows are streamed, so memory never grows with the corpus.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from tqdm.auto import tqdm

from ..core import corpus as corpus_module
from ..core import sites
from ..core.corpus import bos_id, iter_texts, iter_token_windows, token_windows
from ..core.sae import SAE
from .batch_update import update_from_scores
from .encode import encode_scores, scores_scratch, site_activations
from .state import DashboardState, PassSettings

if TYPE_CHECKING:
    from ..core.engine import Engine

Shard = tuple[int, int]
_MAX_SEQUENCES = 2**32


def has_default_corpus() -> bool:
    """Whether the package ships a default corpus (`scopewidgets.core.corpus.default()`)."""
    return callable(getattr(corpus_module, "default", None))


def resolve_corpus(corpus: Any) -> Any:
    """The corpus to use: the one given, else the package's default corpus when it ships one.

    This is the single place that decides what "no corpus" means.
    """
    if corpus is not None:
        return corpus
    if not has_default_corpus():
        raise ValueError(
            "Dashboards need a corpus: pass corpus= a list of texts, a pandas Series, an iterable "
            "of strings, a datasets.Dataset with a 'text' column, or a [n_seq, seq_len] token tensor"
        )
    return corpus_module.default()


@dataclass
class CorpusRows:
    """Token windows of a corpus, streamed: `rows` yields `[T]` id tensors; `stride` is the widest T."""

    rows: Iterator[torch.Tensor]
    stride: int
    total_tokens: int | None


def corpus_rows(model: torch.nn.Module, tokenizer: Any, corpus: Any, seq_len: int) -> CorpusRows:
    """Windows of `corpus`: a 2-D token tensor row by row as given, text as `seq_len` windows, BOS first."""
    if isinstance(corpus, torch.Tensor):
        check_token_tensor(model, corpus)
        return CorpusRows(
            rows=iter(corpus.long()), stride=int(corpus.shape[1]), total_tokens=int(corpus.numel())
        )
    if seq_len < 2:
        raise ValueError(f"seq_len must be at least 2 (BOS + one token), got {seq_len}")
    limit = sites.context_length(model)
    if seq_len > limit:
        raise ValueError(f"seq_len={seq_len} is longer than this model's context; allowed: 2..{limit}")
    return CorpusRows(rows=_text_windows(tokenizer, corpus, seq_len), stride=seq_len, total_tokens=None)


def check_token_tensor(model: torch.nn.Module, tokens: torch.Tensor) -> None:
    """A token corpus must be a non-empty 2-D integer tensor of ids inside the vocabulary."""
    if tokens.ndim != 2 or tokens.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
        raise ValueError(
            f"A token corpus must be a 2-D integer tensor [n_seq, seq_len], got {tokens.dtype} "
            f"of shape {tuple(tokens.shape)}"
        )
    if tokens.shape[0] == 0 or tokens.shape[1] == 0:
        raise ValueError(
            f"The token corpus is empty (shape {tuple(tokens.shape)}); it needs at least one token"
        )
    vocab = sites.vocab_size(model)
    low, high = int(tokens.min()), int(tokens.max())
    if low < 0 or high >= vocab:
        raise ValueError(
            f"Token id {low if low < 0 else high} is outside the vocabulary: ids must be in [0, {vocab})"
        )


def _text_windows(tokenizer: Any, corpus: Any, seq_len: int) -> Iterator[torch.Tensor]:
    seen = 0

    def counted() -> Iterator[str]:
        nonlocal seen
        for text in iter_texts(corpus):
            seen += 1
            yield text

    produced = False
    for row in iter_token_windows(tokenizer, counted(), seq_len):
        produced = True
        yield row
    if produced:
        return
    if (
        isinstance(corpus, str | list | tuple)
        or hasattr(corpus, "to_list")
        or hasattr(corpus, "column_names")
    ):
        yield from token_windows(tokenizer, corpus, seq_len)  # one shorter window, or "the corpus is empty"
    elif seen == 0:
        raise ValueError("The corpus is empty: it holds no texts")
    else:
        raise ValueError(
            f"The corpus holds fewer than seq_len={seq_len} tokens; give more text or a smaller seq_len"
        )


def batches(
    rows: Iterator[torch.Tensor], batch_size: int, shard: Shard | None
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """`(ids [B, T], seq [B])`: windows stacked `batch_size` at a time; with `shard=(rank, world)` only the
    windows whose global index is `rank` modulo `world` (sequence indices stay global)."""
    chunk: list[torch.Tensor] = []
    index: list[int] = []
    for i, row in enumerate(rows):
        if shard is not None and i % shard[1] != shard[0]:
            continue
        if i >= _MAX_SEQUENCES:
            raise ValueError(f"A pass takes at most {_MAX_SEQUENCES:,} sequences (example keys hold 32 bits)")
        chunk.append(row)
        index.append(i)
        if len(chunk) == batch_size:
            yield torch.stack(chunk), torch.tensor(index)
            chunk, index = [], []
    if chunk:
        yield torch.stack(chunk), torch.tensor(index)


def run_pass(
    scope: Engine,
    sae: SAE,
    features: torch.Tensor,
    windows: CorpusRows,
    settings: PassSettings,
    *,
    batch_size: int,
    progress: bool = True,
    shard: Shard | None = None,
) -> DashboardState:
    """One pass of `windows` through the model (stopped after the SAE's site) for all `features` at once.
    The state comes back with its tables in insertion order (`DashboardState.finish` sorts them when
    something needs it)."""
    device = scope.device
    state = DashboardState.empty(features, settings, device)
    every = features.numel() == sae.cfg.d_sae and bool((features == torch.arange(sae.cfg.d_sae)).all())
    columns = None if every else features.to(sae.device)
    bos = bos_id(scope.tokenizer)
    total = windows.total_tokens // (shard[1] if shard else 1) if windows.total_tokens else None
    bar = tqdm(total=total, unit="tok", unit_scale=True, desc=f"Dashboards ({features.numel():,} feature{'s' * (features.numel() != 1)})",
               disable=not progress)  # fmt: skip
    scratch = None
    try:
        for ids, seq in batches(windows.rows, batch_size, shard):
            ids = ids.to(device)
            x = site_activations(scope.model, sae, ids)
            if scratch is None or scratch.shape[0] < ids.numel():
                scratch = scores_scratch(sae, ids.numel(), device)
            scores, bias, threshold = encode_scores(sae, x, columns, scratch)
            update_from_scores(state, ids, seq.to(device), scores, threshold, bos, bias)
            del scores  # a view of `scratch`, which the next batch overwrites
            bar.update(ids.numel())
    finally:
        bar.close()
    if state.n_sequences == 0 and shard is None:
        raise ValueError("The corpus is empty: it holds no token windows")
    return state
