"""Run `scope.steer` off the caller's thread, one generation at a time, newest request wins.

The steering panel submits a request whenever the user presses Generate or a slider settles. Requests go
to ONE worker thread (the model is never run by two threads at once). A new request supersedes the one
running: that one is cancelled cooperatively at its next token (the token callback raises; the hook
context managers remove the steering hook), requests queued in between are dropped, and only the newest
one runs. Every event carries its generation id, and once `submit` returns no event of an older
generation is delivered, so stale tokens or results can never overwrite newer ones.

Events passed to `on_event` (a dict, called from the worker thread):
  {"kind": "start", "id": 3}
  {"kind": "token", "id": 3, "step": 0, "default": " Paris", "steered": " the"}   (None once a row ended)
  {"kind": "done", "id": 3, "result": Steering}
  {"kind": "error", "id": 3, "message": "Feature 99999 is out of range: ..."}
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .result import steer

if TYPE_CHECKING:
    from ..core.engine import Engine

Event = dict[str, Any]


class _Superseded(Exception):
    """Raised from the token callback of a generation that a newer request replaced."""


@dataclass
class _Job:
    id: int
    request: dict[str, Any]
    cancelled: threading.Event = field(default_factory=threading.Event)


class SteeringRunner:
    """A worker thread running `scope.steer(**request)`; `submit` returns the request's generation id.

    Example:
        >>> import scopewidgets as sw
        >>> from scopewidgets.testing import tiny_gemma3, random_sae
        >>> model, tok = tiny_gemma3()
        >>> scope = sw.Scope(model, tok, saes=[random_sae(model, d_sae=32)])
        >>> events = []
        >>> runner = SteeringRunner(scope, events.append)
        >>> job = runner.submit({"prompt": "Hi", "features": {3: 4.0}, "max_new_tokens": 3})
        >>> runner.wait_idle(timeout=60)
        True
        >>> [e["kind"] for e in events]
        ['start', 'token', 'token', 'token', 'done']
        >>> runner.close()
    """

    def __init__(self, scope: Engine, on_event: Callable[[Event], None]) -> None:
        self.scope, self.on_event = scope, on_event
        self._lock = threading.Condition()
        self._next_id = 0
        self._pending: _Job | None = None
        self._running: _Job | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._work, name="scopewidgets-steering", daemon=True)
        self._thread.start()

    @property
    def latest_id(self) -> int:
        """The id of the newest request submitted (0 before any)."""
        return self._next_id

    def submit(self, request: dict[str, Any]) -> int:
        """Queue `scope.steer(**request)`, superseding whatever runs or waits; returns its generation id."""
        with self._lock:
            if self._closed:
                raise RuntimeError("This SteeringRunner is closed")
            self._next_id += 1
            self._cancel_locked()
            self._pending = _Job(self._next_id, dict(request))
            self._lock.notify_all()
            return self._next_id

    def cancel(self) -> None:
        """Stop the running generation at its next token and drop any waiting request."""
        with self._lock:
            self._cancel_locked()
            self._lock.notify_all()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until nothing runs or waits; False if `timeout` seconds passed first."""
        with self._lock:
            return self._lock.wait_for(lambda: self._pending is None and self._running is None, timeout)

    def close(self) -> None:
        """Cancel everything and end the worker thread."""
        with self._lock:
            self._closed = True
            self._cancel_locked()
            self._lock.notify_all()
        self._thread.join(timeout=30)

    def _cancel_locked(self) -> None:
        if self._running is not None:
            self._running.cancelled.set()
        self._pending = None

    def _work(self) -> None:
        while True:
            with self._lock:
                self._lock.wait_for(lambda: self._pending is not None or self._closed)
                if self._closed:
                    return
                job, self._pending = self._pending, None
                self._running = job
            try:
                self._run(job)
            finally:
                with self._lock:
                    self._running = None
                    self._lock.notify_all()

    def _emit(self, job: _Job, event: Event) -> None:
        """Deliver an event unless its generation was superseded. Delivery happens under the lock, so once
        `submit` returns, no event of an older generation can arrive (the lock is re-entrant: `on_event` may
        call `submit`)."""
        with self._lock:
            if job.cancelled.is_set() or job.id != self._next_id:
                raise _Superseded
            self.on_event({"id": job.id, **event})

    def _run(self, job: _Job) -> None:
        steps = itertools.count()

        def on_token(default: str | None, steered: str | None) -> None:
            self._emit(job, {"kind": "token", "step": next(steps), "default": default, "steered": steered})

        try:
            self._emit(job, {"kind": "start"})
            result = steer(self.scope, **job.request, on_token=on_token)
            self._emit(job, {"kind": "done", "result": result})
        except _Superseded:
            return
        except Exception as err:  # shown inline by the panel; the worker keeps serving
            try:
                self._emit(job, {"kind": "error", "message": str(err) or type(err).__name__})
            except _Superseded:
                return
