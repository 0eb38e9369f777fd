"""`PassMemory`: the one bounded memory of dashboard passes an engine keeps (`Engine.passes`).

`scope.dashboard(f)` reuses a remembered pass that covers `f`, feature statistics read a remembered pass over
every feature, and the explorer finds the passes it built (by `tag`). A pass computed from weights that were
since edited in place is never returned: each entry keeps the fingerprint of the weights it read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

LIMIT = 8  # passes remembered (each ~30 KB per feature with the default settings)


class PassMemory:
    """The last `limit` passes, each with the fingerprint of the weights it read (None: it does not depend
    on them, e.g. Gemma Scope evidence files) and an optional `tag` naming who asked for it.

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
    """

    def __init__(self, limit: int = LIMIT) -> None:
        self.limit = limit
        self._entries: list[tuple[Any, str | None, object]] = []

    def remember(self, item: Any, weights: str | None = None, tag: object = None) -> Any:
        """Keep `item` (the oldest beyond the limit is dropped); returns `item`."""
        self._entries.append((item, weights, tag))
        del self._entries[: -self.limit]
        return item

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
