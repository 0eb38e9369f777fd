"""Argument checks for `scope.steer(...)`: a bad value raises a `ValueError` naming it and what is allowed."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

from ..core.sae import SAE
from .hook import METHODS, POSITIONS

MAX_TEMPERATURE = 100.0
MAX_SEED = 2**63 - 1


def check_method(method: Any) -> str:
    """Return `method` or raise naming the allowed methods."""
    if method not in METHODS:
        raise ValueError(f"Unknown steering method {method!r}; allowed methods are {', '.join(METHODS)}")
    return method


def check_positions(positions: Any) -> str:
    """Return `positions` or raise naming the allowed choices."""
    if positions not in POSITIONS:
        raise ValueError(f"Unknown positions {positions!r}; allowed values are {', '.join(POSITIONS)}")
    return positions


def check_steerable(sae: SAE) -> None:
    """Steering edits the site an SAE both reads and writes; transcoders write elsewhere."""
    if sae.cfg.site_out is not None and sae.cfg.site_out != sae.cfg.site:
        raise ValueError(
            f"Steering needs an SAE that reads and writes the same site; this one is a transcoder "
            f"({sae.cfg.site} -> {sae.cfg.site_out} at layer {sae.cfg.layer}). Use an SAE on a single site"
        )


def _strength(feature: int, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise ValueError(f"The strength of feature {feature} must be a finite number, got {value!r}")
    return float(value)


def check_features(features: Any, sae: SAE, method: str) -> dict[int, float]:
    """`{feature: strength}` as plain ints and floats (a list of features is accepted for `ablate`).

    Example:
        >>> from scopewidgets.testing import tiny_gemma3, random_sae
        >>> sae = random_sae(tiny_gemma3()[0], d_sae=32)
        >>> check_features({3: 2}, sae, "add"), check_features([4], sae, "ablate")
        ({3: 2.0}, {4: 0.0})
    """
    if method == "ablate" and isinstance(features, Sequence) and not isinstance(features, str):
        features = dict.fromkeys(features, 0.0)
    if not isinstance(features, Mapping):
        raise ValueError(
            f"features must be a dict {{feature: strength}} (or a list of features for method='ablate'), "
            f"got {type(features).__name__}"
        )
    if not features:
        raise ValueError("features is empty; give at least one {feature: strength}")
    checked = {sae.check_feature(f): _strength(f, s) for f, s in features.items()}
    if len(checked) != len(features):
        raise ValueError(f"features names the same feature twice: {list(features)}")
    if method == "ablate" and any(s != 0.0 for s in checked.values()):
        raise ValueError(
            f"method='ablate' sets the features to 0, so strengths must be 0 (got {checked}); "
            "use method='clamp' to set another value"
        )
    return checked


def check_generation(max_new_tokens: Any, temperature: Any, seed: Any, n_prompt: int, context: int) -> None:
    """Raise for `max_new_tokens` outside `[1, context - n_prompt]`, a temperature outside
    `[0, 100]` or a seed outside `[0, 2**63)`."""
    room = context - n_prompt
    if room < 1:
        raise ValueError(
            f"The prompt has {n_prompt} tokens, which leaves no room to generate in this model's "
            f"context of {context}"
        )
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, numbers.Integral):
        raise ValueError(f"max_new_tokens must be an int in [1, {room}], got {max_new_tokens!r}")
    if not 1 <= int(max_new_tokens) <= room:
        raise ValueError(
            f"max_new_tokens={max_new_tokens} is out of range: with a {n_prompt}-token prompt "
            f"it must be in [1, {room}]"
        )
    bad_temperature = isinstance(temperature, bool) or not isinstance(temperature, numbers.Real)
    if bad_temperature or not 0.0 <= float(temperature) <= MAX_TEMPERATURE:
        raise ValueError(
            f"temperature must be a number in [0, {MAX_TEMPERATURE:g}] (0 = greedy), got {temperature!r}"
        )
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= int(seed) <= MAX_SEED:
        raise ValueError(f"seed must be an int in [0, 2**63 - 1], got {seed!r}")


def check_panel(scope: Any, sae: SAE, prompt: Any, features: Any, settings: SteeringSettings) -> None:
    """What `steer` checks, for a steering panel: the prompt, its features (a list, or a dict with
    strengths; empty is allowed), and the `settings`."""
    from ..core import validate as checked
    from ..core.sites import context_length

    check_steerable(sae)
    n_prompt = scope.tokenize(checked.text(prompt, "prompt")).numel()
    if isinstance(features, Mapping):
        strengths = dict(features)
    elif isinstance(features, list | tuple | range) and not features:
        strengths = {}
    else:
        strengths = dict.fromkeys(checked.feature_list(features, "features", sae.cfg.d_sae), 0.0)
    if strengths:
        check_features(strengths, sae, "add" if settings.method == "ablate" else settings.method)
    generation = (settings.max_new_tokens, settings.temperature, settings.seed)
    check_generation(*generation, n_prompt, context_length(scope.model))


@dataclass(frozen=True)
class SteeringSettings:
    """How a steered pair is generated, besides the prompt, the features and the SAE: the one list of these
    names, used by `steer`, `Steering` (`result.settings`; `result.method` etc. read through), the steering
    panel's request and traits, and "copy as code". `method` and `positions` are checked here; the length
    and sampling settings against the prompt by `check_generation`.

    Example:
        >>> SteeringSettings(method="clamp", max_new_tokens=8)
        SteeringSettings(method='clamp', max_new_tokens=8, temperature=0.0, seed=0, positions='all')
        >>> SteeringSettings.names()
        ('method', 'max_new_tokens', 'temperature', 'seed', 'positions')
    """

    method: str = "add"
    max_new_tokens: int = 32
    temperature: float = 0.0
    seed: int = 0
    positions: str = "all"

    def __post_init__(self) -> None:
        object.__setattr__(self, "method", check_method(self.method))
        object.__setattr__(self, "positions", check_positions(self.positions))

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The settings' names, in order."""
        return tuple(f.name for f in fields(cls))

    def as_dict(self) -> dict[str, Any]:
        """`{name: value}`, e.g. the keyword arguments of `scope.steer`."""
        return {name: getattr(self, name) for name in self.names()}

    def plain(self) -> SteeringSettings:
        """A copy holding Python numbers (numpy ints accepted by `check_generation` become ints)."""
        return replace(
            self,
            max_new_tokens=int(self.max_new_tokens),
            temperature=float(self.temperature),
            seed=int(self.seed),
        )
