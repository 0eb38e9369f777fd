"""The running state of a dashboard pass, for many features at once, and its exact merge.

What is kept per feature (memory is features x examples, never corpus length):

- `total`, and a histogram `hist [n_f, R_h]` of the positive activations over `[0, 2**e)`, where `e` is the
  feature's scale exponent (`2**(e-1) <= max < 2**e`). When a larger maximum arrives, bins fold in pairs
  (bin `j` -> `j >> s`), which is exact; so the final histogram depends only on the data, not on the order
  or the split of the corpus. Density is `hist.sum() / n_tokens`.
- `top`: the `n_examples` sequences with the highest per-sequence maximum, ordered by (value desc, sequence
  index asc), each with the window of `top_context` tokens each side of the first position of that maximum
  (20 by default, at least `context`: the dashboard shows +-5 and lets the user widen it).
- `quant`: for each of `R_q = 4 * n_groups` buckets of `[0, 2**e)`, the `per_group` firing tokens with the
  smallest sample keys (`sample_keys`), each with its window of `context` tokens each side. A quantile group, chosen once the maximum is
  final, is a run of consecutive buckets; its `per_group` smallest keys are a uniform random sample of the
  tokens whose activation falls in that range, exactly, whatever the order or split of the corpus.

`merge` combines two states over disjoint sets of sequences; the result equals one pass over both (sums in
float64 up to rounding, everything else bit for bit).

Slot order inside a group is left as the inserts made it until something needs the canonical order
(`finish`, which `tensors()` calls): a pass returns its state unsorted, because what a dashboard reads
(`StateRows`) orders the one feature it opens, and sorting every group of a wide SAE costs ~0.5 s at 65k
features for nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from . import kernels
from .encode import SparseBatch
from .select import (
    EMPTY_EXPONENT,
    Entries,
    Table,
    bucket_index,
    order_keys,
    sample_keys,
    scale_exponents,
)

_INT32_LIMIT = 2**31 - 1


@dataclass(frozen=True)
class PassSettings:
    """What a pass keeps. `seq_len` is the sequence stride of global token indices (the widest sequence).

    Windows: quantile samples keep `context` tokens each side, top examples `max(context, top_context)`
    (top examples are few, ~20 per feature, so +-20 costs ~5 KB per feature; the ~200 quantile samples stay
    at +-5).
    """

    seq_len: int
    n_examples: int = 20
    context: int = 5
    n_groups: int = 10
    per_group: int = 5
    seed: int = 0
    top_context: int = 20

    @property
    def width(self) -> int:
        """Tokens in a quantile sample's window."""
        return 2 * self.context + 1

    @property
    def top_side(self) -> int:
        """Tokens kept each side of a top example's focus."""
        return max(self.context, self.top_context)

    @property
    def group_resolution(self) -> int:
        """Buckets of `[0, 2**e)` that quantile samples are kept in (0 when no groups are asked for)."""
        return 4 * self.n_groups

    @property
    def hist_resolution(self) -> int:
        """Histogram bins of `[0, 2**e)`: a multiple of `group_resolution`, at least 1024."""
        resolution = max(self.group_resolution, 1)
        while resolution < 1024:
            resolution *= 2
        return resolution


class DashboardState:
    """Running statistics of features `features` (int64 ids) over the sequences seen so far.

    Example:
        >>> state = DashboardState.empty(torch.arange(4), PassSettings(seq_len=8))
        >>> state.n_tokens, state.hist.shape
        (0, torch.Size([4, 1280]))
    """

    def __init__(
        self, features: torch.Tensor, settings: PassSettings, tensors: dict[str, torch.Tensor]
    ) -> None:
        self.features = features
        self.settings = settings
        self.n_tokens = int(tensors["n_tokens"])
        self.n_sequences = int(tensors["n_sequences"])
        self.total = tensors["total"]
        self.exponent = tensors["exponent"]
        self.hist = tensors["hist"]
        self.top = Table(Entries(**_prefixed(tensors, "top.")), settings.n_examples)
        self.quant = Table(Entries(**_prefixed(tensors, "quant.")), max(settings.per_group, 1))
        self.ordered = True  # every group of both tables in canonical slot order (`finish`)
        self.scratch: kernels.SearchScratch | None = None  # reused batch after batch (`batch_update.py`)

    @classmethod
    def empty(
        cls, features: torch.Tensor, settings: PassSettings, device: torch.device | str = "cpu"
    ) -> DashboardState:
        """A state that has seen nothing."""
        n_f = int(features.numel())
        tensors = {
            "n_tokens": torch.tensor(0),
            "n_sequences": torch.tensor(0),
            "total": torch.zeros(n_f, dtype=torch.float64, device=device),
            "exponent": torch.full((n_f,), EMPTY_EXPONENT, dtype=torch.int32, device=device),
            "hist": torch.zeros(n_f, settings.hist_resolution, dtype=torch.int32, device=device),
        }
        top = Entries.empty(n_f * settings.n_examples, 2 * settings.top_side + 1, device)
        quant = Entries.empty(n_f * settings.group_resolution * settings.per_group, settings.width, device)
        tensors |= {f"top.{k}": v for k, v in top.tensors().items()}
        tensors |= {f"quant.{k}": v for k, v in quant.tensors().items()}
        return cls(features.to(device), settings, tensors)

    # ------------------------------------------------------------------------------- (de)serialisation
    def tensors(self) -> dict[str, torch.Tensor]:
        """Everything as named tensors, tables in canonical order (what the disk cache stores)."""
        self.finish()
        out = {
            "features": self.features,
            "n_tokens": torch.tensor(self.n_tokens),
            "n_sequences": torch.tensor(self.n_sequences),
            "total": self.total,
            "exponent": self.exponent,
            "hist": self.hist,
        }
        out |= {f"top.{k}": v for k, v in self.top.entries.tensors().items()}
        out |= {f"quant.{k}": v for k, v in self.quant.entries.tensors().items()}
        return out

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor], settings: PassSettings) -> DashboardState:
        """Rebuild a state, checking every shape and dtype against `settings` (ValueError when off)."""
        expected = cls.empty(tensors["features"], settings, "meta").tensors() if "features" in tensors else {}
        if set(tensors) != set(expected):
            raise ValueError(f"state tensors {sorted(tensors)} do not match the expected {sorted(expected)}")
        for name, want in expected.items():
            got = tensors[name]
            same_dtype = got.dtype == want.dtype or (name == "hist" and got.dtype == torch.int64)
            if got.shape != want.shape or not same_dtype:
                raise ValueError(
                    f"state tensor {name!r} is {got.dtype}{list(got.shape)}, "
                    f"expected {want.dtype}{list(want.shape)}"
                )
        return cls(tensors["features"], settings, tensors)

    def to(self, device: torch.device | str) -> DashboardState:
        """A copy on `device`."""
        return DashboardState(
            self.features.to(device), self.settings, {k: v.to(device) for k, v in self.tensors().items()}
        )

    def clone(self) -> DashboardState:
        """An independent copy."""
        return DashboardState(
            self.features.clone(), self.settings, {k: v.clone() for k, v in self.tensors().items()}
        )

    @property
    def device(self) -> torch.device:
        return self.total.device

    @property
    def nbytes(self) -> int:
        """Bytes of every tensor the state holds (~30 KB per feature with the default settings)."""
        tables = [*self.top.entries.tensors().values(), *self.quant.entries.tensors().values()]
        return sum(t.nbytes for t in (self.features, self.total, self.exponent, self.hist, *tables))

    @staticmethod
    def size(n_features: int, settings: PassSettings) -> int:
        """Bytes that `empty(...)` allocates for `n_features` features (nothing is allocated to say it).

        Example:
            >>> DashboardState.size(65_536, PassSettings(seq_len=128)) / 2**30 > 1.5
            True
        """
        return DashboardState.empty(
            torch.zeros(n_features, dtype=torch.long, device="meta"), settings, "meta"
        ).nbytes

    # ------------------------------------------------------------------------------- the pass
    @torch.inference_mode()
    def update(self, batch: SparseBatch) -> None:
        """Fold one batch of sequences in (all features at once, no per-feature Python loop)."""
        n_seq, n_t = batch.shape
        n_f = self.features.numel()
        self.ordered = False
        pair = (batch.row // n_t) * n_f + batch.col
        seq_max = torch.zeros(n_seq * n_f, device=self.device).scatter_reduce_(0, pair, batch.value, "amax")
        self._rescale(scale_exponents(seq_max.view(n_seq, n_f).amax(0)))
        self._widen_counts(batch.n_tokens)
        bins = bucket_index(
            batch.value, self.exponent.index_select(0, batch.col), self.settings.hist_resolution
        )
        flat_bins = batch.col * self.settings.hist_resolution + bins
        self.hist.view(-1).scatter_add_(0, flat_bins, torch.ones_like(flat_bins, dtype=self.hist.dtype))
        self.total.index_add_(0, batch.col, batch.value.double())
        self.n_tokens += batch.n_tokens
        self.n_sequences += n_seq
        at_max = torch.where(batch.value == seq_max.index_select(0, pair), batch.row % n_t, n_t)
        first = torch.full_like(seq_max, n_t, dtype=torch.long).scatter_reduce_(0, pair, at_max, "amin")
        self._update_top(batch, seq_max.view(n_seq, n_f), first.view(n_seq, n_f))
        if self.settings.n_groups:
            fine_per_bucket = self.settings.hist_resolution // self.settings.group_resolution
            self._update_quant(batch, bins // fine_per_bucket)

    def finish(self) -> DashboardState:
        """Put every table in canonical order (what `tensors()` compares and the cache stores); a no-op
        when nothing changed since the last call."""
        if not self.ordered:
            self.top.canonical()
            self.quant.canonical()
            self.ordered = True
        return self

    def _widen_counts(self, extra: int) -> None:
        if self.hist.dtype == torch.int32 and self.n_tokens + extra > _INT32_LIMIT:
            self.hist = self.hist.long()

    def _rescale(self, exponent: torch.Tensor, compiled: bool = False) -> None:
        """Raise scale exponents to at least `exponent`, folding histograms and sample buckets (with
        `compiled`, by `kernels.fold`)."""
        new = torch.maximum(self.exponent, exponent)
        rows = torch.nonzero((new > self.exponent) & (self.exponent != EMPTY_EXPONENT)).flatten()
        if rows.numel() and compiled:
            quant = self.quant.entries.tensors() if self.settings.n_groups else None
            shift = (new - self.exponent).clamp(max=62).long().index_select(0, rows)
            kernels.fold(self.hist, rows, shift, quant, self.settings.group_resolution, self.quant.slots)
        elif rows.numel():
            shift = (new - self.exponent).clamp(max=62).long()
            index = torch.arange(self.hist.shape[1], device=self.device)[None] >> shift[rows, None]
            self.hist[rows] = torch.zeros_like(self.hist[rows]).scatter_add_(1, index, self.hist[rows])
            if self.settings.n_groups:
                self._fold_quant(rows, shift)
        self.exponent = new

    def _fold_quant(self, rows: torch.Tensor, shift: torch.Tensor) -> None:
        """Re-bucket the samples of features `rows` after their scale grew by `2 ** shift`."""
        resolution = self.settings.group_resolution
        groups = (rows[:, None] * resolution + torch.arange(resolution, device=self.device)).flatten()
        self.ordered = False
        records, owner = self.quant.used(groups)
        col, bucket = owner // resolution, owner % resolution
        self.quant.clear(groups)
        self.quant.insert(col * resolution + (bucket >> shift[col]), records.key, records.take)

    def _update_top(self, batch: SparseBatch, seq_max: torch.Tensor, first: torch.Tensor) -> None:
        n_f = self.features.numel()
        pair = torch.nonzero(seq_max.view(-1) > 0).flatten()
        b, col = pair // n_f, pair % n_f
        key = order_keys(seq_max.view(-1).index_select(0, pair), batch.seq.index_select(0, b))
        pos = first.view(-1).index_select(0, pair)
        side = self.settings.top_side
        self.top.insert(col, key, lambda i: self._records(batch, side, *_pick(i, b, pos, col, key)))

    def _update_quant(self, batch: SparseBatch, bucket: torch.Tensor) -> None:
        n_t = batch.shape[1]
        b, t, col = batch.row // n_t, batch.row % n_t, batch.col
        token = batch.seq.index_select(0, b) * self.settings.seq_len + t
        key = sample_keys(token, self.features.index_select(0, col), self.settings.seed)
        group = col * self.settings.group_resolution + bucket
        side = self.settings.context
        self.quant.insert(group, key, lambda i: self._records(batch, side, *_pick(i, b, t, col, key)))

    def _records(
        self,
        batch: SparseBatch,
        side: int,
        b: torch.Tensor,
        pos: torch.Tensor,
        col: torch.Tensor,
        key: torch.Tensor,
    ) -> Entries:
        """Records for tokens (b, pos) of feature columns `col`, with windows of `side` tokens each side."""
        ids, acts = batch.windows(b, pos, col, side)
        value = acts[:, side].clone()
        return Entries(key=key, value=value, seq=batch.seq.index_select(0, b), pos=pos, ids=ids, acts=acts)

    # ------------------------------------------------------------------------------- merge
    def merge(self, other: DashboardState) -> DashboardState:
        """A new state equal to one pass over the sequences of both (they must not overlap).

        Example:
            >>> merged = state_a.merge(state_b)                              # doctest: +SKIP
        """
        self._check_compatible(other)
        a, b = self.clone(), other.clone().to(self.device)
        exponent = torch.maximum(a.exponent, b.exponent)
        a._rescale(exponent)
        b._rescale(exponent)
        a._widen_counts(b.n_tokens)
        a.hist = a.hist + b.hist.to(a.hist.dtype)
        a.total = a.total + b.total
        a.n_tokens += b.n_tokens
        a.n_sequences += b.n_sequences
        a.ordered = False
        for mine, theirs in ((a.top, b.top), (a.quant, b.quant)):
            records, group = theirs.used()
            mine.insert(group, records.key, records.take)
        return a.finish()

    def _check_compatible(self, other: DashboardState) -> None:
        if other.settings != self.settings:
            raise ValueError(
                f"Cannot merge passes with different settings: {self.settings} vs {other.settings}"
            )
        if other.features.shape != self.features.shape or not torch.equal(
            other.features.cpu(), self.features.cpu()
        ):
            raise ValueError("Cannot merge passes over different feature sets")


def _pick(index: torch.Tensor, *tensors: torch.Tensor) -> list[torch.Tensor]:
    return [t.index_select(0, index) for t in tensors]


def _prefixed(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
