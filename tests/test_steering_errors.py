"""Steering: argument errors name the bad value and the allowed range; no hook survives an error."""

from __future__ import annotations

import pytest

import scopewidgets as sw
from scopewidgets.core.hooks import hook_count
from scopewidgets.core.sae import SAEConfig
from scopewidgets.core.sites import final_norm
from scopewidgets.testing import random_sae, tiny_scope

PROMPT = "The Eiffel Tower is in"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def scope() -> sw.Scope:
    return tiny_scope()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"method": "subtract"},
            r"Unknown steering method 'subtract'; allowed methods are add, add_scaled, clamp, ablate",
        ),
        ({"features": {64: 1.0}}, r"Feature 64 is out of range: this SAE has features \[0, 64\)"),
        ({"features": {-1: 1.0}}, r"Feature -1 is out of range"),
        ({"features": {True: 1.0}}, r"Feature index must be an int"),
        ({"features": {}}, r"features is empty"),
        ({"features": [3]}, r"features must be a dict"),
        ({"features": {3: float("nan")}}, r"strength of feature 3 must be a finite number"),
        ({"features": {3: "big"}}, r"strength of feature 3 must be a finite number"),
        ({"features": {3: 2.0}, "method": "ablate"}, r"method='ablate' sets the features to 0"),
        ({"prompt": ""}, r"The text is empty"),
        ({"max_new_tokens": 0}, r"max_new_tokens=0 is out of range: .* must be in \[1, 233\]"),
        ({"max_new_tokens": 234}, r"max_new_tokens=234 is out of range"),
        ({"max_new_tokens": 2.5}, r"max_new_tokens must be an int in \[1, 233\]"),
        ({"prompt": "x" * 255}, r"leaves no room to generate"),
        ({"temperature": -0.1}, r"temperature must be a number in \[0, 100\]"),
        ({"temperature": float("nan")}, r"temperature must be a number"),
        ({"seed": -1}, r"seed must be an int in \[0, 2\*\*63 - 1\]"),
        ({"positions": "middle"}, r"Unknown positions 'middle'; allowed values are all, prompt, generated"),
        ({"sae": 3}, r"SAE index 3 is out of range"),
    ],
)
def test_bad_arguments_raise_a_value_error_naming_the_value(
    scope: sw.Scope, kwargs: dict, message: str
) -> None:
    args = {"prompt": PROMPT, "features": {3: 1.0}, **kwargs}
    before = hook_count(scope.model)
    with pytest.raises(ValueError, match=message):
        scope.steer(args.pop("prompt"), args.pop("features"), **args)
    assert hook_count(scope.model) == before


def test_ablate_accepts_a_list_of_features(scope: sw.Scope) -> None:
    out = scope.steer(PROMPT, [3, 9], method="ablate", max_new_tokens=3)
    assert out.features == {3: 0.0, 9: 0.0}


def test_a_transcoder_is_refused(scope: sw.Scope) -> None:
    sae = random_sae(scope.model, "transcoder_in", 1, d_sae=16)
    transcoder = type(sae).from_tensors(
        SAEConfig(**{**sae.cfg.__dict__, "site_out": "transcoder_out", "extra": {}}),
        {k: v for k, v in sae.state_dict().items() if k != "W_skip"},
    )
    with pytest.raises(ValueError, match=r"transcoder \(transcoder_in -> transcoder_out at layer 1\)"):
        scope.steer(PROMPT, {3: 1.0}, sae=transcoder)


def test_no_hook_remains_after_an_exception_in_the_token_callback(scope: sw.Scope) -> None:
    before = hook_count(scope.model)
    seen: list[tuple] = []

    def on_token(default: str | None, steered: str | None) -> None:
        seen.append((default, steered))
        if len(seen) == 3:
            raise RuntimeError("widget went away")

    with pytest.raises(RuntimeError, match="widget went away"):
        scope.steer(PROMPT, {3: 5.0}, max_new_tokens=10, on_token=on_token)
    assert len(seen) == 3
    assert hook_count(scope.model) == before


def test_no_hook_remains_after_a_keyboard_interrupt_mid_generation(scope: sw.Scope) -> None:
    """The interrupt is raised inside the model's forward, on the 4th forward (a one-token step)."""
    model = scope.model
    before = hook_count(model)
    calls = {"n": 0}

    def interrupt(_module, _args, _output) -> None:
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt

    handle = final_norm(model).register_forward_hook(interrupt)
    try:
        with pytest.raises(KeyboardInterrupt):
            scope.steer(PROMPT, {3: 5.0}, max_new_tokens=10)
        assert hook_count(model) == before + 1  # only the test's own hook is left
    finally:
        handle.remove()
    assert hook_count(model) == before
    assert calls["n"] == 4
    # The model still works and gives the same result as before the interrupt.
    out = scope.steer(PROMPT, {3: 5.0}, max_new_tokens=4)
    assert out.steered_ids.numel() == 4


def test_streamed_tokens_are_the_result_tokens(scope: sw.Scope) -> None:
    streamed: list[tuple[str | None, str | None]] = []
    out = scope.steer(PROMPT, {5: 40.0}, max_new_tokens=8, on_token=lambda a, b: streamed.append((a, b)))
    assert [a for a, _ in streamed] == out.default_tokens
    assert [b for _, b in streamed] == out.steered_tokens
