"""The steering edit: what the hook at an SAE's site does to the steered row of a default/steered batch.

Methods, for the steered features `F` with strengths `s_f` and decoder rows `w_f = W_dec[f]`:

| method       | new activation h' at an edited position                                     |
|--------------|-----------------------------------------------------------------------------|
| `add`        | `h + sum_f s_f * w_f`                                                        |
| `add_scaled` | `h + ||h|| * sum_f s_f * w_f / ||w_f||`  (norm of the unedited h, per position) |
| `clamp`      | `h + sum_f (s_f - a_f(h)) * w_f`  with `a_f(h)` the SAE's activation of f      |
| `ablate`     | `clamp` with every `s_f = 0`                                                  |

`clamp` is "encode, set the features, decode, keep the error term": `decode(a') - decode(a)` is
`sum_f (a'_f - a_f) w_f` since decoding is affine, so `h' = decode(a') + (h - decode(a))` exactly, and when
`a'_f == a_f` the increment is exactly zero and h is returned unchanged, bit for bit.

Only row 1 of the batch is edited (row 0 is the default completion); position 0 (BOS) is never edited.
`positions` picks which token positions are: `"all"` (every position but BOS), `"prompt"` (the prompt's
tokens after BOS) or `"generated"` (the generated tokens; the first generated token is predicted from the
prompt's last position, so with `"generated"` it is always the default's first token).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ..core.hooks import StopForward
from ..core.sae import SAE
from .generate import PairCursor

METHODS: tuple[str, ...] = ("add", "add_scaled", "clamp", "ablate")
POSITIONS: tuple[str, ...] = ("all", "prompt", "generated")
STEERED_ROW = 1


def feature_values(sae: SAE, h: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """`[..., d_in] -> [..., k]`: the SAE's activations of only `features` (`[k]` long), in float32.

    JumpReLU and ReLU SAEs compute just those columns; a TopK SAE needs the full encode (the k-th largest
    decides).

    Example:
        >>> from scopewidgets.testing import tiny_gemma3, random_sae
        >>> sae = random_sae(tiny_gemma3()[0], d_sae=32)
        >>> x = torch.randn(5, 64)
        >>> torch.allclose(feature_values(sae, x, torch.tensor([3, 9])), sae.encode(x)[:, [3, 9]], atol=1e-6)
        True
    """
    if sae.cfg.architecture == "topk":
        return sae.encode(h)[..., features].float() + 0.0  # + 0.0 turns -0.0 into 0.0
    x = h.to(sae.dtype)
    if sae.cfg.apply_b_dec_to_input:
        x = x - sae.b_dec
    pre = x @ sae.W_enc[:, features] + sae.b_enc[features]
    if sae.cfg.architecture == "jumprelu":
        return (pre * (pre > sae.threshold[features])).float() + 0.0
    return torch.relu(pre).float()


def edited_span(start: int, length: int, n_prompt: int, positions: str) -> tuple[int, int]:
    """`(lo, hi)`: the slice of a forward covering absolute positions `start .. start+length-1` to edit.

    Example:
        >>> edited_span(0, 5, 5, "all"), edited_span(0, 5, 5, "generated"), edited_span(7, 1, 5, "prompt")
        ((1, 5), (0, 0), (0, 0))
    """
    first, last = {"all": (1, math.inf), "prompt": (1, n_prompt), "generated": (n_prompt, math.inf)}[
        positions
    ]
    lo = max(first, start) - start
    hi = min(last, start + length) - start
    return (int(lo), int(hi)) if hi > lo else (0, 0)


class SteeringEdit:
    """The callable a `hooks.patch` hook runs: edits row 1 of `[2, seq, d_in]`, records feature values.

    `cursor` tells it where each forward sits in the sequence (the generation loop updates it). After
    each edit it appends the activations of the steered features on both rows, as run (after the edit),
    to `records` (`[2, seq, k]` float32 per forward); during the loop's final forward it then raises
    `StopForward`. `targets(current)` gives the clamp values; tests override it.

    Example:
        >>> from scopewidgets.testing import tiny_gemma3, random_sae
        >>> sae = random_sae(tiny_gemma3()[0], d_sae=32)
        >>> edit = SteeringEdit(sae, [3], [0.0], "add", "all", n_prompt=4, cursor=PairCursor())
        >>> h = torch.randn(2, 4, 64)
        >>> torch.equal(edit(h), h)
        True
    """

    def __init__(
        self,
        sae: SAE,
        features: Sequence[int],
        strengths: Sequence[float],
        method: str,
        positions: str,
        n_prompt: int,
        cursor: PairCursor,
    ) -> None:
        self.sae, self.method, self.positions, self.n_prompt, self.cursor = (
            sae,
            method,
            positions,
            n_prompt,
            cursor,
        )
        self.features = torch.tensor(list(features), dtype=torch.long, device=sae.device)
        self.strengths = torch.tensor(list(strengths), dtype=torch.float32, device=sae.device)
        self.directions = sae.W_dec[self.features].float()  # [k, d_in]
        if method == "add_scaled":
            self.directions = self.directions / self.directions.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        self.records: list[torch.Tensor] = []

    def targets(self, current: torch.Tensor) -> torch.Tensor:
        """Clamp values `[n, k]` for activations `current` `[n, k]` (the strengths; 0 when ablating)."""
        if self.method == "ablate":
            return torch.zeros_like(current)
        return self.strengths.expand_as(current)

    def delta(self, x: torch.Tensor) -> torch.Tensor:
        """`[n, d_in]` -> the increment `[n, d_in]` (float32) the method adds at these positions."""
        if self.method == "add":
            return (self.strengths @ self.directions).expand(x.shape[0], -1)
        if self.method == "add_scaled":
            return x.float().norm(dim=-1, keepdim=True) * (self.strengths @ self.directions)
        current = feature_values(self.sae, x, self.features)
        return (self.targets(current) - current) @ self.directions

    def __call__(self, h: torch.Tensor) -> torch.Tensor:
        lo, hi = edited_span(self.cursor.start, h.shape[1], self.n_prompt, self.positions)
        if hi > lo:
            h = h.clone()
            x = h[STEERED_ROW, lo:hi]
            h[STEERED_ROW, lo:hi] = (x.float() + self.delta(x)).to(h.dtype)
        self.records.append(feature_values(self.sae, h, self.features))
        if self.cursor.final:
            raise StopForward
        return h

    def recorded(self) -> torch.Tensor:
        """`[2, positions_run, k]` float32 on the CPU: every recorded forward, concatenated in order."""
        if not self.records:
            return torch.zeros(2, 0, len(self.features))
        return torch.cat(self.records, dim=1).cpu()
