import pytest
import torch
from torch import nn

from scopewidgets.core import sites
from scopewidgets.core.hooks import _register, capture, hook_count, patch, run_truncated
from scopewidgets.core.sites import SitePoint

IDS = torch.tensor([[2, 40, 41, 42, 43, 44, 45], [2, 50, 51, 52, 53, 54, 55]])


@torch.no_grad()
def _hidden_states(model):
    return model(input_ids=IDS, output_hidden_states=True).hidden_states


def test_resid_post_equals_output_hidden_states(any_gemma):
    model, _ = any_gemma
    hidden = _hidden_states(model)
    acts = run_truncated(model, IDS, [("resid_post", layer) for layer in range(3)])
    for layer in range(3):
        torch.testing.assert_close(acts["resid_post", layer], hidden[layer + 1], rtol=0, atol=0)


@torch.no_grad()
def test_other_sites_rebuild_the_residual_stream(any_gemma):
    """resid_post[L] = resid_post[L-1] + post_attn_norm(o_proj(attn_out)) + mlp_out; transcoder_in follows."""
    model, _ = any_gemma
    hidden = _hidden_states(model)
    layer = sites.decoder_layers(model)[2]
    wanted = [(s, 2) for s in ("attn_out", "mlp_out", "transcoder_in", "transcoder_out")]
    acts = run_truncated(model, IDS, wanted)
    mid = hidden[2] + layer.post_attention_layernorm(layer.self_attn.o_proj(acts["attn_out", 2]))
    torch.testing.assert_close(mid + acts["mlp_out", 2], hidden[3])
    torch.testing.assert_close(acts["transcoder_in", 2], layer.pre_feedforward_layernorm(mid))
    torch.testing.assert_close(acts["transcoder_out", 2], acts["mlp_out", 2])
    assert acts["attn_out", 2].shape[-1] == sites.site_width(model, "attn_out")


def _count_calls(module, box):
    return module.register_forward_pre_hook(lambda *_: box.append(1))


def test_capture_stops_after_deepest_site(gemma3):
    model, _ = gemma3
    layers = sites.decoder_layers(model)
    calls = {i: [] for i in range(4)}
    norm_calls = []
    handles = [_count_calls(layers[i], calls[i]) for i in range(4)]
    handles.append(_count_calls(sites.final_norm(model), norm_calls))
    try:
        with capture(model, [("attn_out", 1), ("resid_post", 0)]) as acts:
            model(input_ids=IDS)
    finally:
        for h in handles:
            h.remove()
    assert sorted(acts) == [("attn_out", 1), ("resid_post", 0)]
    assert [len(calls[i]) for i in range(4)] == [1, 1, 0, 0]
    assert norm_calls == []


def test_capture_without_stop_runs_everything(gemma3):
    model, _ = gemma3
    with torch.no_grad(), capture(model, [("resid_post", 0)], stop=False) as acts:
        logits = model(input_ids=IDS).logits
    assert logits.shape == (2, 7, 260)
    assert ("resid_post", 0) in acts


def test_no_hooks_left_after_exception_or_keyboard_interrupt(gemma3):
    model, _ = gemma3
    before = hook_count(model)

    def boom(_h):
        raise KeyboardInterrupt

    with (
        pytest.raises(KeyboardInterrupt),
        capture(model, [("resid_post", 2)]),
        patch(model, "mlp_out", 1, boom),
    ):
        model(input_ids=IDS)
    assert hook_count(model) == before
    with pytest.raises(RuntimeError), capture(model, [("resid_post", 2)]):
        raise RuntimeError("user code failed inside the block")
    assert hook_count(model) == before
    with pytest.raises(ValueError), capture(model, [("resid_post", 9)]):
        pass
    assert hook_count(model) == before


def test_patch_replaces_activation_and_is_removed(gemma3):
    model, _ = gemma3
    with torch.no_grad():
        clean = model(input_ids=IDS).logits
        with patch(model, "resid_post", 3, torch.zeros_like):
            zeroed = model(input_ids=IDS).logits
        again = model(input_ids=IDS).logits
    # with the last residual zeroed, the final norm outputs zeros: logits are all zero
    assert torch.count_nonzero(zeroed) == 0
    torch.testing.assert_close(clean, again)


def test_patch_on_input_side_changes_o_proj_input(gemma3):
    model, _ = gemma3
    o_proj = sites.decoder_layers(model)[1].self_attn.o_proj
    seen = []
    handle = o_proj.register_forward_hook(lambda _m, args, out: seen.append((args[0].clone(), out.clone())))
    try:
        with torch.no_grad():
            model(input_ids=IDS)
            with patch(model, "attn_out", 1, lambda h: h + 1.0):
                model(input_ids=IDS)
    finally:
        handle.remove()
    (clean_in, _), (edited_in, edited_out) = seen
    torch.testing.assert_close(edited_in, clean_in + 1.0)
    torch.testing.assert_close(edited_out, o_proj(clean_in + 1.0))


class _TupleLayer(nn.Module):
    """Stands in for older transformers releases whose decoder layers return a tuple."""

    def forward(self, x):
        return (x * 2, "cache")


def test_tuple_outputs_are_read_and_replaced():
    layer = _TupleLayer()
    point = SitePoint(site="resid_post", layer=0, module=layer, side="output")
    seen = []
    handle = _register(point, lambda h: seen.append(h) or h + 1)
    try:
        out = layer(torch.ones(2))
    finally:
        handle.remove()
    torch.testing.assert_close(seen[0], torch.full((2,), 2.0))
    torch.testing.assert_close(out[0], torch.full((2,), 3.0))
    assert out[1] == "cache"
