"""The paired generation loop: per-row EOS, shared-noise sampling, steering spans."""

from __future__ import annotations

import pytest
import torch

import scopewidgets as sw
from scopewidgets.steering.generate import SharedNoiseSampler, generate_pair
from scopewidgets.steering.hook import edited_span
from scopewidgets.testing import tiny_scope

PROMPT = "The Eiffel Tower is in"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def scope() -> sw.Scope:
    return tiny_scope()


def test_shared_noise_sampler_draws_from_the_softmax() -> None:
    logits = torch.tensor([[0.0, 1.0, 2.0, -1.0]]).expand(2, -1)
    sampler = SharedNoiseSampler(temperature=0.5, seed=16, device=torch.device("cpu"))
    draws = torch.stack([sampler(logits) for _ in range(20000)])  # [n, 2]
    assert torch.equal(draws[:, 0], draws[:, 1])  # both rows, same noise, same token
    frequencies = torch.bincount(draws[:, 0], minlength=4).float() / len(draws)
    assert torch.allclose(frequencies, torch.softmax(logits[0] / 0.5, dim=-1), atol=0.015)


def test_a_row_stops_at_eos_while_the_other_goes_on(scope: sw.Scope, monkeypatch) -> None:
    base = scope.steer(PROMPT, {5: 60.0}, max_new_tokens=10)
    stop = next(t for t in base.default_ids.tolist() if t not in base.steered_ids.tolist())
    monkeypatch.setattr(scope.model.generation_config, "eos_token_id", [1, stop])
    streamed: list[tuple] = []
    out = scope.steer(PROMPT, {5: 60.0}, max_new_tokens=10, on_token=lambda a, b: streamed.append((a, b)))
    cut = base.default_ids.tolist().index(stop) + 1
    assert out.default_ids.tolist() == base.default_ids.tolist()[:cut]  # EOS kept, then stopped
    assert out.steered_ids.tolist() == base.steered_ids.tolist()  # the other row went on to the cap
    assert out.default_activations.shape[0] == cut
    assert torch.allclose(out.steered_activations, base.steered_activations)
    assert [a for a, _ in streamed][cut:] == [None] * (10 - cut)


def test_generation_stops_when_both_rows_end(scope: sw.Scope) -> None:
    first = scope.steer(PROMPT, {5: 0.0}, max_new_tokens=4).default_ids[0].item()
    rows = generate_pair(scope.model, scope.tokenize(PROMPT), max_new_tokens=10, eos_ids={first})
    assert rows == ([first], [first])


@pytest.mark.parametrize(
    ("start", "length", "positions", "span"),
    [
        (0, 6, "all", (1, 6)),
        (0, 6, "prompt", (1, 6)),
        (0, 6, "generated", (0, 0)),
        (6, 1, "all", (0, 1)),
        (6, 1, "prompt", (0, 0)),
        (6, 1, "generated", (0, 1)),
        (0, 1, "all", (0, 0)),  # a one-token prompt is only BOS: nothing to edit
        (4, 4, "generated", (2, 4)),
    ],
)
def test_edited_span(start: int, length: int, positions: str, span: tuple[int, int]) -> None:
    assert edited_span(start, length, 6, positions) == span
