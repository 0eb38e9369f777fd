"""Statistics of every feature at a text's first token: where a user's text starts and a corpus window
seldom does.

`scope.activations(text)` reads BOS, then the text; a statistics pass reads windows of BOS then 127 tokens
cut from running text, so its first token is almost never where a text begins. Some features fire only
there: on the demo SAE #1288 fires at 96 on "The" opening a text and never on " The" inside one. Over
corpus windows it looks rare (density 0.17%), so it would lead every list of a text that opens with "The".
Its density over text starts is 20%.

The activation at the first token depends on that token alone (the model is causal and BOS is fixed), so
these statistics are exact from one two-token pass (BOS, token) per distinct opening token, weighted by how
often that token opens a sentence or a line of the corpus (`openings`). The ranking uses them for the
first token of a text (`ranking.token_scores`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import torch

from ..core.sae import SAE

if TYPE_CHECKING:
    from ..core.engine import Engine

#: Where a new sentence or line begins: after ., ! or ? and white space, or after line breaks.
BREAK = re.compile(r"(?<=[.!?])\s+|\n+")
#: The most frequent opening tokens passed through the model (the rest weigh little: on the default
#: corpus the first 2,048 of 4,840 cover 93% of the 48,355 openings).
MAX_OPENINGS = 2048


def openings(tokenizer: Any, texts: Iterable[str]) -> Counter[int]:
    """How often each token id opens a sentence or a line of `texts` (its first token when that piece is
    tokenized on its own, as a user's text is after BOS). Pieces shorter than 3 characters are skipped.

    Example:
        >>> from scopewidgets.testing import tiny_tokenizer
        >>> counts = openings(tiny_tokenizer(), ["ab cd. ab ef!\\nxy z"])
        >>> sum(counts.values())
        3
    """
    pieces = [p.strip() for text in texts for p in BREAK.split(text)]
    pieces = [p for p in pieces if len(p) >= 3]
    counts: Counter[int] = Counter()
    for start in range(0, len(pieces), 512):
        for ids in tokenizer(pieces[start : start + 512], add_special_tokens=False)["input_ids"]:
            if ids:
                counts[int(ids[0])] += 1
    return counts


@torch.inference_mode()
def start_stats(
    scope: Engine,
    sae: SAE,
    texts: Iterable[str] | None = None,
    *,
    max_openings: int = MAX_OPENINGS,
    batch_size: int = 256,
    progress: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """`(density, mean, n_starts)` of every feature of `sae` at the first token of a text: the fraction
    of the openings of `texts` (default: the default corpus) where it fires, its mean activation there when
    it fires (0 if never), and how many openings were counted (those of the `max_openings` most frequent
    opening tokens).

    Example:
        >>> density, mean, n = start_stats(scope, scope.sae())                # doctest: +SKIP
        >>> float(density[1288])                                               # doctest: +SKIP
        0.14
    """
    from tqdm.auto import tqdm

    from ..core import corpus as corpus_module

    bos = corpus_module.bos_id(scope.tokenizer)
    counts = openings(scope.tokenizer, corpus_module.default() if texts is None else texts)
    counts.pop(bos, None)
    if not counts:
        raise ValueError("No sentence or line starts in these texts: start statistics need some")
    frequent = counts.most_common(max_openings)
    ids = torch.tensor([token for token, _ in frequent], dtype=torch.long)
    weight = torch.tensor([n for _, n in frequent], dtype=torch.float64)
    fired = torch.zeros(sae.cfg.d_sae, dtype=torch.float64)
    total = torch.zeros(sae.cfg.d_sae, dtype=torch.float64)
    bar = tqdm(total=len(ids), desc="Statistics at text starts", unit="token", disable=not progress)
    for part, w in zip(ids.split(batch_size), weight.split(batch_size), strict=True):
        pairs = torch.stack([torch.full_like(part, bos), part], dim=1)
        values = scope.encode(pairs, [sae])[0][:, 1].double().clamp_min(0).cpu()  # [b, d_sae]
        fired += w @ (values > 0).double()
        total += w @ values
        bar.update(len(part))
    bar.close()
    n_starts = float(weight.sum())
    return (fired / n_starts).float(), (total / fired.clamp_min(1e-12)).float(), int(n_starts)
