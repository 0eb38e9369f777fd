"""Compact evidence files: every feature's dashboard over a corpus, shipped beside an SAE.

`write_evidence(dashes, tokens, path, ...)` turns a finished pass over every feature into one
`examples.safetensors` in the Gemma Scope 2 layout (so any reader of that layout, `dashboards.evidence`
included, sees each feature's top examples), plus `scopewidgets.`-prefixed keys that hold what a dashboard
shows and the layout has no room for. `ShippedRows` reads such a file back, one feature at a time.

Gemma Scope keys: `tokens [n_seq, seq_len]` int32 (the corpus windows read, so examples are pointers into it),
`activations [d_sae, n_examples]` float32 (the top examples' values, strongest first; 0: unused slot),
`seq_ids`, `positions` (where each one is), `feature_frequencies [d_sae]`, and the logit table
`top_tokens`, `top_logits`, `bottom_tokens`, `bottom_logits [d_sae, k]`.

`scopewidgets.` keys, each `[d_sae, ...]`: `n_active`, `max`, `mean` (exact statistics); `exponent` (the
pass's power-of-two scale); `top_acts` uint8 (activations of the `act_context` tokens each side of a top
example's focus, in 1/255 of the feature's maximum: the widget's colour scale); `histogram` (`n_bins` uint16
counts; 65535: the count is in `histogram_overflow`, rows of feature, bin, count) and `histogram_run` (fine
bins per shown bin); `quantile_bounds` (sample buckets), `quantile_counts`,
`quantile_values`, `quantile_seq_ids`, `quantile_positions` (the samples: the focus value only);
`similar_ids`, `similar_cosines`.

What it holds equals a pass over the same windows with the same settings: statistics, top examples, their
token windows, the histogram, quantile ranges, counts and samples, logit effects and similar features. It does
not hold: context activations of quantile samples, nor those of top examples beyond `act_context` (NaN: shown
uncoloured); the others within it are rounded to 1/255 of the maximum. The metadata names the corpus (its
fingerprint, windows read) and the fingerprints of the SAE and of the model up to the SAE's layer, so the file
is used only for the weights and corpus it was made from (`dashboards.evidence.shipped_dashboards`).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .effect_table import EffectTable
from .examples import Example, Histogram, QuantileGroup
from .rows import TokenText, empty_histogram, make_examples
from .select import EMPTY_EXPONENT, sample_keys
from .state import PassSettings

FORMAT = "scopewidgets-evidence/1"
SW = "scopewidgets."
_U16 = 65535


def _index_dtype(limit: int) -> torch.dtype:
    """The smallest integer dtype holding `[0, limit)`."""
    for dtype in (torch.uint8, torch.int16, torch.int32):
        if limit <= torch.iinfo(dtype).max + 1:
            return dtype
    return torch.int64


def _no_text(ids: torch.Tensor) -> list[str]:
    return [""] * len(ids)


def _quantile_tensors(dashes: Any, per_group: int, n_groups: int) -> dict[str, torch.Tensor]:
    """Each feature's quantile groups and histogram as the rows of a corpus pass give them (a loop over
    features: the writer runs once per release)."""
    rows, state = dashes.rows, dashes.state
    d, resolution = len(dashes), state.settings.group_resolution
    out = {
        "bounds": torch.zeros(d, n_groups + 1, dtype=torch.int32),
        "counts": torch.zeros(d, n_groups, dtype=torch.int32),
        "values": torch.zeros(d, n_groups * per_group),
        "seq": torch.zeros(d, n_groups * per_group, dtype=torch.long),
        "pos": torch.zeros(d, n_groups * per_group, dtype=torch.long),
        "histogram": torch.zeros(d, dashes.n_bins, dtype=torch.int64),
        "run": torch.zeros(d, dtype=torch.int32),
    }
    for col in range(d):
        exponent = int(state.exponent[col])
        if exponent == EMPTY_EXPONENT:
            continue
        histogram = rows.histogram(col, dashes.n_bins)
        out["histogram"][col] = torch.from_numpy(histogram.counts)
        out["run"][col] = round(histogram.edges[1] * state.settings.hist_resolution / 2.0**exponent)
        for g, group in enumerate(rows.quantiles(col, _no_text)):
            out["bounds"][col, g] = round(group.lower * resolution / 2.0**exponent)
            out["bounds"][col, g + 1] = round(group.upper * resolution / 2.0**exponent)
            out["counts"][col, g] = group.count
            for i, example in enumerate(group.examples):
                at = (col, g * per_group + i)
                out["values"][at], out["seq"][at], out["pos"][at] = (
                    example.max_value,
                    example.seq_index,
                    example.position,
                )
    return out


def _histogram_tensors(counts: torch.Tensor) -> dict[str, torch.Tensor]:
    """`histogram` uint16 counts (65535: look in `histogram_overflow`, rows of feature, bin, count)."""
    over = torch.nonzero(counts >= _U16).long()
    overflow = torch.cat([over, counts[over[:, 0], over[:, 1]][:, None]], 1)
    return {
        SW + "histogram": counts.clamp(max=_U16).to(torch.uint16),
        SW + "histogram_overflow": overflow if len(overflow) else torch.zeros(1, 3, dtype=torch.long) - 1,
    }


def evidence_tensors(dashes: Any, tokens: torch.Tensor, act_context: int) -> dict[str, torch.Tensor]:
    """The file's tensors from `dashes` (a finished pass over every feature, rows in feature order) and the
    `[n_seq, seq_len]` windows it read."""
    from .materialize import ensure_table

    state, d = dashes.state, dashes.sae.cfg.d_sae
    if state is None or not torch.equal(state.features.cpu(), torch.arange(d)):
        raise ValueError("An evidence file is written from a corpus pass over every feature of the SAE")
    settings = state.settings
    if not 0 <= act_context <= settings.top_side:
        raise ValueError(f"act_context must be in [0, {settings.top_side}], got {act_context}")
    k, side = settings.n_examples, settings.top_side
    top = state.finish().top.entries.map(lambda t: t.cpu())  # slots in canonical order
    used = top.seq >= 0
    stats = dashes.rows.stats()
    peak = torch.as_tensor(stats["max_activation"]).float()
    around = torch.cat(
        [top.acts[:, side - act_context : side], top.acts[:, side + 1 : side + act_context + 1]], 1
    )
    acts = around.view(d, k, 2 * act_context)  # the focus value itself is `activations`, exact
    scaled = acts / peak.clamp(min=torch.finfo(torch.float32).tiny)[:, None, None] * 255
    seq_type, pos_type = _index_dtype(tokens.shape[0]), _index_dtype(tokens.shape[1])
    table = ensure_table(dashes)
    quantiles = _quantile_tensors(dashes, settings.per_group, settings.n_groups)
    n_active = torch.as_tensor(stats["n_active"])
    return {
        "tokens": tokens.int(),
        "activations": torch.where(used, top.value, 0.0).view(d, k),
        "seq_ids": torch.where(used, top.seq, 0).view(d, k).to(seq_type),
        "positions": torch.where(used, top.pos, 0).view(d, k).to(pos_type),
        "feature_frequencies": torch.as_tensor(stats["density"]).float(),
        "top_tokens": table.top_ids.int(),
        "top_logits": table.top_values.float(),
        "bottom_tokens": table.bottom_ids.int(),
        "bottom_logits": table.bottom_values.float(),
        SW + "n_active": n_active.to(torch.int32 if int(n_active.max()) < 2**31 else torch.int64),
        SW + "max": peak,
        SW + "mean": torch.as_tensor(stats["mean_activation"]).double(),
        SW + "exponent": state.exponent.cpu().int(),
        SW + "top_acts": scaled.round().clamp(0, 255).to(torch.uint8),
        **_histogram_tensors(quantiles["histogram"]),
        SW + "histogram_run": quantiles["run"],
        SW + "quantile_bounds": quantiles["bounds"].to(torch.uint8 if settings.group_resolution < 256 else torch.int32),
        SW + "quantile_counts": quantiles["counts"],
        SW + "quantile_values": quantiles["values"],
        SW + "quantile_seq_ids": quantiles["seq"].to(seq_type),
        SW + "quantile_positions": quantiles["pos"].to(pos_type),
        SW + "similar_ids": table.similar_ids.to(_index_dtype(d)),
        SW + "similar_cosines": table.similar_cosines.float(),
    }  # fmt: skip


def write_evidence(
    dashes: Any,
    tokens: torch.Tensor,
    path: str | Path,
    *,
    corpus: str,
    corpus_key: str,
    total_windows: int,
    act_context: int = 5,
) -> Path:
    """Write `dashes` (a pass over every feature of its SAE, over the windows `tokens`) as a compact
    evidence file at `path`; `corpus` describes the windows, `corpus_key` fingerprints the corpus they were
    cut from (`cache.corpus_fingerprint`), `total_windows` is how many windows that corpus has.

    Example:
        >>> write_evidence(dashes, windows, folder / "examples.safetensors", corpus="mine",
        ...                corpus_key=key, total_windows=len(windows))   # doctest: +SKIP
    """
    from safetensors.torch import save_file

    from ..core.fingerprint import model_fingerprint, pass_fingerprint, sae_fingerprint

    scope, sae, state = dashes.scope, dashes.sae, dashes.state
    if int(tokens.shape[0]) != state.n_sequences or int(tokens.shape[1]) != state.settings.seq_len:
        raise ValueError(
            f"tokens {list(tokens.shape)} are not the windows of this pass ({state.n_sequences} of "
            f"{state.settings.seq_len} tokens)"
        )
    tensors = evidence_tensors(dashes, tokens, act_context)
    metadata = {
        "format": FORMAT,
        "settings": json.dumps(asdict(state.settings), sort_keys=True),
        "n_bins": str(dashes.n_bins),
        "act_context": str(act_context),
        "n_tokens": str(state.n_tokens),
        "corpus": corpus,
        "corpus_key": corpus_key,
        "windows": str(tokens.shape[0]),
        "total_windows": str(total_windows),
        "d_sae": str(sae.cfg.d_sae),
        "sae": sae_fingerprint(sae),
        "model": model_fingerprint(scope.model, sae.cfg.layer),
        "weights": pass_fingerprint(scope.model, sae),
    }
    path = Path(path)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path), metadata=metadata)
    return path


class ShippedEvidence:
    """An open evidence file written by `write_evidence` (metadata `meta`), read lazily."""

    def __init__(self, path: Path, handle: Any, meta: dict[str, str]) -> None:
        self.path, self.handle, self.meta = path, handle, meta
        self.settings = PassSettings(**json.loads(meta["settings"]))
        self.n_bins, self.act_context = int(meta["n_bins"]), int(meta["act_context"])
        self._tokens: torch.Tensor | None = None

    def whole(self, key: str) -> torch.Tensor:
        return self.handle.get_tensor(key)

    def row(self, key: str, feature: int) -> torch.Tensor:
        return self.handle.get_slice(key)[feature]

    @property
    def tokens(self) -> torch.Tensor:
        if self._tokens is None:
            self._tokens = self.whole("tokens").long()
        return self._tokens

    def windows(self, seq: torch.Tensor, pos: torch.Tensor, side: int) -> torch.Tensor:
        """`[N, 2 side + 1]` token ids around `(seq, pos)`, -1 outside the window (as a pass keeps them)."""
        where = pos[:, None] + torch.arange(-side, side + 1)
        inside = (where >= 0) & (where < self.tokens.shape[1])
        ids = self.tokens[seq[:, None], where.clamp(0, self.tokens.shape[1] - 1)]
        return torch.where(inside, ids, -1)

    def effect_table(self, features: torch.Tensor) -> EffectTable:
        """The logit effects and similar features of `features` (rows as the file holds them)."""
        rows = {
            k: self.whole(k)[features] for k in ("top_tokens", "top_logits", "bottom_tokens", "bottom_logits")
        }
        return EffectTable(
            features, rows["top_logits"], rows["top_tokens"].long(), rows["bottom_logits"],
            rows["bottom_tokens"].long(), self.whole(SW + "similar_ids")[features].long(),
            self.whole(SW + "similar_cosines")[features],
        )  # fmt: skip


class ShippedRows:
    """`FeatureRows` read from a `ShippedEvidence` for `features`, with the pass `settings` asked for (at
    most what the file holds: fewer examples or samples per group are the first ones a pass would keep)."""

    def __init__(self, evidence: ShippedEvidence, features: torch.Tensor, settings: PassSettings) -> None:
        self.evidence, self.features, self.settings = evidence, features, settings
        meta = evidence.meta
        self.n_tokens = int(meta["n_tokens"])
        self.source = (
            f"evidence file {evidence.path} ({meta['corpus']}; context activations known within "
            f"±{evidence.act_context} tokens of top examples, to 1/255 of the maximum)"
        )
        self._stats: dict[str, np.ndarray] | None = None

    def stats(self) -> dict[str, np.ndarray]:
        if self._stats is None:
            index, ev = self.features, self.evidence
            n_active = ev.whole(SW + "n_active")[index].long()
            self._stats = {
                "density": (n_active.double() / max(self.n_tokens, 1)).numpy(),
                "max_activation": ev.whole(SW + "max")[index].double().numpy(),
                "mean_activation": ev.whole(SW + "mean")[index].double().numpy(),
                "n_active": n_active.numpy(),
            }
        return self._stats

    def examples(self, col: int, text: TokenText) -> list[Example]:
        """The top examples, strongest first, with their token windows and known activations."""
        ev, feature = self.evidence, int(self.features[col])
        values = ev.row("activations", feature)[: self.settings.n_examples]
        keep = torch.nonzero(values > 0).flatten()
        values = values[keep]
        seq, pos = ev.row("seq_ids", feature)[keep].long(), ev.row("positions", feature)[keep].long()
        side, known = ev.settings.top_side, ev.act_context
        acts = torch.full((len(keep), 2 * side + 1), float("nan"))
        scale = float(ev.row(SW + "max", feature)) / 255
        around = ev.row(SW + "top_acts", feature)[keep].float() * scale
        acts[:, side - known : side], acts[:, side + 1 : side + known + 1] = (
            around[:, :known],
            around[:, known:],
        )
        acts[:, side] = values
        ids = ev.windows(seq, pos, side)
        return make_examples(ids, torch.where(ids >= 0, acts, 0.0), values, seq, pos, side, text)

    def quantiles(self, col: int, text: TokenText) -> list[QuantileGroup]:
        """The file's quantile groups, each with the `per_group` samples of smallest key, strongest first."""
        ev, feature, settings = self.evidence, int(self.features[col]), self.settings
        exponent = int(ev.row(SW + "exponent", feature))
        if not settings.n_groups or exponent == EMPTY_EXPONENT:
            return []
        stored = ev.settings.per_group
        values, bounds = ev.row(SW + "quantile_values", feature), ev.row(SW + "quantile_bounds", feature)
        seq = ev.row(SW + "quantile_seq_ids", feature).long()
        pos = ev.row(SW + "quantile_positions", feature).long()
        keys = sample_keys(seq * ev.settings.seq_len + pos, torch.full_like(seq, feature), ev.settings.seed)
        picks = []
        for g in range(settings.n_groups):
            slots = torch.arange(g * stored, (g + 1) * stored)
            slots = slots[values[slots] > 0]
            slots = slots[torch.argsort(keys[slots], stable=True)[: settings.per_group]]
            picks.append(slots[torch.argsort(-values[slots], stable=True)])
        chosen = torch.cat(picks)
        context = settings.context
        window = torch.full((len(chosen), 2 * context + 1), float("nan"))
        window[:, context] = values[chosen]
        ids = ev.windows(seq[chosen], pos[chosen], context)
        examples = make_examples(ids, window, values[chosen], seq[chosen], pos[chosen], context, text)
        counts = ev.row(SW + "quantile_counts", feature).tolist()
        n_active = int(ev.row(SW + "n_active", feature))
        scale, resolution = 2.0**exponent, ev.settings.group_resolution
        groups, start = [], 0
        for g, count in enumerate(counts):
            lo, hi = int(bounds[g]), int(bounds[g + 1])
            groups.append(QuantileGroup(lower=lo * scale / resolution, upper=hi * scale / resolution, count=count,
                                        fraction=count / max(n_active, 1),
                                        examples=examples[start : start + len(picks[g])]))  # fmt: skip
            start += len(picks[g])
        return groups

    def histogram(self, col: int, n_bins: int) -> Histogram:
        """The pass's histogram: `n_bins` equal bins from 0 to just above the maximum, exact counts."""
        ev, feature = self.evidence, int(self.features[col])
        exponent = int(ev.row(SW + "exponent", feature))
        if exponent == EMPTY_EXPONENT:
            return empty_histogram(n_bins)
        run = int(ev.row(SW + "histogram_run", feature))
        unit, resolution = 2.0**exponent, ev.settings.hist_resolution
        edges = np.arange(n_bins + 1, dtype=np.float64) * run * unit / resolution
        counts = ev.row(SW + "histogram", feature).long()
        if bool((counts == _U16).any()):
            overflow = ev.whole(SW + "histogram_overflow")
            mine = overflow[overflow[:, 0] == feature]
            counts[mine[:, 1]] = mine[:, 2]
        return Histogram(counts=counts.numpy(), edges=edges)
