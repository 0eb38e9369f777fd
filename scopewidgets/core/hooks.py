"""Context managers over torch forward hooks.

Every hook registered here is removed in a `finally` block: after any exception, a KeyboardInterrupt
inside the forward included, the model carries no hook of ours. A hook acts only on forwards run by the
thread that opened the block, so a worker thread generating with a steering hook and a cell capturing
activations on the main thread do not see each other's hooks.

    with capture(model, [("resid_post", 6)]) as acts:
        model(input_ids)                 # stops right after layer 6; later layers are not run
    acts["resid_post", 6]                # [batch, pos, d_model]

    with patch(model, "resid_post", 6, lambda h: h * 0):
        model(input_ids)                 # the activation at the site is replaced
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

import torch
from torch import nn

from .sites import SitePoint, resolve

SiteKey = tuple[str, int]
Edit = Callable[[torch.Tensor], torch.Tensor]


class StopForward(Exception):
    """Raised by a capture hook after the deepest requested site; swallowed by `capture`."""


def _first(value: Any) -> torch.Tensor:
    """A decoder layer returns a Tensor (transformers >= 5) or a tuple whose first item is the state."""
    return value[0] if isinstance(value, tuple) else value


def _replace_first(value: Any, new: torch.Tensor) -> Any:
    return (new, *value[1:]) if isinstance(value, tuple) else new


def _register(point: SitePoint, on_value: Callable[[torch.Tensor], torch.Tensor | None]) -> Any:
    """Register a hook calling `on_value(activation)`; a returned tensor replaces the activation.

    The hook acts only on forwards run by the registering thread: a forward that another thread runs at the
    same time (a widget's worker generating while a cell runs) passes through untouched.
    """
    owner = threading.get_ident()
    if point.side == "input":

        def pre_hook(_module: nn.Module, args: tuple[Any, ...]) -> Any:
            if threading.get_ident() != owner:
                return None
            new = on_value(args[0])
            return None if new is None else (new, *args[1:])

        return point.module.register_forward_pre_hook(pre_hook)

    def hook(_module: nn.Module, _args: Any, output: Any) -> Any:
        if threading.get_ident() != owner:
            return None
        new = on_value(_first(output))
        return None if new is None else _replace_first(output, new)

    return point.module.register_forward_hook(hook)


@contextmanager
def _hooks_removed_finally() -> Iterator[list[Any]]:
    handles: list[Any] = []
    try:
        yield handles
    finally:
        for handle in handles:
            handle.remove()


def _sorted_points(model: nn.Module, sites: Iterable[SiteKey]) -> list[SitePoint]:
    keys = list(dict.fromkeys((str(site), layer) for site, layer in sites))
    if not keys:
        raise ValueError("capture needs at least one (site, layer) pair")
    return sorted((resolve(model, site, layer) for site, layer in keys), key=lambda p: p.depth)


@contextmanager
def capture(
    model: nn.Module,
    sites: Sequence[SiteKey] | SiteKey,
    *,
    stop: bool = True,
    detach: bool = True,
) -> Iterator[dict[SiteKey, torch.Tensor]]:
    """Collect the activations at one or several sites during the forward run inside the block.

    With `stop=True` the forward is interrupted right after the deepest site (later layers never run) and
    the interruption is swallowed when the block ends. Returns a dict keyed by `(site, layer)`.

    Example:
        >>> import torch
        >>> from scopewidgets.testing import tiny_gemma3
        >>> model, _ = tiny_gemma3()
        >>> with capture(model, [("resid_post", 1), ("attn_out", 0)]) as acts:
        ...     model(torch.tensor([[2, 7, 9]]))
        >>> acts["resid_post", 1].shape
        torch.Size([1, 3, 64])
    """
    if isinstance(sites, tuple) and len(sites) == 2 and isinstance(sites[0], str):
        sites = [sites]
    points = _sorted_points(model, sites)
    deepest = points[-1]
    store: dict[SiteKey, torch.Tensor] = {}

    def recorder(point: SitePoint) -> Callable[[torch.Tensor], None]:
        def record(value: torch.Tensor) -> None:
            store[point.site, point.layer] = value.detach() if detach else value
            if stop and point is deepest:
                raise StopForward

        return record

    with _hooks_removed_finally() as handles:
        for point in points:
            handles.append(_register(point, recorder(point)))
        with suppress(StopForward):
            yield store


@contextmanager
def patch(model: nn.Module, site: str, layer: int, edit: Edit) -> Iterator[None]:
    """Replace the activation at (site, layer) with `edit(activation)` for forwards inside the block.

    Example:
        >>> import torch
        >>> from scopewidgets.testing import tiny_gemma3
        >>> model, _ = tiny_gemma3()
        >>> with patch(model, "mlp_out", 0, torch.zeros_like):
        ...     logits = model(torch.tensor([[2, 7, 9]])).logits
    """
    point = resolve(model, site, layer)
    with _hooks_removed_finally() as handles:
        handles.append(_register(point, edit))
        yield


def hook_count(model: nn.Module) -> int:
    """How many forward hooks (pre and post) sit on the model's modules (transformers adds a few of its own)."""
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def run_truncated(model: nn.Module, input_ids: torch.Tensor, sites: Sequence[SiteKey], **kwargs: Any) -> dict:
    """One forward of `input_ids` stopped after the deepest of `sites`; returns the captured activations.

    Example:
        >>> import torch
        >>> from scopewidgets.testing import tiny_gemma3
        >>> model, _ = tiny_gemma3()
        >>> acts = run_truncated(model, torch.tensor([[2, 7, 9]]), [("resid_post", 0)])
        >>> sorted(acts)
        [('resid_post', 0)]
    """
    with torch.inference_mode(), capture(model, sites) as acts:
        model(input_ids=input_ids, use_cache=False, **kwargs)
    return acts
