"""Steering engine on tiny random Gemma models: methods, exactness, positions, BOS, equal noise."""

from __future__ import annotations

from functools import cache

import pytest
import torch

import scopewidgets as sw
from scopewidgets.core.hooks import capture, patch
from scopewidgets.steering.generate import PairCursor
from scopewidgets.steering.hook import SteeringEdit
from scopewidgets.steering.result import run_pair
from scopewidgets.testing import random_sae, tiny_gemma2, tiny_gemma3, tiny_gemma3_multimodal

PROMPT = "The Eiffel Tower is in"
N_NEW = 12


@cache
def make_scope(builder=tiny_gemma3, layer: int = 1) -> sw.Scope:
    """One tiny scope per model builder, shared by the tests (they never change it)."""
    model, tok = builder()
    return sw.Scope(model, tok, saes=[random_sae(model, "resid_post", layer, d_sae=64)])


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def scope() -> sw.Scope:
    return make_scope()


def active_features(scope: sw.Scope, k: int = 2) -> list[int]:
    """Features that fire on the default completion (so editing them is not a no-op)."""
    values = scope.activations(PROMPT).values[1:]
    return values.sum(dim=0).topk(k).indices.tolist()


def steered_site(scope: sw.Scope, edit: SteeringEdit, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Site (after the edit) and logits of one uncached forward of `[2, n]` ids with `edit` hooked."""
    sae = edit.sae
    edit.cursor.start = 0
    with (
        torch.inference_mode(),
        patch(scope.model, sae.cfg.site, sae.cfg.layer, edit),
        capture(scope.model, [(sae.cfg.site, sae.cfg.layer)], stop=False) as acts,
    ):
        logits = scope.model(input_ids=ids, use_cache=False).logits
    return acts[sae.cfg.site, sae.cfg.layer], logits


@pytest.mark.parametrize("builder", [tiny_gemma3, tiny_gemma2], ids=["gemma3", "gemma2"])
@pytest.mark.parametrize("method", ["add", "add_scaled"])
def test_zero_strength_gives_exactly_the_default(builder, method: str) -> None:
    scope = make_scope(builder)
    out = scope.steer(PROMPT, {3: 0.0, 17: 0.0}, method=method, max_new_tokens=N_NEW)
    assert torch.equal(out.steered_ids, out.default_ids)
    assert torch.equal(out.steered_activations, out.default_activations)
    assert out.first_difference is None


class ClampToCurrent(SteeringEdit):
    """Clamp every steered feature to the value it has at each position, as the model runs."""

    def targets(self, current: torch.Tensor) -> torch.Tensor:
        return current.clone()


def test_clamp_to_each_positions_current_value_gives_exactly_the_default(scope: sw.Scope) -> None:
    features = active_features(scope)
    ids = scope.tokenize(PROMPT)
    sae = scope.sae()
    # Teeth: the SAE does not reconstruct the site exactly, so a clamp that wrote decode(a') instead of
    # keeping the error term would change the model.
    with torch.inference_mode():
        site = steered_site(
            scope, SteeringEdit(sae, [0], [0.0], "add", "all", ids.numel(), PairCursor()), ids.expand(2, -1)
        )[0]
        assert (sae(site[0, 1:]) - site[0, 1:]).norm() > 0.1 * site[0, 1:].norm()
    edit = ClampToCurrent(sae, features, [0.0] * len(features), "clamp", "all", ids.numel(), PairCursor())
    pair = run_pair(scope, ids, edit, max_new_tokens=N_NEW, temperature=0.0, seed=0)
    assert torch.equal(pair["steered_ids"], pair["default_ids"])
    assert torch.equal(pair["steered_activations"], pair["default_activations"])
    assert pair["default_activations"].abs().sum() > 0  # the clamped features were active


def test_clamp_hook_returns_h_bit_for_bit_when_the_code_is_unchanged(scope: sw.Scope) -> None:
    sae, ids = scope.sae(), scope.tokenize(PROMPT).expand(2, -1)
    edit = ClampToCurrent(
        sae, active_features(scope, 5), [0.0] * 5, "clamp", "all", ids.shape[1], PairCursor()
    )
    site = steered_site(scope, SteeringEdit(sae, [0], [0.0], "add", "all", ids.shape[1], PairCursor()), ids)[
        0
    ]
    edit.cursor.start = 0
    assert torch.equal(edit(site), site)


@pytest.mark.parametrize("positions", ["all", "generated"])
def test_ablate_zeroes_the_feature_on_steered_positions(scope: sw.Scope, positions: str) -> None:
    features = active_features(scope)
    out = scope.steer(PROMPT, features, method="ablate", max_new_tokens=N_NEW, positions=positions)
    assert out.default_activations.abs().max() > 0.1
    assert out.steered_activations.abs().max() < 1e-4
    # Independently: one uncached forward of the steered sequence with the same edit, re-encoded.
    full = torch.cat([out.prompt_ids, out.steered_ids]).expand(2, -1)
    n_prompt = out.prompt_ids.numel()
    edit = SteeringEdit(
        scope.sae(), features, [0.0] * len(features), "ablate", positions, n_prompt, PairCursor()
    )
    site = steered_site(scope, edit, full)[0]
    values = scope.sae().encode(site[1])[:, features]
    first = 1 if positions == "all" else n_prompt
    assert values[first:].abs().max() < 1e-4


def test_large_add_changes_the_greedy_output(scope: sw.Scope) -> None:
    out = scope.steer(PROMPT, {5: 60.0}, method="add", max_new_tokens=N_NEW)
    assert out.first_difference is not None
    assert out.steered_text != out.default_text


@pytest.mark.parametrize(
    "builder", [tiny_gemma3, tiny_gemma2, tiny_gemma3_multimodal], ids=["gemma3", "gemma2", "gemma3-mm"]
)
@pytest.mark.parametrize("prompt", [PROMPT, "x", "Once upon a time, in a land far away,"])
def test_default_text_equals_plain_generate(builder, prompt: str) -> None:
    scope = make_scope(builder)
    out = scope.steer(prompt, {5: 40.0}, max_new_tokens=N_NEW)
    ids = scope.tokenize(prompt)[None]
    with torch.inference_mode():
        plain = scope.model.generate(
            ids, attention_mask=torch.ones_like(ids), max_new_tokens=N_NEW, do_sample=False
        )[0, ids.shape[1] :]
    assert out.default_ids.tolist() == plain.tolist()
    assert out.default_text == scope.tokenizer.decode(plain, skip_special_tokens=True)


@pytest.mark.parametrize("positions", ["all", "prompt", "generated"])
@pytest.mark.parametrize("method", ["add", "add_scaled", "clamp"])
def test_cached_steering_equals_an_uncached_forward_of_the_steered_text(scope, method, positions) -> None:
    """Every greedy steered token is the argmax of a full forward of the steered sequence with the edit
    hooked, and the edit is where `positions` says: the KV-cache bookkeeping is right."""
    strength = {"add": 30.0, "add_scaled": 2.0, "clamp": 25.0}[method]
    out = scope.steer(PROMPT, {5: strength}, method=method, max_new_tokens=N_NEW, positions=positions)
    n_prompt = out.prompt_ids.numel()
    full = torch.cat([out.prompt_ids, out.steered_ids]).expand(2, -1)
    edit = SteeringEdit(scope.sae(), [5], [strength], method, positions, n_prompt, PairCursor())
    site, logits = steered_site(scope, edit, full)
    predicted = logits[1, n_prompt - 1 : -1].argmax(dim=-1)
    assert predicted.tolist() == out.steered_ids.tolist()
    changed = (site[1] - site[0]).norm(dim=-1) > 0
    expected = torch.zeros_like(changed)
    lo, hi = {"all": (1, None), "prompt": (1, n_prompt), "generated": (n_prompt, None)}[positions]
    expected[lo:hi] = True
    assert changed.tolist() == expected.tolist()
    if positions == "generated":
        assert out.steered_ids[0] == out.default_ids[0]


def test_bos_is_never_touched(scope: sw.Scope) -> None:
    ids = scope.tokenize(PROMPT)
    for method, strength in [("add", 100.0), ("add_scaled", 5.0), ("clamp", 50.0), ("ablate", 0.0)]:
        edit = SteeringEdit(scope.sae(), [5, 9], [strength] * 2, method, "all", ids.numel(), PairCursor())
        h = torch.randn(2, ids.numel(), 64) * 10
        edit.cursor.start = 0
        new = edit(h)
        assert torch.equal(new[:, 0], h[:, 0])  # BOS of both rows
        assert torch.equal(new[0], h[0])  # the default row
        assert not torch.equal(new[1, 1:], h[1, 1:]) or method == "ablate"
    site = steered_site(
        scope,
        SteeringEdit(scope.sae(), [5], [100.0], "add", "all", ids.numel(), PairCursor()),
        ids.expand(2, -1),
    )[0]
    assert torch.equal(site[1, 0], site[0, 0])


@pytest.mark.parametrize("seed", [0, 1, 16])
def test_both_rows_get_the_same_noise_when_sampling(scope: sw.Scope, seed: int) -> None:
    out = scope.steer(PROMPT, {3: 0.0}, max_new_tokens=N_NEW, temperature=1.0, seed=seed)
    assert out.steered_ids.tolist() == out.default_ids.tolist()
    again = scope.steer(PROMPT, {3: 0.0}, max_new_tokens=N_NEW, temperature=1.0, seed=seed)
    assert again.default_ids.tolist() == out.default_ids.tolist()


def test_sampling_actually_samples(scope: sw.Scope) -> None:
    texts = {
        scope.steer(PROMPT, {3: 0.0}, max_new_tokens=N_NEW, temperature=1.0, seed=s).default_text
        for s in range(4)
    }
    greedy = scope.steer(PROMPT, {3: 0.0}, max_new_tokens=N_NEW).default_text
    assert len(texts) > 1 and texts != {greedy}


def test_several_features_at_once_add_their_directions(scope: sw.Scope) -> None:
    ids = scope.tokenize(PROMPT)
    h = torch.randn(2, ids.numel(), 64)
    both = SteeringEdit(scope.sae(), [5, 9], [2.0, -3.0], "add", "all", ids.numel(), PairCursor())
    expected = h[1, 1:] + 2.0 * scope.sae().W_dec[5] - 3.0 * scope.sae().W_dec[9]
    assert torch.allclose(both(h)[1, 1:], expected, atol=1e-5)


def test_add_scaled_scales_by_the_residual_norm(scope: sw.Scope) -> None:
    h = torch.randn(2, 3, 64) * torch.tensor([1.0, 5.0, 50.0])[None, :, None]
    edit = SteeringEdit(scope.sae(), [5], [0.5], "add_scaled", "all", 3, PairCursor())
    added = edit(h)[1] - h[1]
    w = scope.sae().W_dec[5] / scope.sae().W_dec[5].norm()
    assert torch.allclose(added[1:], 0.5 * h[1, 1:].norm(dim=-1, keepdim=True) * w, atol=1e-4)


def test_result_table_and_code_reproduce(scope: sw.Scope, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scope.sae(), "labels", {5: "five"})
    out = scope.steer(PROMPT, {5: 30.0, 9: -10.0}, max_new_tokens=6, temperature=0.5, seed=16)
    frame = out.to_dataframe()
    assert frame.columns.tolist() == [
        "completion",
        "step",
        "token",
        "token_id",
        "feature",
        "activation",
        "density",
        "label",
    ]
    assert len(frame) == (len(out.default_ids) + len(out.steered_ids)) * 2
    assert set(zip(frame.feature, frame.label, strict=True)) == {(5, "five"), (9, "")}  # never None or NaN
    again = eval(out.code(), {"scope": scope})
    assert again.steered_text == out.steered_text and again.default_text == out.default_text


def test_recorded_default_activations_match_a_plain_encode(scope: sw.Scope) -> None:
    out = scope.steer(PROMPT, {5: 30.0, 9: 0.0}, max_new_tokens=N_NEW)
    full = torch.cat([out.prompt_ids, out.default_ids])
    encoded = scope.encode(full)[0][0, out.prompt_ids.numel() :][:, [5, 9]]
    assert torch.allclose(out.default_activations, encoded, atol=1e-4)


def test_text_summary_and_static_preview(scope: sw.Scope) -> None:
    from scopewidgets.steering.display import preview_html, text_summary

    out = scope.steer("<b>&", {5: 60.0}, max_new_tokens=8)
    summary = text_summary(out)
    assert "add {5: 60.0} (resid_post@1) at all positions, greedy" in summary
    assert f"differs from step {out.first_difference}" in summary
    page = preview_html(out)
    assert "<b>" not in page and "&lt;b&gt;&amp;" in page  # the prompt is escaped
    assert "<script" not in page
    assert len(out.default_tokens) == len(out.steered_tokens) == 8
    assert page.count("<mark") == 2 * sum(out.differs) > 0
