"""Hooks act only on forwards of the thread that registered them (a worker generating while a cell runs)."""

from __future__ import annotations

import threading

import pytest
import torch

import scopewidgets as sw
from scopewidgets.core.hooks import capture, hook_count, patch
from scopewidgets.steering.runner import SteeringRunner
from scopewidgets.testing import random_sae, tiny_gemma3

IDS = torch.tensor([[2, 70, 71, 72, 73]])


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def model():
    return tiny_gemma3()[0]


def test_overlapping_capture_and_patch_in_two_threads_do_not_see_each_other(model) -> None:
    with torch.inference_mode():
        with capture(model, [("resid_post", 1)]) as acts:
            model(IDS)
        reference_site = acts["resid_post", 1].clone()
        with patch(model, "resid_post", 1, torch.zeros_like):
            reference_patched = model(IDS).logits.clone()
    before = hook_count(model)
    patched_in, capturing, worker_ran, main_ran = (threading.Event() for _ in range(4))
    worker_out: dict[str, object] = {}

    def worker() -> None:
        try:
            with torch.inference_mode(), patch(model, "resid_post", 1, torch.zeros_like):
                patched_in.set()
                assert capturing.wait(30)
                worker_out["logits"] = model(IDS).logits.clone()  # main's capture hook is registered
                worker_ran.set()
                assert main_ran.wait(30)  # keep the patch hook registered during main's forward
        except BaseException as err:
            worker_out["error"] = err
        finally:
            worker_ran.set()

    thread = threading.Thread(target=worker)
    thread.start()
    assert patched_in.wait(30)
    with torch.inference_mode(), capture(model, [("resid_post", 1)]) as acts:
        capturing.set()
        assert worker_ran.wait(30)
        model(IDS)  # the worker's patch hook is registered; capture stops this forward after layer 1
    main_ran.set()
    thread.join()
    assert "error" not in worker_out, worker_out.get("error")
    assert torch.equal(acts["resid_post", 1], reference_site)
    assert torch.equal(worker_out["logits"], reference_patched)
    assert hook_count(model) == before


def test_cells_run_correctly_while_the_panel_worker_generates(model) -> None:
    scope = sw.Scope(model, tiny_gemma3()[1], saes=[random_sae(model, "resid_post", 1, d_sae=64)])
    reference = scope.activations("Hello there").values
    request = {"prompt": "The Eiffel Tower", "features": {5: 40.0}, "max_new_tokens": 120}
    expected = scope.steer(**request)
    events: list[dict] = []
    started = threading.Event()

    def on_event(event: dict) -> None:
        events.append(event)
        started.set()

    runner = SteeringRunner(scope, on_event)
    try:
        runner.submit(request)
        assert started.wait(60)
        for _ in range(5):
            assert torch.equal(scope.activations("Hello there").values, reference)
        assert runner.wait_idle(timeout=120)
    finally:
        runner.close()
    assert events[-1]["kind"] == "done", events[-1]
    assert events[-1]["result"].steered_ids.tolist() == expected.steered_ids.tolist()
