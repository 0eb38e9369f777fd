"""`Engine`: a Gemma model, its tokenizer and the SAEs placed on it; tokenize, encode.

Every analysis function takes an engine (the `Scope` facade is one) and uses only what is here, so
analysis never calls back up through `Scope`. The engine also holds the dashboard passes it remembers
(`passes`: one bounded memory for `scope.dashboard(f)`, feature statistics and the explorer).
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from . import sites
from . import validate as checked
from .corpus import bos_id
from .hooks import capture
from .memory import PassMemory
from .sae import SAE

SaeRef = int | SAE | None


class Engine:
    """A hooked view of a Gemma model and one or more SAEs. The model is used as is (no weight processing).

    Example:
        >>> from scopewidgets.testing import tiny_gemma3, random_sae
        >>> model, tok = tiny_gemma3()
        >>> engine = Engine(model, tok, saes=[random_sae(model, "resid_post", 1, d_sae=32)])
        >>> ids = engine.tokenize("The Eiffel Tower")
        >>> engine.encode(ids)[0].shape[-1], engine.token_strings(ids[:1])
        (32, ['<bos>'])
    """

    def __init__(self, model: nn.Module, tokenizer: Any, saes: Sequence[SAE] | SAE = ()) -> None:
        self.model = model
        self.tokenizer = tokenizer
        device = self.device
        saes = [saes] if isinstance(saes, SAE) else list(saes)
        for index, sae in enumerate(saes):
            self._validate_sae(sae, index)
        self.saes: list[SAE] = [sae.to(device) for sae in saes]
        self.passes = PassMemory()  # the dashboard passes it remembers (one bounded memory)

    def __repr__(self) -> str:
        names = ", ".join(f"{s.cfg.site}@{s.cfg.layer} ({s.cfg.d_sae})" for s in self.saes) or "no SAEs"
        return f"{type(self).__name__}({type(self.model).__name__}, {sites.n_layers(self.model)} layers, SAEs: {names})"

    @property
    def device(self) -> torch.device:
        """The device of the model's parameters."""
        return next(self.model.parameters()).device

    # ----------------------------------------------------------------------------------------- SAEs
    def _validate_sae(self, sae: SAE, index: int) -> None:
        if not isinstance(sae, SAE):
            raise ValueError(f"saes[{index}] is a {type(sae).__name__}, expected scopewidgets.SAE")
        cfg = sae.cfg
        if cfg.site is None or cfg.layer is None:
            raise ValueError(
                f"SAE {index} ({cfg.source}) does not say where it reads; load it with "
                "load_sae(..., site=..., layer=...)"
            )
        sites.check_layer(self.model, cfg.layer)
        for site in (cfg.site, cfg.site_out):
            if site is not None:
                width = sites.site_width(self.model, site)
                if cfg.d_in != width:
                    raise ValueError(
                        f"SAE {index} has d_in={cfg.d_in} but {site} at layer {cfg.layer} of this model has "
                        f"width {width}; an SAE for this site must have d_in={width}"
                    )

    def sae(self, sae: SaeRef = None) -> SAE:
        """The SAE named by `sae`: an index into `scope.saes`, an SAE object, or None for the first."""
        if not self.saes and not isinstance(sae, SAE):
            raise ValueError("This Scope has no SAEs; pass saes=[...] when creating it")
        if sae is None:
            return self.saes[0]
        if isinstance(sae, SAE):
            if not any(sae is s for s in self.saes):
                self._validate_sae(sae, len(self.saes))
                return sae.to(self.device)
            return sae
        try:
            index = operator.index(sae)
        except TypeError:
            raise ValueError(f"sae must be an index or an SAE, got {sae!r}") from None
        if not 0 <= index < len(self.saes):
            raise ValueError(f"SAE index {index} is out of range: this Scope has SAEs [0, {len(self.saes)})")
        return self.saes[index]

    # ----------------------------------------------------------------------------------------- tokens
    def tokenize(self, text_or_ids: str | Sequence[int] | torch.Tensor) -> torch.Tensor:
        """`[n_tokens]` ids: text gets BOS prepended; ids are used as given (include BOS yourself).

        Raises a `ValueError` for empty input, ids outside the vocabulary and inputs longer than the
        model's context.
        """
        if isinstance(text_or_ids, str):
            text = checked.text(text_or_ids, "text")
            body = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            ids = torch.tensor([bos_id(self.tokenizer), *body], dtype=torch.long)
        else:
            ids = checked.token_ids(text_or_ids, "text_or_ids")
            if ids.numel() == 0:
                raise ValueError(f"text_or_ids is empty ({text_or_ids!r}); give at least one token id")
            vocab = sites.vocab_size(self.model)
            bad = ids[(ids < 0) | (ids >= vocab)]
            if bad.numel():
                raise ValueError(
                    f"Token id {int(bad[0])} is outside the vocabulary: ids must be in [0, {vocab})"
                )
        limit = sites.context_length(self.model)
        if ids.numel() > limit:
            raise ValueError(
                f"The input has {ids.numel()} tokens; this model's context allows at most {limit}"
            )
        return ids

    def token_strings(self, ids: torch.Tensor | Sequence[int]) -> list[str]:
        """Each id decoded on its own (leading spaces kept), for display."""
        ids = [int(i) for i in ids]
        return [self.tokenizer.decode([i], skip_special_tokens=False) for i in ids]

    # ----------------------------------------------------------------------------------------- features
    @torch.inference_mode()
    def encode(self, ids: torch.Tensor, saes: Sequence[SaeRef] | None = None) -> list[torch.Tensor]:
        """Feature activations `[batch, pos, d_sae]` for each SAE, from ONE forward stopped after the
        deepest SAE's site. BOS positions are set to zero.
        """
        chosen = [self.sae(s) for s in saes] if saes is not None else self.saes
        if not chosen:
            raise ValueError("This Scope has no SAEs; pass saes=[...] when creating it")
        ids = ids.to(self.device)
        if ids.ndim == 1:
            ids = ids[None]
        with capture(self.model, [(s.cfg.site, s.cfg.layer) for s in chosen]) as acts:
            self.model(input_ids=ids, use_cache=False)
        not_bos = (ids != bos_id(self.tokenizer))[..., None]
        return [s.encode(acts[s.cfg.site, s.cfg.layer]).float() * not_bos for s in chosen]
