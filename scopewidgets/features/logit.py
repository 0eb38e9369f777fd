"""Logit search: live features whose decoder direction most promotes a token, with the invisible leading
space handled (`"Paris"` tries `"Paris"` and `" Paris"` and says which token each feature promotes)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
import torch

from ..core import sites
from ..core.effects import token_effects
from ..core.sae import SAE
from .columns import density_column, label_column
from .ranking import hidden_mask
from .stats import FeatureStats

if TYPE_CHECKING:
    from ..core.engine import Engine


def token_forms(scope: Engine, token: str | int) -> tuple[list[int], str]:
    """The single-token ids a logit query stands for, and a sentence saying which were used.

    An id is used as given. A string is used as typed when it is one token; a string without a leading
    space also tries `" " + string` (the form a word takes inside a sentence), and both are used when both
    are single tokens. When no form is one token, a `ValueError` lists each form's tokens.

    Example:
        >>> token_forms(scope, "Paris")                          # doctest: +SKIP
        ([50429, 9079], "tokens 'Paris' and ' Paris'")
    """
    if not isinstance(token, str):
        vocab = sites.vocab_size(scope.model)
        if isinstance(token, bool) or not 0 <= int(token) < vocab:
            raise ValueError(f"Token id {token!r} is outside the vocabulary: ids must be in [0, {vocab})")
        return [int(token)], f"token {scope.token_strings([int(token)])[0]!r}"
    if not token:
        raise ValueError("The logit token is empty; give one token such as ' Paris'")
    forms = [token] if token[0].isspace() else [token, " " + token]
    pieces = {form: scope.tokenizer(form, add_special_tokens=False)["input_ids"] for form in forms}
    used = [form for form in forms if len(pieces[form]) == 1]
    if not used:
        listed = "; ".join(
            f"{form!r} is {len(ids)} tokens {scope.token_strings(ids)}" for form, ids in pieces.items()
        )
        raise ValueError(f"Logit search needs a single token: {listed}. Give one of those tokens")
    skipped = [form for form in forms if form not in used]
    said = " and ".join(repr(form) for form in used)
    note = "".join(f" ({form!r} is {len(pieces[form])} tokens)" for form in skipped)
    return [int(pieces[form][0]) for form in used], f"token{'s' if len(used) > 1 else ''} {said}{note}"


@torch.inference_mode()
def logit_search(
    scope: Engine,
    sae: SAE,
    token: str | int,
    k: int,
    stats: FeatureStats,
    *,
    include_reserved: bool = False,
) -> tuple[pd.DataFrame, str]:
    """The `k` live features (density > 0) with the largest logit effect on the token(s) of `token`
    (decoder direction through the final norm's gain and the unembedding; with two forms, the larger),
    and a caption saying which tokens were used.

    Columns: `feature`, `score` (logit effect per unit of activation), `token` (the form promoted most),
    `density`, `label`.
    """
    ids, caption = token_forms(scope, token)
    effects = token_effects(scope.model, sae, ids)  # [d_sae, n_forms]
    best, form = effects.max(dim=1)
    allowed = stats.live & ~hidden_mask(sae.cfg.d_sae, sae.reserved_features, include_reserved)
    candidates = torch.nonzero(allowed).flatten()
    order = torch.sort(best[candidates], descending=True, stable=True).indices[:k]
    chosen = candidates[order]
    names = scope.token_strings(ids)
    table = pd.DataFrame(
        {
            "feature": chosen.tolist(),
            "score": best[chosen].tolist(),
            "token": [names[int(i)] for i in form[chosen]],
            "density": density_column(stats, chosen),
            "label": label_column(sae, chosen),
        }
    )
    return table, f"logit of {caption}, among {int(allowed.sum())} live features"
