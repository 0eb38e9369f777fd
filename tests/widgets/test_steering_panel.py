"""The steering panel's Python side: controls, code, generation in a worker, superseding, inline errors."""

from __future__ import annotations

import json
import math
import time

import pytest
import torch

import scopewidgets as sw
from scopewidgets.core.hooks import hook_count
from scopewidgets.features import FeatureStats, forget_feature_stats, register_feature_stats
from scopewidgets.steering.runner import SteeringRunner
from scopewidgets.testing import tiny_scope
from scopewidgets.widgets.steering import SteeringPanel

PROMPT = "The Eiffel Tower is in"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def scope() -> sw.Scope:
    return tiny_scope(labels={3: "third <b>feature</b>"})


@pytest.fixture
def panel(scope: sw.Scope):
    panel = scope.steering_panel(PROMPT, features={5: 40.0, 3: 0.0}, max_new_tokens=6)
    panel.sent = []
    panel.send = panel.sent.append  # what would go to the front end as custom messages
    yield panel
    panel.close()


def wait_result(panel: SteeringPanel, gen: int) -> dict:
    assert panel._runner is not None and panel._runner.wait_idle(timeout=120)
    assert panel.error == ""
    assert panel.result["id"] == gen and not panel.running
    return panel.result


def test_controls_captions_limits_and_code(scope: sw.Scope, panel: SteeringPanel) -> None:
    assert [c["feature"] for c in panel.controls] == [5, 3]
    assert panel.controls[1]["caption"] == "third <b>feature</b>"  # the label
    assert panel.controls[0]["caption"].startswith("↑ ")  # top promoted tokens
    assert [c["limit"] for c in panel.controls] == [600.0, 600.0]
    assert panel.strengths == {"5": 40.0, "3": 0.0}
    expected = scope.steer(PROMPT, {5: 40.0, 3: 0.0}, max_new_tokens=6)
    assert eval(panel.code, {"scope": scope}).steered_text == expected.steered_text
    panel.method = "add_scaled"
    assert [c["limit"] for c in panel.controls] == [2.0, 2.0]
    panel.features = [5, 3, 9]
    assert panel.strengths == {"5": 40.0, "3": 0.0, "9": 0.0} and len(panel.controls) == 3
    assert panel._export_state()["interactive"] is False  # a saved page cannot generate


def test_generate_streams_tokens_and_the_result_equals_steer(scope: sw.Scope, panel: SteeringPanel) -> None:
    panel.temperature, panel.seed = 0.5, 16
    before = hook_count(scope.model)
    panel._on_message(panel, {"type": "generate"}, [])
    result = wait_result(panel, panel.generation)
    direct = scope.steer(PROMPT, {5: 40.0, 3: 0.0}, max_new_tokens=6, temperature=0.5, seed=16)
    assert result["steered_tokens"] == direct.steered_tokens
    assert result["default_tokens"] == direct.default_tokens
    assert result["differs"] == direct.differs
    tokens = [m for m in panel.sent if m["kind"] == "token"]
    assert [m["steered"] for m in tokens] == direct.steered_tokens
    assert all(m["id"] == panel.generation for m in panel.sent)
    assert hook_count(scope.model) == before


def test_a_new_generation_supersedes_the_running_one(panel: SteeringPanel) -> None:
    panel.max_new_tokens = 200
    first = panel.generate()
    panel.max_new_tokens = 3
    panel.strengths = {**panel.strengths, "5": -40.0}
    second = panel.generate()
    result = wait_result(panel, second)
    assert second > first and len(result["steered_tokens"]) == 3
    assert not any(m["id"] == first and m["kind"] == "token" for m in panel.sent[-4:])


def test_errors_are_shown_inline_and_the_panel_keeps_working(panel: SteeringPanel) -> None:
    panel.features = [5, 10**6]
    assert "Feature 1000000 is out of range" in panel.error
    assert panel.features == [5, 3]  # the bad feature was dropped
    panel.features = [5]
    assert panel.error == ""
    panel.max_new_tokens = 0
    panel.generate()
    assert panel._runner.wait_idle(timeout=60)
    assert "max_new_tokens=0 is out of range" in panel.error and not panel.running
    panel.max_new_tokens = 2
    wait_result(panel, panel.generate())


def test_a_result_displays_as_a_read_only_panel(scope: sw.Scope) -> None:
    out = scope.steer(PROMPT, {5: 40.0}, max_new_tokens=4)
    view = out.widget()
    assert isinstance(view, SteeringPanel) and not view.interactive
    assert view.result["steered_tokens"] == out.steered_tokens and view.result["id"] == view.generation
    assert view.code == out.code()
    assert view.summary == "Steering: add {5: 40.0} (resid_post@1) at all positions, greedy; #5 (density –)"
    view.generate()
    assert "read-only" in view.error
    bundle, _ = out._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["text/plain"].startswith("Steering: add {5: 40.0}")
    assert "<mark" in bundle["text/html"] or out.first_difference is None


def test_copy_as_code_rounds_drops_zeros_and_reproduces_the_panels_generation(
    scope: sw.Scope, panel: SteeringPanel
) -> None:
    panel.strengths = {"5": 89.97226134018706, "3": 0.0}
    assert panel.strengths == {"5": 90.0, "3": 0.0}  # the panel keeps 3 significant digits
    assert "{5: 90.0}" in panel.code and "3:" not in panel.code  # a zero strength changes nothing
    result = wait_result(panel, panel.generate())
    again = eval(panel.code, {"scope": scope})
    assert again.steered_tokens == result["steered_tokens"]
    assert again.default_tokens == result["default_tokens"]
    assert panel.summary == (
        "Steering: add {5: 90.0, 3: 0.0} (resid_post@1) at all positions, greedy; "
        "#5 (density –), #3 'third <b>feature</b>' (density –)"
    )
    panel.method = "ablate"
    assert "[5, 3], method='ablate'" in panel.code


def test_closing_stops_the_worker(panel: SteeringPanel) -> None:
    panel.generate()
    runner = panel._runner
    panel.close()
    assert not runner._thread.is_alive()


def test_the_generation_id_is_published_before_any_of_its_messages(panel: SteeringPanel, monkeypatch) -> None:
    """The front end draws only messages of the current `generation`: it must be set first, even when the
    main thread is descheduled right after submitting (simulated by a slow `submit`)."""
    seen: list[tuple[int, int]] = []
    panel.send = lambda message: seen.append((message["id"], panel.generation))
    submit = SteeringRunner.submit

    def slow_submit(self: SteeringRunner, request: dict) -> int:
        gen = submit(self, request)
        time.sleep(0.5)
        return gen

    monkeypatch.setattr(SteeringRunner, "submit", slow_submit)
    for _ in range(2):
        panel.generate()
    assert panel._runner.wait_idle(timeout=120)
    assert seen and all(message_id == current for message_id, current in seen), seen


def test_features_show_their_density_in_the_panel_the_result_and_its_summaries() -> None:
    scope = tiny_scope(labels={3: "third"})
    sae = scope.sae()
    density = torch.linspace(0.0001, 0.5, sae.cfg.d_sae)
    register_feature_stats(sae, FeatureStats(density, torch.ones(64), torch.ones(64), 1000, "test"))
    try:
        panel = scope.steering_panel(PROMPT, features={5: 40.0, 3: 0.0}, max_new_tokens=3)
        out = scope.steer(PROMPT, {5: 40.0, 3: 0.0}, max_new_tokens=3)
    finally:
        forget_feature_stats(sae)
    expected = {5: float(density[5]), 3: float(density[3])}
    assert {c["feature"]: c["density"] for c in panel.controls} == pytest.approx(expected)
    assert out.densities == pytest.approx(expected)
    frame = out.to_dataframe()
    assert frame.columns[-2:].tolist() == ["density", "label"]
    assert frame.density.tolist() == pytest.approx([expected[f] for f in frame.feature])  # on every row
    assert frame.label.tolist() == ["third" if f == 3 else "" for f in frame.feature]
    summary = out._repr_text()
    assert f"#5 (density {100 * expected[5]:.3g}%), #3 'third' (density {100 * expected[3]:.3g}%)" in summary
    view = out.widget()  # read-only, no scope: the result's densities and the SAE's label
    assert view.summary.endswith(
        f"#5 (density {100 * expected[5]:.3g}%), #3 'third' (density {100 * expected[3]:.3g}%)"
    )
    assert [(c["caption"], c["density"]) for c in view.controls] == [
        ("", pytest.approx(expected[5])),
        ("third", pytest.approx(expected[3])),
    ]
    panel.close()


def test_unknown_densities_are_none_not_nan(scope: sw.Scope, panel: SteeringPanel) -> None:
    assert [c["density"] for c in panel.controls] == [None, None]  # no statistics, none computed
    out = scope.steer(PROMPT, {5: 1.0}, max_new_tokens=2)
    assert math.isnan(out.densities[5]) and "#5 (density –)" in out._repr_text()
    assert "NaN" not in json.dumps(out.widget().controls)
