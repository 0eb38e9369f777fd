"""What the steering panel's controls show, computed in Python: feature captions and slider ranges.

Sliders are symmetric power curves: a slider position `p` in [-1, 1] means the strength
`sign(p) * limit * |p| ** POWER`, so 0 sits exactly in the middle, the ends reach `+-limit`, and with
`POWER = 2` the strengths that usually matter (100-300 for `add` on the demo, a quarter to a half of the
limit) span the middle of each half of the track instead of its last few percent. Limits per method:
- `add`: 600, twice Neuronpedia's -300..300 (strengths are in units of the decoder row, which has norm ~1);
- `add_scaled`: 2 (a fraction of the residual norm; the Gemma Scope 2 tutorial uses 0.14);
- `clamp`: 4x the feature's largest activation on the prompt (or, when it is silent there, on the prompt's
  strongest feature), rounded up to 1, 2 or 5 x 10^k;
- `ablate`: no strength (the slider is disabled).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from ..activations import activations_of
from ..core.effects import feature_logits
from ..core.sae import SAE

if TYPE_CHECKING:
    from ..core.engine import Engine

POWER = 2.0
FIXED_LIMITS: dict[str, float] = {"add": 600.0, "add_scaled": 2.0, "ablate": 0.0}
CLAMP_HEADROOM = 4.0


def slider_value(position: float, limit: float, power: float = POWER) -> float:
    """The strength at slider `position` in [-1, 1] (the front end does the same arithmetic).

    Example:
        >>> slider_value(1.0, 600), slider_value(0.0, 600), slider_value(-0.5, 600)
        (600.0, 0.0, -150.0)
    """
    return math.copysign(limit * abs(position) ** power, position) if position else 0.0


def slider_position(value: float, limit: float, power: float = POWER) -> float:
    """Inverse of `slider_value`, clipped to [-1, 1].

    Example:
        >>> round(slider_position(slider_value(0.37, 600), 600), 6)
        0.37
    """
    if limit <= 0 or value == 0:
        return 0.0
    return math.copysign(min(abs(value) / limit, 1.0) ** (1 / power), value)


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 5 x 10^k that is >= `value` (for `value` > 0).

    Example:
        >>> nice_ceiling(37.0), nice_ceiling(120.0), nice_ceiling(0.3)
        (50.0, 200.0, 0.5)
    """
    exponent = math.floor(math.log10(value))
    for step in (1.0, 2.0, 5.0, 10.0):
        if step * 10**exponent >= value * (1 - 1e-9):
            return step * 10**exponent
    return 10.0 ** (exponent + 1)


def strength_limits(
    scope: Engine, sae: SAE, features: Sequence[int], method: str, prompt: str
) -> dict[int, float]:
    """`{feature: limit}`: each slider's range is `[-limit, limit]` (0 for `ablate`)."""
    if method in FIXED_LIMITS:
        return dict.fromkeys((int(f) for f in features), FIXED_LIMITS[method])
    values = activations_of(scope, prompt, sae).values[1:]  # no BOS
    fallback = float(values.max()) if values.numel() else 0.0
    limits = {}
    for feature in features:
        peak = float(values[:, feature].max()) if values.numel() else 0.0
        scale = peak if peak > 0 else fallback
        limits[int(feature)] = nice_ceiling(CLAMP_HEADROOM * scale) if scale > 0 else 10.0
    return limits


@torch.inference_mode()
def top_logit_tokens(scope: Engine, sae: SAE, features: Sequence[int], k: int = 3) -> dict[int, list[str]]:
    """`{feature: [token, ...]}`: the `k` tokens each feature's decoder row promotes most, through the final
    norm's gain and the unembedding (`W_U @ (w_dec[f] * gain)`; an `attn_out` row goes through `o_proj`
    first): the dashboards' logit effects (`core.effects`), one formula for both.

    Example:
        >>> top_logit_tokens(scope, scope.sae(), [12], k=3)             # doctest: +SKIP
        {12: [' Paris', ' France', ' Lyon']}
    """
    chosen = torch.tensor([sae.check_feature(f) for f in features], dtype=torch.long, device=sae.device)
    _, top, _, _ = feature_logits(scope.model, sae, chosen, k=k, progress=False)
    return {int(f): scope.token_strings(row) for f, row in zip(features, top, strict=True)}


def feature_captions(scope: Engine, sae: SAE, features: Sequence[int], k: int = 3) -> dict[int, str]:
    """`{feature: caption}` shown beside a slider: the SAE's label, else its top `k` promoted tokens.

    Example:
        >>> feature_captions(scope, scope.sae(), [12])                   # doctest: +SKIP
        {12: "↑ ' Paris' ' France' ' Lyon'"}
    """
    unlabelled = [int(f) for f in features if sae.label(int(f)) is None]
    tokens = top_logit_tokens(scope, sae, unlabelled, k) if unlabelled else {}
    return {int(f): sae.label(int(f)) or "↑ " + " ".join(repr(t) for t in tokens[int(f)]) for f in features}
