"""Steering with SAE features: default and steered completions of one prompt, generated together.

`scope.steer(...)` is the public entry point (see `Scope.steer`); this module holds the result type
`Steering` and the code behind it. The default and steered completions are ONE batch (row 0 default,
row 1 steered; the hook at the SAE's site edits row 1 only) sampled with shared noise, so any difference
between them is caused by the steering alone (`steering.generate`, `steering.hook`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd
import torch

from ..core import sites
from ..core.display import Displayable, present
from ..core.hooks import patch
from ..core.sae import SAE
from ..features.columns import density_column, known_stats
from .args import SteeringSettings, check_features, check_generation, check_steerable
from .generate import PairCursor, generate_pair
from .hook import SteeringEdit

if TYPE_CHECKING:
    from ..core.engine import Engine, SaeRef
    from ..widgets.steering import SteeringPanel

TokenCallback = Callable[[str | None, str | None], None]


@dataclass(frozen=True, eq=False)
class Steering(Displayable):
    """A default and a steered completion of one prompt, generated in one batch with the same noise.

    Fields: `prompt`, `features` `{feature: strength}`, `settings` (`SteeringSettings`: `method`,
    `max_new_tokens`, `temperature`, `seed`, `positions`, also read as `result.method`...), the `sae`, the prompt's `prompt_tokens`/`prompt_ids`, and for
    each completion its new token ids (`default_ids`, `steered_ids`, `[n]` long, EOS kept when reached),
    display strings (`default_tokens`, `steered_tokens`), text (`default_text`, `steered_text`, special
    tokens skipped) and `*_activations` `[n, n_features]` float32: the SAE's activation of each steered
    feature (columns in `features` order) on each generated token, as run — read at the SAE's site after
    the steering edit, i.e. the value the rest of the model saw. On steered positions that includes the
    edit (after `ablate` it is ~0); with `positions="prompt"` the generated tokens show whether the model
    itself now expresses the feature. `densities` `{feature: density}`: each steered feature's density
    (fraction of corpus tokens where it fires) from the SAE's statistics when known without a pass, else
    NaN. Equality is identity (the fields hold tensors). Displays itself as the
    two completions side by side with the differing tokens marked (`widget()`, `save_html(path)`).

    Example:
        >>> import scopewidgets as sw
        >>> from scopewidgets.testing import tiny_gemma3, random_sae
        >>> model, tok = tiny_gemma3()
        >>> scope = sw.Scope(model, tok, saes=[random_sae(model, d_sae=32)])
        >>> out = scope.steer("Hello", {3: 0.0}, max_new_tokens=5)
        >>> out.steered_text == out.default_text, out.default_activations.shape
        (True, torch.Size([5, 1]))
    """

    prompt: str
    features: dict[int, float]
    settings: SteeringSettings
    prompt_tokens: list[str]
    prompt_ids: torch.Tensor
    default_ids: torch.Tensor
    steered_ids: torch.Tensor
    default_tokens: list[str]
    steered_tokens: list[str]
    default_text: str
    steered_text: str
    default_activations: torch.Tensor
    steered_activations: torch.Tensor
    sae: SAE | None = field(default=None, compare=False)
    densities: dict[int, float] = field(default_factory=dict, compare=False)

    def __getattr__(self, name: str) -> Any:
        """`result.method`, `result.seed`, ...: the fields of `settings`."""
        if name in SteeringSettings.names() and "settings" in self.__dict__:
            return getattr(self.settings, name)
        raise AttributeError(f"'Steering' object has no attribute {name!r}")

    @property
    def feature_list(self) -> list[int]:
        """The steered features, in the order of the activation columns."""
        return list(self.features)

    @property
    def differs(self) -> list[bool]:
        """Per generated step (the longer completion's length): True where the two tokens differ."""
        a, b = self.default_ids.tolist(), self.steered_ids.tolist()
        return [i >= len(a) or i >= len(b) or a[i] != b[i] for i in range(max(len(a), len(b)))]

    @property
    def first_difference(self) -> int | None:
        """The first generated step where the completions differ, or None when they are identical."""
        return next((i for i, d in enumerate(self.differs) if d), None)

    def to_dataframe(self) -> pd.DataFrame:
        """Long form: one row per (completion, generated step, feature).

        Columns: `completion` ("default" | "steered"), `step`, `token`, `token_id`, `feature`, `activation`,
        `density` (the feature's, NaN when unknown), `label` (the feature's, "" when it has none).

        Example:
            >>> out.to_dataframe().columns.tolist()                    # doctest: +SKIP
            ['completion', 'step', 'token', 'token_id', 'feature', 'activation', 'density', 'label']
        """
        labels = {f: (self.sae.label(f) if self.sae is not None else None) or "" for f in self.feature_list}
        rows: list[dict[str, Any]] = []
        for name in ("default", "steered"):
            ids, tokens = getattr(self, f"{name}_ids").tolist(), getattr(self, f"{name}_tokens")
            values = getattr(self, f"{name}_activations")
            for step, (token_id, token) in enumerate(zip(ids, tokens, strict=True)):
                for column, feature in enumerate(self.feature_list):
                    rows.append(
                        {
                            "completion": name,
                            "step": step,
                            "token": token,
                            "token_id": token_id,
                            "feature": feature,
                            "activation": float(values[step, column]),
                            "density": self.densities.get(feature, math.nan),
                            "label": labels[feature],
                        }
                    )
        columns = ["completion", "step", "token", "token_id", "feature", "activation", "density", "label"]
        return pd.DataFrame(rows, columns=columns)

    def code(self, scope_name: str = "scope") -> str:
        """The `scope.steer(...)` call that reproduces this result (with the Scope's first SAE).

        Example:
            >>> out.code()                                              # doctest: +SKIP
            "scope.steer('Hello', {3: 0.0}, method='add', max_new_tokens=5, temperature=0.0, seed=0, ..."
        """
        return steer_code(self.prompt, self.features, scope_name=scope_name, **self.settings.as_dict())

    def widget(self) -> SteeringPanel:
        """A read-only steering panel showing this result (for layouts; `save_html` writes it offline).

        Example:
            >>> out.widget()                                            # doctest: +SKIP
        """
        return present(self)

    def _repr_text(self) -> str:
        from .display import text_summary

        return text_summary(self)

    def _repr_fallback_html(self) -> str:
        from .display import preview_html

        return preview_html(self)

    def __repr__(self) -> str:
        return (
            f"Steering({self.method} {self.features} at {self.positions} positions; "
            f"default={self.default_text!r}; steered={self.steered_text!r})"
        )


def significant(value: float, digits: int = 3) -> float:
    """`value` rounded to `digits` significant digits (-0.0 becomes 0.0): how the panel keeps strengths.

    Example:
        >>> significant(89.97226134018706), significant(-0.000123456), significant(240.0), significant(-0.0)
        (90.0, -0.000123, 240.0, 0.0)
    """
    return float(f"{float(value):.{digits}g}") + 0.0


def steer_code(
    prompt: str,
    features: Mapping[int, float],
    *,
    scope_name: str = "scope",
    sae: str | None = None,
    **settings: Any,
) -> str:
    """Python source of an equivalent `scope.steer(...)` call (for "copy as code").

    Strengths are shown with 3 significant digits; with `add` and `add_scaled` a zero strength changes
    nothing and is left out (unless every strength is zero); `ablate` lists its features.

    Example:
        >>> steer_code("I think", {12: 89.97226134018706, 7: 0.0}, method="add", max_new_tokens=32)
        "scope.steer('I think', {12: 90.0}, method='add', max_new_tokens=32)"
        >>> steer_code("I think", {12: 0.0, 7: 0.0}, method="ablate")
        "scope.steer('I think', [12, 7], method='ablate')"
    """
    strengths = {int(f): significant(s) for f, s in features.items()}
    if settings.get("method", "add") in ("add", "add_scaled") and any(strengths.values()):
        strengths = {f: s for f, s in strengths.items() if s != 0.0}
    if settings.get("method") == "ablate":
        shown = repr(list(strengths))
    else:
        shown = "{" + ", ".join(f"{f}: {s!r}" for f, s in strengths.items()) + "}"
    parts = [repr(prompt), shown, *(f"{name}={value!r}" for name, value in settings.items())]
    if sae is not None:
        parts.append(f"sae={sae}")
    return f"{scope_name}.steer({', '.join(parts)})"


def eos_ids(scope: Engine) -> set[int]:
    """The ids that end a completion: the generation config's EOS id(s) and the tokenizer's."""
    found: set[int] = set()
    config_eos = getattr(getattr(scope.model, "generation_config", None), "eos_token_id", None)
    for value in (config_eos, getattr(scope.tokenizer, "eos_token_id", None)):
        if isinstance(value, int):
            found.add(value)
        elif isinstance(value, Sequence):
            found.update(int(v) for v in value)
    return found


def steer(
    scope: Engine,
    prompt: str | Sequence[int] | torch.Tensor,
    features: Mapping[int, float] | Sequence[int],
    *,
    sae: SaeRef = None,
    on_token: TokenCallback | None = None,
    **settings: Any,
) -> Steering:
    """Check the arguments, generate both completions in one batch, return a `Steering` (`Scope.steer`).
    `settings`: the fields of `SteeringSettings` (an unknown name raises a `TypeError`)."""
    chosen = scope.sae(sae)
    check_steerable(chosen)
    options = SteeringSettings(**settings)
    strengths = check_features(features, chosen, options.method)
    ids = scope.tokenize(prompt)
    limit = sites.context_length(scope.model)
    check_generation(options.max_new_tokens, options.temperature, options.seed, ids.numel(), limit)
    options = options.plain()
    edit = SteeringEdit(
        chosen,
        list(strengths),
        list(strengths.values()),
        options.method,
        options.positions,
        ids.numel(),
        PairCursor(),
    )
    pair = run_pair(
        scope,
        ids,
        edit,
        max_new_tokens=options.max_new_tokens,
        temperature=options.temperature,
        seed=options.seed,
        on_token=on_token,
    )
    text = (
        prompt if isinstance(prompt, str) else scope.tokenizer.decode(ids.tolist(), skip_special_tokens=True)
    )
    density = density_column(known_stats(chosen, scope), list(strengths))
    return Steering(
        prompt=text,
        features=strengths,
        settings=options,
        prompt_tokens=scope.token_strings(ids),
        prompt_ids=ids.cpu(),
        sae=chosen,
        densities=dict(zip(strengths, density, strict=True)),
        **pair,
    )


def run_pair(
    scope: Engine,
    ids: torch.Tensor,
    edit: SteeringEdit,
    *,
    max_new_tokens: int,
    temperature: float,
    seed: int,
    on_token: TokenCallback | None = None,
) -> dict[str, Any]:
    """Generate with `edit` hooked at its SAE's site; returns the per-completion fields of a `Steering`.

    The hook is removed when this returns or raises (KeyboardInterrupt included).
    """

    def on_step(_step: int, first: int | None, second: int | None) -> None:
        if on_token is not None:
            on_token(*(None if i is None else scope.token_strings([i])[0] for i in (first, second)))

    cfg = edit.sae.cfg
    with patch(scope.model, cfg.site, cfg.layer, edit):
        rows = generate_pair(
            scope.model,
            ids,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            seed=seed,
            eos_ids=eos_ids(scope),
            cursor=edit.cursor,
            on_step=on_step,
            final_forward=True,
        )
    recorded, n_prompt = edit.recorded(), ids.numel()
    fields: dict[str, Any] = {}
    for index, (name, new_ids) in enumerate(zip(("default", "steered"), rows, strict=True)):
        fields[f"{name}_ids"] = torch.tensor(new_ids, dtype=torch.long)
        fields[f"{name}_tokens"] = scope.token_strings(new_ids)
        fields[f"{name}_text"] = scope.tokenizer.decode(new_ids, skip_special_tokens=True)
        fields[f"{name}_activations"] = recorded[index, n_prompt : n_prompt + len(new_ids)].clone()
    return fields
