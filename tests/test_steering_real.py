"""Steering on the real Gemma 3 270M (slow lane): the batched default equals plain `generate`."""

from __future__ import annotations

import pytest
import torch

import scopewidgets as sw
from scopewidgets.core.hooks import hook_count
from scopewidgets.testing import random_sae

pytestmark = pytest.mark.slow

PROMPT = "The Eiffel Tower is in the city of"


@pytest.fixture(scope="module")
def scope() -> sw.Scope:
    from scopewidgets.demo import demo_model

    model, tokenizer = demo_model()
    return sw.Scope(model, tokenizer, saes=[random_sae(model, "resid_post", 6, d_sae=1024)])


def test_default_is_plain_greedy_generate_and_steering_changes_it(scope: sw.Scope) -> None:
    before = hook_count(scope.model)
    out = scope.steer(PROMPT, {0: 150.0}, max_new_tokens=10)
    ids = scope.tokenize(PROMPT)[None]
    with torch.inference_mode():
        plain = scope.model.generate(
            ids, attention_mask=torch.ones_like(ids), max_new_tokens=10, do_sample=False
        )
    assert out.default_ids.tolist() == plain[0, ids.shape[1] :].tolist()
    assert out.default_text.startswith(" Paris")
    assert out.steered_text != out.default_text
    assert hook_count(scope.model) == before


def test_zero_strength_with_sampling_gives_the_same_text_on_both_rows(scope: sw.Scope) -> None:
    out = scope.steer(PROMPT, {0: 0.0}, method="add_scaled", max_new_tokens=10, temperature=0.5, seed=16)
    assert out.steered_text == out.default_text
