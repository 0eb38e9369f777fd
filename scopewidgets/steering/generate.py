"""Two completions of one prompt generated side by side in ONE batch, with the same sampling noise.

Row 0 and row 1 start from the same prompt. Whatever edits row 1 (a steering hook) is the only reason the rows
can differ: at temperature 0 both take the argmax; at temperature T > 0 both draw from `softmax(logits / T)`
with the Gumbel-max trick using one noise vector per step, shared by the rows (so identical logits give
identical tokens, and the sampling noise itself never explains a difference).

The loop is a plain KV-cached decode (prefill the prompt once, then one token per forward), written here
rather than calling `model.generate` so that the shared noise, the per-token callback and the position
bookkeeping for hooks (`PairCursor`) are simple and explicit.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..core import sites
from ..core.hooks import StopForward

StepCallback = Callable[[int, int | None, int | None], None]


@dataclass
class PairCursor:
    """Mutable state the loop shares with hooks: where the current forward sits in the sequence.

    `start` is the absolute position of the first token of the forward being run (0 for the prompt's
    prefill, then `n_prompt + step - 1` for each one-token step); `final` is True during the last,
    bookkeeping-only forward that feeds the last sampled tokens (hooks record, then raise `StopForward`).
    """

    start: int = 0
    final: bool = False


class _Decoder:
    """The decoder stack plus the unembedding of a Gemma model, for cached one-position-logits forwards.

    The logits are computed here as `W_U @ h.T` rather than by the model's `lm_head` (`h @ W_U.T`): on CPU
    the latter streams the 262k x d unembedding once per batch row, the former once for both rows, which
    is most of what makes the second row cheap. Gemma 2's final logit soft-capping is applied as the
    model does.
    """

    def __init__(self, model: nn.Module) -> None:
        self.stack = sites.text_model(model)
        self.unembedding = sites.unembedding(model).detach()
        self.softcap = getattr(sites.text_config(model), "final_logit_softcapping", None)
        params = inspect.signature(self.stack.forward).parameters
        # transformers >= 5.2x calls the KV cache `cache`; older releases call it `past_key_values`.
        self.cache_name = "cache" if "cache" in params else "past_key_values"

    def __call__(self, ids: torch.Tensor, cache: Any) -> tuple[torch.Tensor, Any]:
        """One cached forward of `ids` `[batch, n]`: the last position's logits `[batch, vocab]` (float32)
        and the cache."""
        out = self.stack(input_ids=ids, use_cache=True, **{self.cache_name: cache})
        new_cache = out.get("cache") if out.get("cache") is not None else out.get("past_key_values")
        hidden = out.last_hidden_state[:, -1, :].to(self.unembedding.dtype)
        logits = torch.mm(self.unembedding, hidden.T).T
        if self.softcap:
            logits = torch.tanh(logits / self.softcap) * self.softcap
        return logits.float(), new_cache


class SharedNoiseSampler:
    """Picks one token per row: argmax at temperature 0, else Gumbel-max with noise shared by all rows.

    Example:
        >>> sampler = SharedNoiseSampler(temperature=0.7, seed=3, device=torch.device("cpu"))
        >>> logits = torch.randn(1, 50).expand(2, 50)
        >>> a, b = sampler(logits).tolist()
        >>> a == b
        True
    """

    def __init__(self, temperature: float, seed: int, device: torch.device) -> None:
        self.temperature = float(temperature)
        self.generator = torch.Generator(device=device).manual_seed(int(seed))

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        """`[rows, vocab]` float logits -> `[rows]` token ids."""
        if self.temperature == 0.0:
            return logits.argmax(dim=-1)
        # argmax(l/T + G) with G ~ Gumbel samples softmax(l/T); -log(E) with E ~ Exp(1) is Gumbel. Scaled by
        # T > 0 (same argmax) it never divides by T, so a tiny T (1e-45) acts greedy instead of overflowing.
        exponential = torch.empty(logits.shape[-1], device=logits.device, dtype=torch.float32)
        exponential.exponential_(generator=self.generator)
        return (logits - self.temperature * exponential.log()).argmax(dim=-1)


def generate_pair(
    model: nn.Module,
    prompt_ids: torch.Tensor,
    *,
    max_new_tokens: int,
    temperature: float = 0.0,
    seed: int = 0,
    eos_ids: Collection[int] = (),
    cursor: PairCursor | None = None,
    on_step: StepCallback | None = None,
    final_forward: bool = False,
) -> tuple[list[int], list[int]]:
    """Generate row 0 and row 1 from `prompt_ids` `[n_prompt]` in one batch; returns the new ids per row.

    A row stops after it samples an id in `eos_ids` (the EOS id is kept in its output); the other row goes
    on until it stops too or `max_new_tokens` is reached. `on_step(step, id0, id1)` is called as soon as each
    step's tokens are known (None for a row that has already stopped). With `final_forward`, the last
    sampled tokens are fed once more with `cursor.final` set, so hooks can record activations on them (the
    hook is expected to raise `StopForward`, which ends that forward early).

    Example:
        >>> from scopewidgets.testing import tiny_gemma3
        >>> model, _ = tiny_gemma3()
        >>> a, b = generate_pair(model, torch.tensor([2, 70, 71]), max_new_tokens=4)
        >>> a == b, len(a)
        (True, 4)
    """
    device = next(model.parameters()).device
    cursor = cursor if cursor is not None else PairCursor()
    forward = _Decoder(model)
    sampler = SharedNoiseSampler(temperature, seed, device)
    eos = {int(i) for i in eos_ids}
    n_prompt = int(prompt_ids.numel())
    rows: tuple[list[int], list[int]] = ([], [])
    with torch.inference_mode():
        cursor.start, cursor.final = 0, False
        batch = prompt_ids.to(device).reshape(1, -1).expand(2, -1).contiguous()
        logits, cache = forward(batch, None)
        for step in range(max_new_tokens):
            chosen = sampler(logits)
            fresh = _append(rows, chosen.tolist(), eos)
            if on_step is not None:
                on_step(step, *fresh)
            if _finished(rows, eos) or step == max_new_tokens - 1:
                break
            cursor.start = n_prompt + step
            logits, cache = forward(chosen[:, None], cache)
        if final_forward and rows[0]:
            cursor.start, cursor.final = n_prompt + max(len(r) for r in rows) - 1, True
            try:
                forward(chosen[:, None], cache)
            except StopForward:
                pass
            finally:
                cursor.final = False
    return rows


def _append(rows: tuple[list[int], list[int]], chosen: list[int], eos: set[int]) -> list[int | None]:
    """Append each still-running row's new id; return the ids appended (None for stopped rows)."""
    fresh: list[int | None] = []
    for row, token in zip(rows, chosen, strict=True):
        running = not row or row[-1] not in eos
        if running:
            row.append(int(token))
        fresh.append(int(token) if running else None)
    return fresh


def _finished(rows: tuple[list[int], list[int]], eos: set[int]) -> bool:
    return all(row and row[-1] in eos for row in rows)
