"""The steering panel's Python-side control data: slider mapping, ranges per method, feature captions."""

from __future__ import annotations

import pytest
import torch

import scopewidgets as sw
from scopewidgets.core import sites
from scopewidgets.steering.controls import (
    FIXED_LIMITS,
    feature_captions,
    nice_ceiling,
    slider_position,
    slider_value,
    strength_limits,
    top_logit_tokens,
)
from scopewidgets.testing import random_sae, tiny_gemma3

PROMPT = "The Eiffel Tower is in"


@pytest.fixture(scope="module")
def scope() -> sw.Scope:
    model, tok = tiny_gemma3()
    return sw.Scope(model, tok, saes=[random_sae(model, "resid_post", 1, d_sae=64)])


@pytest.mark.parametrize("limit", [600.0, 2.0, 50.0])
def test_slider_mapping_is_symmetric_exact_at_the_ends_and_zero_and_invertible(limit: float) -> None:
    assert slider_value(0.0, limit) == 0.0
    assert slider_value(1.0, limit) == pytest.approx(limit)
    assert slider_value(-1.0, limit) == pytest.approx(-limit)
    positions = torch.linspace(-1, 1, 41).tolist()
    values = [slider_value(p, limit) for p in positions]
    assert values == sorted(values)  # monotone
    assert all(slider_value(-p, limit) == -slider_value(p, limit) for p in positions)
    assert all(abs(slider_position(v, limit) - p) < 1e-9 for p, v in zip(positions, values, strict=True))
    assert slider_value(0.5, limit) == pytest.approx(limit / 4)  # a power curve, 0.5 -> a quarter


def test_the_strengths_that_steer_the_demo_span_the_track() -> None:
    """With `add`, 100-300 is where the demo's features change the text: that range gets a good part of
    the slider's travel (with the old log scale it was the last ~15%)."""
    low, high = (slider_position(v, FIXED_LIMITS["add"]) for v in (100.0, 300.0))
    assert 0.3 < low < 0.5 and 0.65 < high < 0.8
    assert slider_position(10.0, FIXED_LIMITS["add"]) > 0.1  # small strengths stay reachable


def test_nice_ceiling() -> None:
    assert [nice_ceiling(v) for v in (1.0, 1.01, 2.0, 3.0, 5.0, 7.0, 10.0, 0.012)] == [
        1.0,
        2.0,
        2.0,
        5.0,
        5.0,
        10.0,
        10.0,
        0.02,
    ]


def test_limits_per_method(scope: sw.Scope) -> None:
    sae = scope.sae()
    assert strength_limits(scope, sae, [3, 5], "add", PROMPT) == {3: 600.0, 5: 600.0}
    assert strength_limits(scope, sae, [3], "add_scaled", PROMPT) == {3: 2.0}
    assert strength_limits(scope, sae, [3], "ablate", PROMPT) == {3: 0.0}
    values = scope.activations(PROMPT).values[1:]
    active = int(values.max(dim=0).values.argmax())
    silent = int(values.max(dim=0).values.argmin())
    assert values[:, silent].max() == 0
    limits = strength_limits(scope, sae, [active, silent], "clamp", PROMPT)
    peak = float(values[:, active].max())
    assert 4 * peak <= limits[active] < 10 * peak
    assert limits[silent] == limits[active]  # silent: scaled from the prompt's strongest feature


def test_top_logit_tokens_follow_the_decoder_direction(scope: sw.Scope) -> None:
    sae = random_sae(scope.model, "resid_post", 1, d_sae=8)
    unembedding = sites.unembedding(scope.model).detach()
    gain = sites.final_norm_gain(scope.model)
    target = scope.tokenizer(" Paris", add_special_tokens=False)["input_ids"][1]  # 'P'
    with torch.no_grad():
        sae.W_dec[2] = unembedding[target] / gain
    tokens = top_logit_tokens(scope, sae, [2], k=3)[2]
    assert tokens[0] == scope.token_strings([target])[0]
    assert len(tokens) == 3


def test_captions_prefer_labels(scope: sw.Scope) -> None:
    sae = random_sae(scope.model, "resid_post", 1, d_sae=8)
    sae.labels[1] = "Paris landmarks"
    captions = feature_captions(scope, sae, [1, 2])
    assert captions[1] == "Paris landmarks"
    assert captions[2].startswith("↑ ") and captions[2].count("'") >= 6
