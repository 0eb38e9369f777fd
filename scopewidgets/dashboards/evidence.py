"""Dashboards from evidence files in an SAE folder, with no corpus pass.

Two kinds of `examples.safetensors` share one layout: this package's own (`dashboards.shipped`, metadata
`format` = `scopewidgets-evidence/1`: every feature's full dashboard, used only with the weights and the
default corpus it was made from, see `shipped_mismatch`), and Gemma Scope 2's, described below.

A Gemma Scope 2 SAE folder may hold `examples.safetensors`. The layout is known second-hand only
(REFERENCE.md), so it is checked before anything is shown:

- `activations [d_sae, n]` float: each feature's strongest activations (0 or less: an unused slot);
- `seq_ids [d_sae, n]`, `positions [d_sae, n]` integer: where each one is, in
- `tokens [n_seq, seq_len]` integer: the corpus the file was built on;
- `feature_frequencies [d_sae]` (optional): the fraction of tokens where each feature fires;
- `top_tokens`, `top_logits`, `bottom_tokens`, `bottom_logits` (optional, not used: logit effects are
  recomputed from the SAE and the model, exactly as for a corpus pass).

Anything else (a missing key, a wrong rank or dtype, a first dimension that is not the SAE's width, an
index outside `tokens`, a frequency outside [0, 1], a token id outside the vocabulary) raises a
`ValueError` naming what was found and what was expected. The file is read lazily, one feature at a time.

What such dashboards can and cannot show: examples and quantile groups come from the listed activations
only; per-token values of the context are known only where the file lists them (NaN elsewhere); the
histogram covers the listed activations, not the whole corpus; the mean activation is unknown (NaN).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..core import sites
from ..core.sae import SAE
from . import shipped
from .examples import Example, Histogram, QuantileGroup
from .result import DashboardSet
from .rows import TokenText, make_example
from .select import sample_keys
from .state import PassSettings

if TYPE_CHECKING:
    from ..core.engine import Engine

EVIDENCE_FILE = "examples.safetensors"
_REQUIRED = ("activations", "seq_ids", "positions", "tokens")


def evidence_path(sae: SAE) -> Path | None:
    """`<SAE folder>/examples.safetensors` when the SAE was loaded from a local folder holding one."""
    source = sae.cfg.source
    if not source:
        return None
    path = Path(source) / EVIDENCE_FILE
    return path if path.is_file() else None


def has_evidence(sae: SAE) -> bool:
    """Whether `sae`'s folder holds a Gemma Scope evidence file."""
    return evidence_path(sae) is not None


class Evidence:
    """A checked, lazily read `examples.safetensors` for an SAE of width `d_sae` and a vocabulary."""

    def __init__(self, path: Path, d_sae: int, vocab: int) -> None:
        from safetensors import safe_open

        self.path, self.vocab = path, vocab
        self._file = safe_open(str(path), framework="pt")
        found = sorted(self._file.keys())
        missing = [k for k in _REQUIRED if k not in found]
        if missing:
            raise ValueError(
                f"{path}: unexpected evidence layout: missing {missing}; found keys {found}; expected "
                "activations, seq_ids, positions [d_sae, n] and tokens [n_seq, seq_len] "
                "(+ optional feature_frequencies [d_sae])"
            )
        self.shape = self._shape("activations", float_dtype=True)
        if self.shape[0] != d_sae:
            raise ValueError(
                f"{path}: activations cover {self.shape[0]} features but this SAE has d_sae={d_sae}"
            )
        for key in ("seq_ids", "positions"):
            if self._shape(key) != self.shape:
                raise ValueError(
                    f"{path}: {key} has shape {self._shape(key)}, expected {self.shape} like activations"
                )
        self.tokens_shape = self._shape("tokens")
        self.frequencies = self._frequencies(d_sae) if "feature_frequencies" in found else None

    def _shape(self, key: str, float_dtype: bool = False) -> tuple[int, ...]:
        piece = self._file.get_slice(key)
        shape, dtype = tuple(piece.get_shape()), piece.get_dtype()
        ok = dtype.startswith(("F", "BF")) if float_dtype else dtype.startswith(("I", "U"))
        if len(shape) != 2 or not ok:
            kind = "float" if float_dtype else "integer"
            raise ValueError(f"{self.path}: {key} is {dtype}{list(shape)}, expected a 2-D {kind} tensor")
        return shape

    def _frequencies(self, d_sae: int) -> torch.Tensor:
        values = self._file.get_tensor("feature_frequencies").double().flatten()
        if values.numel() != d_sae or bool(((values < 0) | (values > 1)).any()):
            low, high = float(values.min()), float(values.max())
            raise ValueError(
                f"{self.path}: feature_frequencies has {values.numel()} values in [{low}, {high}]; "
                f"expected {d_sae} fractions in [0, 1]"
            )
        return values

    def row(self, feature: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`(values, seq, pos)` of the listed activations > 0 of one feature, indices checked."""
        values = self._file.get_slice("activations")[feature].float()
        seq = self._file.get_slice("seq_ids")[feature].long()
        pos = self._file.get_slice("positions")[feature].long()
        keep = values > 0
        values, seq, pos = values[keep], seq[keep], pos[keep]
        n_seq, seq_len = self.tokens_shape
        bad = (seq < 0) | (seq >= n_seq) | (pos < 0) | (pos >= seq_len)
        if bool(bad.any()):
            i = int(bad.nonzero()[0])
            raise ValueError(
                f"{self.path}: feature {feature} lists (seq {int(seq[i])}, position {int(pos[i])}) "
                f"outside tokens {list(self.tokens_shape)}"
            )
        return values, seq, pos

    def sequence(self, seq: int) -> torch.Tensor:
        """Token ids of one corpus row, checked against the vocabulary."""
        ids = self._file.get_slice("tokens")[seq].long()
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= self.vocab):
            raise ValueError(
                f"{self.path}: tokens row {seq} holds ids outside this model's vocabulary "
                f"[0, {self.vocab}): the file belongs to another model"
            )
        return ids


class EvidenceRows:
    """`FeatureRows` read from an evidence file (see the module docstring for what it can show)."""

    source = "Gemma Scope examples.safetensors (listed activations only)"

    def __init__(self, evidence: Evidence, features: torch.Tensor, settings: PassSettings) -> None:
        self.evidence, self.features, self.settings = evidence, features, settings
        self.n_tokens = evidence.tokens_shape[0] * evidence.tokens_shape[1]
        self._stats: dict[str, np.ndarray] | None = None

    def stats(self) -> dict[str, np.ndarray]:
        if self._stats is None:
            rows = [self.evidence.row(int(f)) for f in self.features]
            frequencies = self.evidence.frequencies
            self._stats = {
                "density": np.array(
                    [float(frequencies[int(f)]) if frequencies is not None else np.nan for f in self.features]
                ),
                "max_activation": np.array([float(v.max()) if v.numel() else 0.0 for v, _, _ in rows]),
                "mean_activation": np.full(len(rows), np.nan),
                "n_active": np.array([v.numel() for v, _, _ in rows]),
            }
        return self._stats

    def _examples(self, feature: int, picks: torch.Tensor, text: TokenText) -> list[Example]:
        values, seq, pos = self.evidence.row(feature)
        context = self.settings.context
        out = []
        for i in picks.tolist():
            s, p = int(seq[i]), int(pos[i])
            ids = self.evidence.sequence(s)
            lo, hi = max(0, p - context), min(len(ids), p + context + 1)
            window = torch.full((hi - lo,), float("nan"))
            same = (seq == s) & (pos >= lo) & (pos < hi)
            window[pos[same] - lo] = values[same]
            padded_ids = torch.full((2 * context + 1,), -1, dtype=torch.long)
            padded = torch.full((2 * context + 1,), float("nan"))
            padded_ids[lo - p + context : hi - p + context] = ids[lo:hi]
            padded[lo - p + context : hi - p + context] = window
            out.append(make_example(padded_ids, padded, float(values[i]), s, p, context, text))
        return out

    def examples(self, col: int, text: TokenText) -> list[Example]:
        """Per sequence its strongest listed token; sequences by (value desc, index asc)."""
        feature = int(self.features[col])
        values, seq, _ = self.evidence.row(feature)
        order = sorted(range(len(values)), key=lambda i: (-float(values[i]), int(seq[i]), i))
        best: dict[int, int] = {}
        for i in order:
            best.setdefault(int(seq[i]), i)
        picks = sorted(best.values(), key=lambda i: (-float(values[i]), int(seq[i])))
        return self._examples(
            feature, torch.tensor(picks[: self.settings.n_examples], dtype=torch.long), text
        )

    def quantiles(self, col: int, text: TokenText) -> list[QuantileGroup]:
        """Equal-width ranges up to the maximum; in each, a hash-random sample of the listed tokens."""
        feature, n_groups = int(self.features[col]), self.settings.n_groups
        values, seq, pos = self.evidence.row(feature)
        if not n_groups or not values.numel():
            return []
        edges = np.linspace(0.0, float(values.max()), n_groups + 1)
        keys = sample_keys(seq * self.evidence.tokens_shape[1] + pos, torch.full_like(seq, feature))
        groups = []
        for g, (lo, hi) in enumerate(itertools.pairwise(edges)):
            inside = (values >= lo) & ((values < hi) | (g == n_groups - 1))
            members = inside.nonzero().flatten()
            picks = members[torch.argsort(keys[members])[: self.settings.per_group]]
            picks = picks[torch.argsort(values[picks], descending=True, stable=True)]
            groups.append(
                QuantileGroup(
                    lower=float(lo),
                    upper=float(hi),
                    count=int(inside.sum()),
                    fraction=float(inside.sum()) / values.numel(),
                    examples=self._examples(feature, picks, text),
                )
            )
        return groups

    def histogram(self, col: int, n_bins: int) -> Histogram:
        """Counts of the listed activations (not of the whole corpus) over `[0, max]`."""
        values, _, _ = self.evidence.row(int(self.features[col]))
        top = float(values.max()) if values.numel() else 1.0
        counts, edges = np.histogram(values.double().numpy(), bins=n_bins, range=(0.0, top))
        return Histogram(counts=counts.astype(np.int64), edges=edges)


def evidence_dashboards(
    scope: Engine, sae: SAE, features: torch.Tensor, settings: PassSettings, n_bins: int
) -> tuple[DashboardSet, str | None] | None:
    """Dashboards from `sae`'s evidence file and the fingerprint of the weights they hold (None: a Gemma
    Scope file, which names none), or None when there is no file, or a file of this package
    (`dashboards.shipped`) that does not serve this request (`shipped_mismatch` says why)."""
    path = evidence_path(sae)
    if path is None:
        return None
    if file_format(path) == shipped.FORMAT:
        return shipped_dashboards(scope, sae, path, features, settings, n_bins)
    evidence = Evidence(path, sae.cfg.d_sae, sites.vocab_size(scope.model))
    return DashboardSet(EvidenceRows(evidence, features, settings), scope, sae, n_bins), None


def file_format(path: Path) -> str | None:
    """The `format` named in a safetensors file's metadata (None for a Gemma Scope file)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        return (handle.metadata() or {}).get("format")


def shipped_mismatch(
    scope: Engine, sae: SAE, meta: dict[str, str], settings: PassSettings, n_bins: int
) -> tuple[str | None, str | None]:
    """`(why the file does not serve this request or None, the current weights' fingerprint)`: it serves
    the default corpus it was cut from, settings asking for at most what it holds, and the weights it was
    made with (the SAE and the model up to its layer, by content: an in-place edit makes it stale)."""
    from ..core.fingerprint import pass_fingerprint
    from .cache import corpus_fingerprint
    from .corpus_pass import has_default_corpus, resolve_corpus

    held = PassSettings(**json.loads(meta["settings"]))
    if (settings.seq_len, n_bins) != (held.seq_len, int(meta["n_bins"])) or settings.n_groups not in (
        0,
        held.n_groups,
    ):
        return f"it holds seq_len={held.seq_len}, n_bins={meta['n_bins']}, {held.n_groups} groups", None
    asked = (settings.n_examples, settings.per_group, settings.context, settings.top_side)
    kept = (held.n_examples, held.per_group, held.context, held.top_side)
    if any(a > h for a, h in zip(asked, kept, strict=True)):
        return (
            f"it holds {held.n_examples} examples, {held.per_group} per group, context {held.context}",
            None,
        )
    if meta.get("d_sae") != str(sae.cfg.d_sae):
        return f"it covers {meta.get('d_sae')} features, the SAE has {sae.cfg.d_sae}", None
    if not has_default_corpus() or meta.get("corpus_key") != corpus_fingerprint(
        resolve_corpus(None), scope.tokenizer
    ):
        return "it was made on another default corpus or tokenizer", None
    weights = pass_fingerprint(scope.model, sae)
    if meta.get("weights") != weights:
        return "it was made with other weights (the SAE or the model up to its layer)", weights
    return None, weights


def shipped_dashboards(
    scope: Engine, sae: SAE, path: Path, features: torch.Tensor, settings: PassSettings, n_bins: int
) -> tuple[DashboardSet, str] | None:
    """A `DashboardSet` of `features` from a file written by `shipped.write_evidence`, or None when it does
    not serve this request (see `shipped_mismatch`)."""
    from safetensors import safe_open

    handle = safe_open(str(path), framework="pt")
    meta = handle.metadata() or {}
    why, weights = shipped_mismatch(scope, sae, meta, settings, n_bins)
    if why is not None or weights is None:
        return None
    evidence = shipped.ShippedEvidence(path, handle, meta)
    whole = meta["windows"] == meta["total_windows"]
    rows = shipped.ShippedRows(evidence, features, settings)
    dashes = DashboardSet(rows, scope, sae, n_bins, meta["corpus_key"] if whole else None)
    dashes._shared["effects"] = evidence.effect_table(features)
    return dashes, weights


def has_shipped_evidence(sae: SAE) -> bool:
    """Whether `sae`'s folder holds an evidence file of this package (one that covers every feature)."""
    path = evidence_path(sae)
    return path is not None and file_format(path) == shipped.FORMAT
