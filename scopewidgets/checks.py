"""Hypothesis checks: feature search, ablation, attribution and comparison of prompts.

Each returns a frozen dataclass with `to_dataframe()` (and `plot()` where a picture helps) that displays
itself as a table in the notebook.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd
import torch

from .activations import activations_of
from .core import sites
from .core import validate as checked
from .core.display import Displayable, present
from .core.hooks import patch
from .core.sae import SAE
from .features.columns import density_column, label_column

if TYPE_CHECKING:
    from .core.engine import Engine
    from .widgets.search import SearchWidget


@dataclass(frozen=True)
class _Table:
    """A result that is a table: shows as one in the notebook."""

    table: pd.DataFrame

    def to_dataframe(self) -> pd.DataFrame:
        """The result as a pandas DataFrame (a copy; -0.0 is stored as 0.0, so it never prints "-0.000000")."""
        table = self.table.copy()
        floats = table.select_dtypes("float").columns
        table[floats] = table[floats] + 0.0
        return table

    def _repr_html_(self) -> str:
        """4 significant digits ("-3e-08", never "-0.000000"); a value not computed shows "–", not NaN."""
        shown = self.to_dataframe().to_html(max_rows=40, float_format=_significant, na_rep="–")
        return f"<b>{type(self).__name__}</b>" + shown

    def __repr__(self) -> str:
        """The text form (the notebook's text/plain): the table as `_repr_html_` shows it."""
        shown = self.to_dataframe().to_string(max_rows=40, float_format=_significant, na_rep="–")
        return f"{type(self).__name__}\n{shown}"

    def __len__(self) -> int:
        return len(self.table)


def _significant(value: float) -> str:
    return f"{value:.4g}"


@dataclass(frozen=True)
class SearchResult(Displayable, _Table):
    """Features found by `scope.search`: columns `feature`, `score`, `density`, `label` (+ `activation`,
    `position` and `token` where they peak for a text search; the promoted `token` for a logit search).

    Displays itself as a clickable table (`widget()`: click a row and `selected_feature` follows), with the
    plain HTML table for front ends without widgets. `scope.explorer()` has a search box whose results
    open their dashboards.

    Example:
        >>> result = scope.search("The Eiffel Tower is in Paris", k=5)   # doctest: +SKIP
        >>> view = result.widget()                                      # doctest: +SKIP
        >>> view.selected_feature                                       # doctest: +SKIP
    """

    query: str = ""

    @property
    def features(self) -> list[int]:
        return self.table.feature.tolist()

    def widget(self) -> SearchWidget:
        """A new clickable table of these features (`selected_feature` follows clicks)."""
        return present(self)

    def _repr_text(self) -> str:
        head = ", ".join(f"#{f}" for f in self.features[:8]) + (" ..." if len(self) > 8 else "")
        return f"SearchResult for {self.query}: {len(self)} features ({head or 'none'})"

    def _repr_fallback_html(self) -> str:
        return self._repr_html_()


@dataclass(frozen=True, repr=False)  # the table's own text form (_Table.__repr__)
class AblationResult(_Table):
    """Next-token probabilities before and after zeroing features: `token`, `p_clean`, `p_ablated`, `delta`."""

    features: tuple[int, ...] = ()

    def plot(self, ax: Any = None) -> Any:
        """Horizontal bars of the probability change per token (matplotlib)."""
        return _barh(
            self.table.token.tolist(),
            self.table.delta.tolist(),
            "change in probability",
            ax,
            title=f"zeroing features {list(self.features)}",
        )


@dataclass(frozen=True, repr=False)  # the table's own text form (_Table.__repr__)
class Attribution(_Table):
    """Gradient x activation of each feature on a target logit, with exact ablation effects for the top few.

    Columns: `feature`, `attribution` (summed over positions), `ablation_effect` (the clean target logit minus
    the target logit with the feature zeroed at every position, error term kept: what attribution estimates
    to first order; NaN beyond the `check` strongest), `density`, `label`. `target_logit` is the clean logit.
    The SAE's reserved features are left out unless asked for (`include_reserved=True`).
    """

    target: str = ""
    target_logit: float = 0.0

    def plot(self, ax: Any = None) -> Any:
        """Bars of the top attributions (matplotlib)."""
        return _barh(
            [str(f) for f in self.table.feature],
            self.table.attribution.tolist(),
            "attribution",
            ax,
            title=f"features driving {self.target!r}",
        )


@dataclass(frozen=True, repr=False)  # the table's own text form (_Table.__repr__)
class Comparison(_Table):
    """Features that differ most between two prompts: `feature`, `a`, `b` (max activations), `difference`
    (`b - a`), `score` (the ranking's difference: specificity of b minus that of a, or `b - a` with
    `rank="activation"`), `density`, `label`."""

    def plot(self, ax: Any = None) -> Any:
        """Bars of `b - a` per feature (matplotlib)."""
        return _barh(
            [str(f) for f in self.table.feature], self.table.difference.tolist(), "b - a (max activation)", ax
        )


def _barh(labels: list[str], values: list[float], xlabel: str, ax: Any, title: str = "") -> Any:
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 0.3 * len(labels) + 1))
    ax.barh(range(len(values)), values, color=["#c0392b" if v < 0 else "#2e86c1" for v in values])
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    return ax


def token_id(scope: Engine, token: str | int) -> int:
    """A single token id from an id or a string that tokenizes to exactly one token (e.g. `" Paris"`)."""
    vocab = sites.vocab_size(scope.model)
    if isinstance(token, str):
        pieces = scope.tokenizer(token, add_special_tokens=False)["input_ids"]
        if len(pieces) != 1:
            raise ValueError(
                f"{token!r} is {len(pieces)} tokens ({scope.token_strings(pieces)}); give one token"
            )
        return int(pieces[0])
    index = checked.integer(token, "token (a str that is one token, or an int id)")
    if not 0 <= index < vocab:
        raise ValueError(f"Token id {index} is outside the vocabulary: ids must be in [0, {vocab})")
    return index


def search(
    scope: Engine,
    query: str | None,
    k: int,
    sae: SAE,
    token: str | None,
    logit: str | int | None,
    *,
    rank: str = "specific",
    include_reserved: bool = False,
    effect: str = "steer",
) -> SearchResult:
    """See `Scope.search`."""
    from .features import feature_stats, ranking
    from .features.logit import check_effect, logit_search

    k = checked.integer(k, "k", minimum=1)
    ranking.check_rank(rank)
    check_effect(effect)  # checked for a text query too, where it has no use, so a typo never passes
    if logit is not None and query is not None:
        raise ValueError("search takes a text query or logit=' token', not both")
    if logit is not None and not isinstance(logit, str):
        logit = checked.integer(logit, "logit (a token string or an int token id)")
    if logit is not None:
        stats = feature_stats(sae, scope)
        table, caption = logit_search(
            scope, sae, logit, k, stats, include_reserved=include_reserved, effect=effect
        )
        return SearchResult(table, query=caption)
    if query is None or (isinstance(query, str) and not query):
        raise ValueError("search needs a text query, or logit=' token'")
    query = checked.text(query, "query")
    acts = activations_of(scope, query, sae)
    rows, matched = torch.ones(len(acts), dtype=torch.bool), ""
    if token is not None:
        rows, matched = token_rows(acts.tokens, checked.text(token, "token"))
    stats = acts.stats
    chosen = torch.nonzero(rows).flatten()
    first = set(acts.start_rows)
    starts = [i for i, row in enumerate(chosen.tolist()) if row in first]
    feats, scores = ranking.top_features(
        acts.values[chosen],
        stats,
        k,
        rank=rank,
        reserved=sae.reserved_features,
        include_reserved=include_reserved,
        starts=starts,
    )
    peak, where = acts.values[:, feats][chosen].max(dim=0)  # only the listed features' columns
    positions = chosen[where]
    table = pd.DataFrame(
        {
            "feature": feats.tolist(),
            "score": scores.tolist(),
            "activation": peak.tolist(),
            "density": density_column(stats, feats),
            "position": positions.tolist(),
            "token": [acts.tokens[int(p)] for p in positions],
            "label": label_column(sae, feats),
        }
    )
    return SearchResult(table, query=query if token is None else f"{query!r} at {matched}")


def token_rows(tokens: Sequence[str], token: str) -> tuple[torch.Tensor, str]:
    """Where `token` is in a text's `tokens`, as a `[len(tokens)]` bool mask, and a caption naming what
    matched. A token typed with its leading space (`" Paris"`) matches that token; a word typed without one
    (`"Paris"`) matches both forms, since the tokenizer writes the space into the token (`" Paris"`
    mid-sentence, `"Paris"` at the start). When no such token occurs, a word the tokenizer splits
    (`"Eiffel"` -> `" E" "iff" "el"`) matches every token of each whole occurrence. Anything else is a
    `ValueError` listing the text's tokens.

    Example:
        >>> mask, caption = token_rows(["<bos>", "The", " city", " of", " Paris"], "Paris")
        >>> mask.nonzero().flatten().tolist(), caption
        ([4], "' Paris'")
        >>> token_rows(["<bos>", "The", " E", "iff", "el", " Tower"], "Eiffel")[1]
        "'Eiffel' (its tokens ' E' 'iff' 'el')"
    """
    forms = {token} if token[:1].isspace() else {token, " " + token}
    rows = torch.tensor([t in forms for t in tokens])
    if rows.any():
        found = dict.fromkeys(t for t in tokens if t in forms)  # in the order they occur
        return rows, " or ".join(repr(t) for t in found)
    word = token.strip()
    spans = _word_spans(tokens, word) if word else []
    if not spans:
        raise ValueError(
            f"Token {token!r} does not occur in the query (with or without its leading space, or as a "
            f"whole word of several tokens); its tokens are {list(tokens)}"
        )
    for start, stop in spans:
        rows[start:stop] = True
    start, stop = spans[0]
    return rows, f"{word!r} (its tokens {' '.join(repr(t) for t in tokens[start:stop])})"


def _word_spans(tokens: Sequence[str], word: str) -> list[tuple[int, int]]:
    """`[(start, stop)]`: runs of tokens that spell `word` (leading space aside) as a whole word: starting
    after a space or a non-letter, and not followed by a letter or digit."""
    spans = []
    for start, first in enumerate(tokens):
        after_word = start > 0 and tokens[start - 1][-1:].isalnum()
        spelled = first.lstrip()
        if not spelled or (after_word and not first[:1].isspace()):  # spaces alone, or inside a word
            continue
        stop = start + 1
        while len(spelled) < len(word) and stop < len(tokens) and word.startswith(spelled):
            spelled += tokens[stop]
            stop += 1
        if spelled == word and (stop == len(tokens) or not tokens[stop][:1].isalnum()):
            spans.append((start, stop))
    return spans


def _minus_features(sae: SAE, features: torch.Tensor, keep: torch.Tensor, scale: float = 1.0) -> Any:
    """Edit removing `scale` x the chosen features' decoded contribution at positions `keep`.

    Zeroing features this way keeps the SAE error term exact: h' = h + decode(f') - decode(f).
    """

    def edit(h: torch.Tensor) -> torch.Tensor:
        codes = sae.encode(h)[..., features]
        delta = (codes @ sae.W_dec[features]) * keep[..., None]
        return h - (scale * delta).to(h.dtype)

    return edit


@torch.inference_mode()
def _last_logits(scope: Engine, ids: torch.Tensor, sae: SAE | None = None, edit: Any = None) -> torch.Tensor:
    ids = ids[None].to(scope.device)
    if edit is None:
        return scope.model(input_ids=ids, use_cache=False).logits[0, -1].float()
    with patch(scope.model, sae.cfg.site, sae.cfg.layer, edit):
        return scope.model(input_ids=ids, use_cache=False).logits[0, -1].float()


def ablate(scope: Engine, prompt: str, features: Sequence[int], sae: SAE, k: int) -> AblationResult:
    """See `Scope.ablate`."""
    wanted = checked.feature_list(features, "features", sae.cfg.d_sae)
    chosen = torch.tensor(wanted, dtype=torch.long, device=sae.device)
    k = checked.integer(k, "k", minimum=1)
    ids = scope.tokenize(checked.text(prompt, "prompt"))
    keep = (ids != scope.tokenizer.bos_token_id).to(scope.device)[None]
    clean = _last_logits(scope, ids).softmax(-1)
    ablated = _last_logits(scope, ids, sae, _minus_features(sae, chosen, keep)).softmax(-1)
    delta = ablated - clean
    top = torch.cat([clean.topk(k).indices, delta.abs().topk(k).indices]).unique(sorted=False)
    top = top[delta[top].abs().argsort(descending=True)]
    table = pd.DataFrame(
        {
            "token": scope.token_strings(top),
            "token_id": top.tolist(),
            "p_clean": clean[top].tolist(),
            "p_ablated": ablated[top].tolist(),
            "delta": delta[top].tolist(),
        }
    )
    return AblationResult(table, features=tuple(int(f) for f in chosen))


def attribute(
    scope: Engine,
    prompt: str,
    target: str | int,
    sae: SAE,
    k: int,
    check: int,
    *,
    include_reserved: bool = False,
) -> Attribution:
    """See `Scope.attribute`."""
    from .features import feature_stats, ranking

    target_id = token_id(scope, target)
    k, check = checked.integer(k, "k", minimum=1), checked.integer(check, "check", minimum=0)
    ids = scope.tokenize(checked.text(prompt, "prompt"))
    keep = (ids != scope.tokenizer.bos_token_id).to(scope.device)[None]
    store: dict[str, torch.Tensor] = {}

    def splice(h: torch.Tensor) -> torch.Tensor:
        codes = (sae.encode(h.detach()) * keep[..., None]).requires_grad_(True)
        store["codes"] = codes
        recon = codes @ sae.W_dec
        return (h.detach() - (codes.detach() @ sae.W_dec).to(h.dtype) + recon.to(h.dtype)).to(h.dtype)

    with torch.enable_grad(), patch(scope.model, sae.cfg.site, sae.cfg.layer, splice):
        logit = scope.model(input_ids=ids[None].to(scope.device), use_cache=False).logits[0, -1, target_id]
        (grad,) = torch.autograd.grad(logit, store["codes"])
    scores = (grad * store["codes"].detach())[0].sum(0)
    hidden = ranking.hidden_mask(scores.numel(), sae.reserved_features, include_reserved).to(scores.device)
    # -1 sits below every |attribution|, so a hidden feature is never picked
    size = scores.abs().masked_fill(hidden, -1.0)
    top = size.topk(min(k, int((~hidden).sum()))).indices
    effects = torch.full((len(top),), float("nan"))
    for i, feature in enumerate(top[:check]):
        edited = _last_logits(scope, ids, sae, _minus_features(sae, feature[None], keep))
        effects[i] = logit.item() - edited[target_id].item()
    table = pd.DataFrame(
        {
            "feature": top.tolist(),
            "attribution": scores[top].tolist(),
            "ablation_effect": effects.tolist(),
            "density": density_column(feature_stats(sae, scope), top),
            "label": label_column(sae, top),
        }
    )
    return Attribution(table, target=scope.token_strings([target_id])[0], target_logit=logit.item())


def compare(
    scope: Engine,
    prompt_a: str,
    prompt_b: str,
    sae: SAE,
    k: int,
    *,
    rank: str = "specific",
    include_reserved: bool = False,
) -> Comparison:
    """See `Scope.compare`."""
    from .features import ranking

    ranking.check_rank(rank)
    k = checked.integer(k, "k", minimum=1)
    prompt_a, prompt_b = checked.text(prompt_a, "prompt_a"), checked.text(prompt_b, "prompt_b")
    acts_a, acts_b = activations_of(scope, prompt_a, sae), activations_of(scope, prompt_b, sae)
    stats = acts_a.stats
    a, score_a = ranking.peak_and_scores(acts_a.values, stats, rank, acts_a.start_rows)
    b, score_b = ranking.peak_and_scores(acts_b.values, stats, rank, acts_b.start_rows)
    score = score_b - score_a
    hidden = ranking.hidden_mask(a.numel(), sae.reserved_features, include_reserved)
    candidates = torch.nonzero(((a > 0) | (b > 0)) & ~hidden).flatten()
    top = candidates[torch.sort(score[candidates].abs(), descending=True, stable=True).indices[:k]]
    table = pd.DataFrame(
        {
            "feature": top.tolist(),
            "a": a[top].tolist(),
            "b": b[top].tolist(),
            "difference": (b - a)[top].tolist(),
            "score": score[top].tolist(),
            "density": density_column(stats, top),
            "label": label_column(sae, top),
        }
    )
    return Comparison(table)
