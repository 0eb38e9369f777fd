"""The worker-thread runner behind the steering panel: streaming, superseding, errors, no stale events."""

from __future__ import annotations

import threading

import pytest

import scopewidgets as sw
from scopewidgets.core.hooks import hook_count
from scopewidgets.steering.runner import SteeringRunner
from scopewidgets.testing import tiny_scope

PROMPT = "The Eiffel Tower is in"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def scope() -> sw.Scope:
    return tiny_scope()


@pytest.fixture
def runner_events(scope: sw.Scope):
    events: list[dict] = []
    first_token = threading.Event()

    def on_event(event: dict) -> None:
        events.append(event)
        if event["kind"] == "token":
            first_token.set()

    runner = SteeringRunner(scope, on_event)
    yield runner, events, first_token
    runner.close()


def test_streams_tokens_then_the_same_result_as_steer(scope: sw.Scope, runner_events) -> None:
    runner, events, _ = runner_events
    request = {"prompt": PROMPT, "features": {5: 40.0}, "max_new_tokens": 6, "temperature": 0.5, "seed": 16}
    gen = runner.submit(request)
    assert runner.wait_idle(timeout=120)
    assert [e["kind"] for e in events] == ["start"] + ["token"] * 6 + ["done"]
    assert all(e["id"] == gen for e in events)
    result = events[-1]["result"]
    direct = scope.steer(**request)
    assert result.steered_text == direct.steered_text and result.default_text == direct.default_text
    assert [e["steered"] for e in events[1:-1]] == direct.steered_tokens
    assert [e["step"] for e in events[1:-1]] == list(range(6))


def test_a_new_request_supersedes_the_running_one(scope: sw.Scope, runner_events) -> None:
    runner, events, first_token = runner_events
    before = hook_count(scope.model)
    old = runner.submit({"prompt": PROMPT, "features": {5: 40.0}, "max_new_tokens": 200})
    assert first_token.wait(timeout=120)
    new = runner.submit({"prompt": PROMPT, "features": {5: -40.0}, "max_new_tokens": 4})
    seen_at_submit = len(events)
    assert runner.wait_idle(timeout=120)
    assert all(e["id"] == new for e in events[seen_at_submit:])  # nothing stale after submit returned
    assert not any(e["kind"] == "done" and e["id"] == old for e in events)
    assert len([e for e in events if e["id"] == old and e["kind"] == "token"]) < 200
    assert [e["kind"] for e in events if e["id"] == new] == ["start"] + ["token"] * 4 + ["done"]
    assert hook_count(scope.model) == before


def test_only_the_newest_of_many_quick_requests_finishes(runner_events) -> None:
    runner, events, _ = runner_events
    ids = [
        runner.submit({"prompt": PROMPT, "features": {5: float(s)}, "max_new_tokens": 3}) for s in range(8)
    ]
    assert runner.wait_idle(timeout=120)
    done = [e for e in events if e["kind"] == "done"]
    assert [e["id"] for e in done] == [ids[-1]]
    assert done[0]["result"].features == {5: 7.0}


def test_an_error_is_reported_and_the_runner_keeps_working(runner_events) -> None:
    runner, events, _ = runner_events
    bad = runner.submit({"prompt": PROMPT, "features": {640: 1.0}})
    assert runner.wait_idle(timeout=60)
    assert events[-1] == {"id": bad, "kind": "error", "message": events[-1]["message"]}
    assert "Feature 640 is out of range" in events[-1]["message"]
    runner.submit({"prompt": PROMPT, "features": {5: 1.0}, "max_new_tokens": 2})
    assert runner.wait_idle(timeout=60)
    assert events[-1]["kind"] == "done"


def test_submit_returns_before_the_generation_ends(runner_events) -> None:
    runner, events, _ = runner_events
    gen = runner.submit({"prompt": PROMPT, "features": {5: 1.0}, "max_new_tokens": 100})
    assert not any(e["kind"] == "done" for e in events)
    runner.cancel()
    assert runner.wait_idle(timeout=60)
    assert not any(e["kind"] == "done" and e["id"] == gen for e in events)


def test_closed_runner_refuses_requests(scope: sw.Scope) -> None:
    runner = SteeringRunner(scope, lambda _event: None)
    runner.close()
    assert not runner._thread.is_alive()
    with pytest.raises(RuntimeError, match="closed"):
        runner.submit({"prompt": PROMPT, "features": {5: 1.0}})
