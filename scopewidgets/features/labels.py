"""Automatic feature labels from a feature's evidence: what it fires on, and what it promotes.

`label_features(dashes)` gives every feature of a dashboard pass a short label such as
`Paris · Rome · London → capital · cities`:

- left of the arrow, the tokens the feature fires on most: the focus tokens of its top examples (the
  sequences where it is strongest), counted case-insensitively with surrounding whitespace removed, most
  frequent first (ties: the stronger example first); a whitespace token reads `(newline)`, `(space)`...
- right of the arrow, the tokens the feature promotes most. `effect="steer"` (the default): the tokens
  whose logits rise most, to first order, when steering with the feature (adding `s * w_dec[f]` at every
  non-BOS position of its site, averaged over the windows of `features.logit.context_windows`), through
  every layer after the site: `W_U @ (J @ w_dec[f])` with `J = features.logit.steering_jacobian(...)`
  (one forward and `d_model` backward passes, then the same products as below). `effect="direct"`: the
  decoder direction read straight by the unembedding (through the final norm's gain; the dashboards' logit
  table, SAEDashboard's measure), which skips the later layers, so for an SAE mid-model it is mostly noise
  (the demo's dog feature: `→ kön · jotka` directly, `→ animals · animal` by steering). Either way ALL
  features go through one chunked matrix product with a running top-k, and only whole words of the corpus
  compete: tokens of the pass's example windows that start a word (a space then letters) and mostly end it
  there (the next token is not a letter-initial piece), so ` Paris` wins over subword pieces such as
  ` conn` of the 262k vocabulary; where too few such tokens exist (tiny vocabularies) every token seen in
  the windows competes.

A feature with no example gets `(never fires on the corpus)`. Labels are plain strings, never NaN.
Hand-written labels (`labels.json`) win over automatic ones (`auto_labels.json`): see `SAE.label_source`.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import TYPE_CHECKING, Any

import torch

from ..core.effects import feature_logits, logit_effects
from ..dashboards.result import DashboardSet
from .logit import check_effect, steered_directions, steering_jacobian

if TYPE_CHECKING:
    from ..core.engine import Engine
    from ..core.sae import SAE

NEVER_FIRES = "(never fires on the corpus)"
ARROW, SEP = " → ", " · "
_WORD = re.compile(r" [^\W\d_]{2,}")
_MIN_WORDS = 256  # fewer word-start candidates than this: every token seen competes
_WHITESPACE = {"\n": "newline", " ": "space", "\t": "tab"}


def label_features(
    source: Engine | DashboardSet,
    features: Any = None,
    *,
    corpus: Any = None,
    n_fired: int = 3,
    n_promoted: int = 2,
    chunk: int = 1024,
    effect: str = "steer",
    progress: bool = True,
) -> dict[int, str]:
    """An automatic label for each feature: `{feature: "fired · tokens → promoted · tokens"}`.

    `source` is a `DashboardSet` (its features are labelled; `features` picks some of them), or a `Scope`
    (a dashboard pass of its first SAE over `corpus`, default the package's corpus, is run or reused from
    the disk cache; `features=None` is every feature). Put the labels on the SAE with
    `sae.auto_labels.update(labels)`; `save_sae` writes them to `auto_labels.json`. `effect` ("steer" or
    "direct") picks what "promotes" means (module docstring). "steer" needs the model's steering Jacobian at
    the SAE's site: found in the disk cache or shipped (the demo), else computed once with a progress bar
    (`progress`): `d_model` backward passes, ~4 minutes for the 270M demo model on 2 CPU cores, seconds to
    minutes on a GPU; "direct" needs none.

    Example:
        >>> import scopewidgets as sw
        >>> from scopewidgets.testing import tiny_scope
        >>> scope = tiny_scope(d_sae=16)
        >>> dashes = scope.dashboards(corpus=["The cat sat on the mat."] * 8, progress=False, cache=False)
        >>> labels = sw.label_features(dashes)
        >>> len(labels), " → " in labels[3] or labels[3] == "(never fires on the corpus)"
        (16, True)
    """
    check_effect(effect)
    dashes = source if isinstance(source, DashboardSet) else _pass(source, features, corpus)
    ids = dashes.rows.features if features is None else torch.tensor(sorted({int(f) for f in features}))
    cols = torch.tensor([dashes._column(int(f)) for f in ids.tolist()], dtype=torch.long)
    focus, windows = _focus_tokens(dashes, cols)
    text = _Decoder(dashes.scope.tokenizer)
    fired = [_fired_names(row, text, n_fired) for row in focus.tolist()]
    jacobian = steering_jacobian(dashes.scope, dashes.sae, progress=progress) if effect == "steer" else None
    promoted_ids = promoted_tokens(
        dashes.scope.model, dashes.sae, ids, candidates(windows, text), 4 * n_promoted, chunk, jacobian
    )
    labels = {}
    for feature, names, promotes in zip(ids.tolist(), fired, promoted_ids.tolist(), strict=True):
        wanted = _distinct((text.clean(t) for t in promotes), n_promoted)
        labels[feature] = SEP.join(names) + ARROW + SEP.join(wanted) if names else NEVER_FIRES
    return labels


def _pass(scope: Engine, features: Any, corpus: Any) -> DashboardSet:
    from ..dashboards.api import build_dashboards

    return build_dashboards(scope, features, corpus, n_quantile_groups=0)


def _focus_tokens(dashes: DashboardSet, cols: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`[n, n_examples]` focus token ids of each column's top examples, strongest first (-1: no example),
    and every top example window of the pass `[N, W]` (the corpus as the pass saw it; -1 pads)."""
    state = dashes.state
    if state is not None:
        entries, k = state.finish().top.entries, state.settings.n_examples  # slots in canonical order
        context = (entries.ids.shape[1] - 1) // 2  # windows are centred on the focus token
        ids = entries.ids.view(-1, k, entries.ids.shape[1]).cpu()
        value = entries.value.view(-1, k).cpu().masked_fill(entries.seq.view(-1, k).cpu() < 0, -torch.inf)
        order = value[cols].argsort(dim=1, descending=True, stable=True)
        focus = ids[cols, :, context].long().gather(1, order)
        focus = focus.masked_fill(value[cols].gather(1, order) == -torch.inf, -1)
        return focus, entries.ids.cpu().long()
    examples = [dashes.rows.examples(int(c), dashes.scope.token_strings) for c in cols.tolist()]
    width = max((len(e) for e in examples), default=0)
    focus = torch.full((len(examples), max(width, 1)), -1, dtype=torch.long)
    for row, found in enumerate(examples):
        for j, example in enumerate(found):
            focus[row, j] = int(example.token_ids[example.focus])
    windows = [e.token_ids.long() for found in examples for e in found]
    padded = torch.nn.utils.rnn.pad_sequence(windows, batch_first=True, padding_value=-1) if windows else None
    return focus, padded if padded is not None else torch.full((0, 1), -1, dtype=torch.long)


class _Decoder:
    """Token id -> cleaned display text, each id decoded once."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.memo: dict[int, str] = {}

    def raw(self, token: int) -> str:
        if token not in self.memo:
            self.memo[token] = self.tokenizer.decode([token], skip_special_tokens=False)
        return self.memo[token]

    def clean(self, token: int) -> str:
        return clean_token(self.raw(token))


def clean_token(text: str) -> str:
    """A token's text for a label: surrounding whitespace (and SentencePiece's `▁`) removed; a token that
    is only whitespace is named, e.g. `(newline)`, `(spaces)`; control characters are escaped (`\\x08`).

    Example:
        >>> clean_token(" Paris"), clean_token("\\n\\n"), clean_token("▁the"), clean_token(" ")
        ('Paris', '(newlines)', 'the', '(space)')
    """
    stripped = text.replace("▁", " ").strip()
    if stripped:
        return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in " ".join(stripped.split()))
    kinds = {_WHITESPACE.get(c, "whitespace") for c in text} or {"empty"}
    name = kinds.pop() if len(kinds) == 1 else "whitespace"
    return f"({name}{'s' if len(text) > 1 and name != 'whitespace' else ''})"


def _fired_names(focus: list[int], text: _Decoder, n: int) -> list[str]:
    """The `n` most frequent cleaned focus tokens (case-insensitive), ties by first (strongest) appearance."""
    names = [text.clean(t) for t in focus if t >= 0]
    counts = Counter(name.lower() for name in names)
    first: dict[str, str] = {}
    for name in names:
        first.setdefault(name.lower(), name)
    ranked = sorted(first, key=lambda key: -counts[key])  # stable: ties keep first appearance
    return [first[key] for key in ranked[:n]]


def _distinct(names: Any, n: int) -> list[str]:
    out: list[str] = []
    for name in names:
        if name.lower() not in {o.lower() for o in out}:
            out.append(name)
        if len(out) == n:
            break
    return out


def candidates(windows: torch.Tensor, text: Any) -> torch.Tensor:
    """The token ids that may be promoted in a label: the whole words among the tokens of `windows`
    (`[N, W]`, -1 pads), i.e. tokens that start a word (a space, then two or more letters) and, in most
    of their occurrences, end it (the next token does not start with a letter); every token of
    `windows` when fewer than 256 are whole words.

    Example:
        >>> from scopewidgets.testing import tiny_tokenizer
        >>> candidates(torch.tensor([[75, 76, -1]]), _Decoder(tiny_tokenizer())).tolist()
        [75, 76]
    """
    seen = windows[windows >= 0].unique()
    if seen.numel() == 0:
        return seen
    size = int(seen.max()) + 2
    continues = torch.zeros(size, dtype=torch.bool)
    starts = torch.zeros(size, dtype=torch.bool)
    for token in seen.tolist():
        raw = text.raw(token)
        continues[token] = raw[:1].isalpha()
        starts[token] = _WORD.fullmatch(raw) is not None
    now, after = windows[:, :-1].flatten(), windows[:, 1:].flatten()
    pair = (now >= 0) & (after >= 0)
    now, after = now[pair], after[pair]
    ends = torch.bincount(now[~continues[after]], minlength=size)
    total = torch.bincount(now, minlength=size)
    whole = starts & (2 * ends > total)
    words = torch.nonzero(whole).flatten()
    return words if words.numel() >= _MIN_WORDS else seen


@torch.inference_mode()
def promoted_tokens(
    model: torch.nn.Module,
    sae: SAE,
    features: torch.Tensor,
    allowed: torch.Tensor | None,
    k: int,
    chunk: int = 1024,
    jacobian: torch.Tensor | None = None,
) -> torch.Tensor:
    """`[n, k]` ids of the tokens each feature promotes most (`allowed` ids only; None: the whole
    vocabulary), strongest first: one matrix product per `chunk` features against `allowed` rows of the
    unembedding, with a running top-k over vocabulary blocks. The decoder direction is read directly
    (through the final norm's gain), or with `jacobian` (`steering_jacobian`) as `jacobian @ w_dec[f]`:
    the first-order change of the final hidden state when steering with the feature.

    Example:
        >>> from scopewidgets.testing import tiny_gemma3, random_sae
        >>> model, _ = tiny_gemma3()
        >>> promoted_tokens(model, random_sae(model, d_sae=8), torch.arange(8), None, k=3).shape
        torch.Size([8, 3])
    """
    vocab = None if allowed is None or allowed.numel() == 0 else allowed
    if features.numel() == 0:
        return torch.zeros(0, k, dtype=torch.long)
    if jacobian is None:
        return feature_logits(model, sae, features, k, chunk, progress=False, vocab=vocab)[1]
    parts = [
        logit_effects(
            model, steered_directions(sae, features[start : start + chunk], jacobian), k, vocab=vocab
        )
        for start in range(0, features.numel(), chunk)
    ]
    return torch.cat([ids.cpu() for _, ids, _, _ in parts])


__all__ = ["NEVER_FIRES", "candidates", "clean_token", "label_features", "promoted_tokens"]
