"""Corpora: turning text into fixed-length token windows (BOS first), and the shipped offline texts.

Anything iterable of strings is a corpus: a list, a pandas Series, a generator, a Hugging Face
`datasets` dataset with a text column. A 2-D tensor of token ids `[n_seq, seq_len]` is used as given.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import torch


def iter_texts(corpus: Any, text_column: str = "text") -> Iterator[str]:
    """Yield the strings of any supported corpus (list, Series, iterable, `datasets.Dataset`).

    Example:
        >>> list(iter_texts(["a", "b"]))
        ['a', 'b']
    """
    if isinstance(corpus, str):
        yield corpus
        return
    if hasattr(corpus, "column_names"):  # datasets.Dataset / IterableDataset
        columns = corpus.column_names or []
        if text_column not in columns:
            raise ValueError(f"The dataset has no {text_column!r} column; its columns are {columns}")
        for row in corpus:
            yield row[text_column]
        return
    if hasattr(corpus, "to_list") and hasattr(corpus, "dtype"):  # pandas Series
        corpus = corpus.to_list()
    if not isinstance(corpus, Iterable):
        raise ValueError(
            f"A corpus must be text, an iterable of strings or a token tensor, got {type(corpus).__name__}"
        )
    for index, text in enumerate(corpus):
        if not isinstance(text, str):
            raise ValueError(f"Corpus item {index} is {type(text).__name__}, expected str")
        yield text


def iter_token_windows(
    tokenizer: Any,
    corpus: Any,
    seq_len: int = 128,
    *,
    batch_texts: int = 64,
    text_column: str = "text",
) -> Iterator[torch.Tensor]:
    """Yield `[seq_len]` windows: BOS, then `seq_len - 1` tokens of the concatenated texts.

    Texts are joined end to end (each followed by EOS when the tokenizer has one) and cut into windows,
    as SAE training and dashboard corpora usually are; the final partial window is dropped.

    Example:
        >>> from scopewidgets.testing import tiny_tokenizer
        >>> rows = list(iter_token_windows(tiny_tokenizer(), ["hello world"] * 3, seq_len=8))
        >>> len(rows), rows[0][0].item()
        (5, 2)
    """
    if seq_len < 2:
        raise ValueError(f"seq_len must be at least 2 (BOS + one token), got {seq_len}")
    bos, eos = bos_id(tokenizer), tokenizer.eos_token_id
    buffer: list[int] = []
    batch: list[str] = []

    def drain() -> Iterator[torch.Tensor]:
        encoded = tokenizer(batch, add_special_tokens=False)["input_ids"]
        for ids in encoded:
            buffer.extend(ids)
            if eos is not None:
                buffer.append(eos)
        batch.clear()
        body = seq_len - 1
        cut = len(buffer) // body * body
        for start in range(0, cut, body):
            yield torch.tensor([bos, *buffer[start : start + body]], dtype=torch.long)
        del buffer[:cut]

    for text in iter_texts(corpus, text_column):
        batch.append(text)
        if len(batch) >= batch_texts:
            yield from drain()
    if batch:
        yield from drain()


def token_windows(
    tokenizer: Any, corpus: Any, seq_len: int = 128, max_windows: int | None = None
) -> torch.Tensor:
    """`[n_windows, seq_len]` token ids (BOS first) from a corpus; a token tensor is checked and returned.

    If the corpus is shorter than one window, one shorter window holding all of it is returned.

    Example:
        >>> from scopewidgets.testing import tiny_tokenizer
        >>> token_windows(tiny_tokenizer(), ["hello world"] * 3, seq_len=8).shape
        torch.Size([5, 8])
    """
    if isinstance(corpus, torch.Tensor):
        if corpus.ndim != 2 or corpus.dtype not in (torch.int64, torch.int32):
            raise ValueError(
                f"A token corpus must be a 2-D integer tensor [n_seq, seq_len], got {tuple(corpus.shape)}"
            )
        return corpus.long()
    rows: list[torch.Tensor] = []
    for row in iter_token_windows(tokenizer, corpus, seq_len):
        rows.append(row)
        if max_windows is not None and len(rows) >= max_windows:
            break
    if not rows:
        texts = list(iter_texts(corpus))
        ids = tokenizer(" ".join(texts), add_special_tokens=False)["input_ids"][: seq_len - 1]
        if not ids:
            raise ValueError("The corpus is empty: it holds no tokens")
        rows = [torch.tensor([bos_id(tokenizer), *ids], dtype=torch.long)]
    return torch.stack(rows)


def bos_id(tokenizer: Any) -> int:
    """The tokenizer's BOS id (Gemma: 2)."""
    bos = tokenizer.bos_token_id
    if bos is None:
        raise ValueError("The tokenizer has no BOS token; Gemma models and SAEs expect one")
    return int(bos)
