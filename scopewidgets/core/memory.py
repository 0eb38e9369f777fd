"""`PassMemory`: the one bounded memory of dashboard passes an engine keeps (`Engine.passes`).

`scope.dashboard(f)` reuses a remembered pass that covers `f`, feature statistics read a remembered pass over
every feature, and the explorer finds the passes it built (by `tag`). A pass computed from weights that were
since edited in place is never returned: each entry keeps the fingerprint of the weights it read.

The memory is bounded twice: at most `limit` passes, and at most `budget` bytes of pass state together
(the newest pass is always kept). A pass costs ~30 KB per feature with the default settings, so 8 passes
over a 65k-wide SAE would hold ~18 GB; the byte budget drops the oldest instead. `make_room` drops them
before a new pass allocates its state, so the new one reuses their memory rather than adding to it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

LIMIT = 8  # passes remembered
BUDGET_CAP = 8 * 2**30  # bytes of remembered pass state at most, and at most a quarter of the RAM


def default_budget() -> int:
    """Bytes of pass state remembered by default: a quarter of the machine's RAM, at most 8 GiB."""
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not a POSIX system: the cap alone
        return BUDGET_CAP
    return min(BUDGET_CAP, ram // 4) if ram > 0 else BUDGET_CAP


def _size(item: Any) -> int:
    """Bytes an item holds (`item.nbytes`; 0 when it does not say, e.g. evidence read from disk lazily)."""
    return int(getattr(item, "nbytes", 0) or 0)


class PassMemory:
    """The last `limit` passes, each with the fingerprint of the weights it read (None: it does not depend
    on them, e.g. Gemma Scope evidence files) and an optional `tag` naming who asked for it. Passes beyond
    `limit`, or beyond `budget` bytes together (default `default_budget()`), are dropped oldest first.

    Example:
        >>> from types import SimpleNamespace
        >>> memory = PassMemory(limit=2)
        >>> a, b, c = (SimpleNamespace(sae="sae", n=i) for i in range(3))
        >>> for item in (a, b, c):
        ...     _ = memory.remember(item, weights="w0")
        >>> [p.n for p in memory.valid("sae", lambda: "w0")]
        [2, 1]
        >>> memory.valid("sae", lambda: "w1")   # the weights changed in place since
        []
        >>> wide = PassMemory(budget=100)
        >>> for n in (60, 30, 50):
        ...     _ = wide.remember(SimpleNamespace(sae="sae", nbytes=n))
        >>> [p.nbytes for p in wide.valid("sae", lambda: "w0")], wide.nbytes
        ([50, 30], 80)
    """

    def __init__(self, limit: int = LIMIT, budget: int | None = None) -> None:
        if limit < 1:
            raise ValueError(f"limit must be >= 1 pass, got {limit}")
        self.limit = limit
        self.budget = default_budget() if budget is None else int(budget)
        if self.budget < 0:
            raise ValueError(f"budget must be >= 0 bytes, got {budget}")
        self._entries: list[tuple[Any, str | None, object]] = []

    @property
    def nbytes(self) -> int:
        """Bytes held by the remembered passes together."""
        return sum(_size(item) for item, _, _ in self._entries)

    def remember(self, item: Any, weights: str | None = None, tag: object = None) -> Any:
        """Keep `item`, dropping the oldest passes beyond the limit or the byte budget; returns `item`."""
        self._entries.append((item, weights, tag))
        del self._entries[: -self.limit]
        while len(self._entries) > 1 and self.nbytes > self.budget:
            del self._entries[0]
        return item

    def make_room(self, nbytes: int) -> None:
        """Drop the oldest passes until `nbytes` more fit in the budget (or none is left): called before
        a pass allocates its state, so the memory of the passes it will push out is reused."""
        while self._entries and self.nbytes + nbytes > self.budget:
            del self._entries[0]

    def valid(self, sae: Any, weights: Callable[[], str], tag: object = None) -> list[Any]:
        """The remembered passes over `sae` (and with `tag`, when given) still valid for the current
        `weights()` (called at most once), newest first."""
        current: str | None = None
        found = []
        for item, fingerprint, item_tag in reversed(self._entries):
            if item.sae is not sae or (tag is not None and item_tag is not tag):
                continue
            if fingerprint is not None:
                current = current or weights()
                if fingerprint != current:
                    continue
            found.append(item)
        return found

    def __len__(self) -> int:
        return len(self._entries)
