import pytest
import torch

import scopewidgets as sw
from scopewidgets.core import sites
from scopewidgets.core.hooks import hook_count
from scopewidgets.testing import random_sae


@pytest.fixture
def scope(gemma3):
    model, tok = gemma3
    return sw.Scope(
        model,
        tok,
        saes=[random_sae(model, "resid_post", 1, 32), random_sae(model, "attn_out", 2, 24, seed=1)],
    )


def test_activations_equal_sae_on_hidden_states(scope):
    acts = scope.activations("The Eiffel Tower")
    ids = acts.token_ids
    assert ids[0].item() == scope.tokenizer.bos_token_id
    assert acts.tokens[:2] == ["<bos>", "T"]
    with torch.no_grad():
        hidden = scope.model(input_ids=ids[None], output_hidden_states=True).hidden_states[2][0]
    expected = scope.saes[0].encode(hidden)
    expected[0] = 0
    torch.testing.assert_close(acts.values, expected)
    assert acts.values.shape == (len(ids), 32)
    assert torch.count_nonzero(acts.values[0]) == 0
    assert acts.bos_mask.tolist() == [True] + [False] * (len(ids) - 1)


def test_token_ids_are_used_as_given(scope):
    acts = scope.activations([40, 41, 42])
    assert acts.token_ids.tolist() == [40, 41, 42]
    assert torch.count_nonzero(acts.values[0]) > 0  # no BOS given: the first token is a real token


def test_one_forward_serves_several_saes(scope):
    calls = []
    layers = sites.decoder_layers(scope.model)
    handle = layers[0].register_forward_pre_hook(lambda *_: calls.append(1))
    after = []
    handle2 = layers[3].register_forward_pre_hook(lambda *_: after.append(1))
    try:
        feats = scope.encode(scope.tokenize("hello"))
    finally:
        handle.remove()
        handle2.remove()
    assert len(calls) == 1 and after == []
    assert [f.shape[-1] for f in feats] == [32, 24]
    other = scope.activations("hello", sae=1)
    torch.testing.assert_close(other.values, feats[1][0])


def test_top_features_and_dataframe(scope):
    acts = scope.activations("abcabc")
    top = acts.top_features(5, rank="activation")
    assert list(top.columns) == [
        "feature",
        "score",
        "max_activation",
        "mean_activation",
        "n_active",
        "top_token",
        "density",
        "label",
    ]
    peak = acts.values.max(0).values
    assert top.feature.tolist() == peak.topk(5).indices.tolist()
    f = top.feature[0]
    assert top.n_active[0] == int((acts.values[:, f] > 0).sum())
    assert top.mean_activation[0] == pytest.approx(acts.values[1:, f].mean().item(), rel=1e-6)
    frame = acts.to_dataframe()
    assert len(frame) == int((acts.values > 0).sum())
    assert set(frame.position) <= set(range(1, len(acts)))


def test_several_texts_give_a_set(scope):
    rows = scope.activations(["ab", "cde"])
    assert isinstance(rows, sw.ActivationsSet)
    assert [len(r) for r in rows] == [3, 4]
    assert set(rows.to_dataframe().text_index) <= {0, 1}


def test_sae_with_wrong_width_or_layer_is_refused(gemma3):
    model, tok = gemma3
    wrong = sw.SAE(sw.SAEConfig(d_in=32, d_sae=8, site="resid_post", layer=1))
    with pytest.raises(ValueError, match="d_in=32.*width 64"):
        sw.Scope(model, tok, saes=[wrong])
    deep = sw.SAE(sw.SAEConfig(d_in=64, d_sae=8, site="resid_post", layer=7))
    with pytest.raises(ValueError, match=r"Layer 7 .* 0\.\.3"):
        sw.Scope(model, tok, saes=[deep])
    unplaced = sw.SAE(sw.SAEConfig(d_in=64, d_sae=8))
    with pytest.raises(ValueError, match="site=.*layer="):
        sw.Scope(model, tok, saes=[unplaced])


def test_bad_inputs_raise_and_leave_no_hooks(scope):
    before = hook_count(scope.model)
    with pytest.raises(ValueError, match="empty"):
        scope.activations("")
    with pytest.raises(ValueError, match="empty"):
        scope.activations(torch.tensor([], dtype=torch.long))
    with pytest.raises(ValueError, match=r"at most 256"):
        scope.activations("x" * 400)
    with pytest.raises(ValueError, match=r"Token id 999 .*\[0, 260\)"):
        scope.activations([2, 999])
    with pytest.raises(ValueError, match=r"Token id -1"):
        scope.activations([2, -1])
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        scope.activations("hi", sae=5)
    with pytest.raises(ValueError, match=r"\[0, 32\)"):
        scope.activations("hi").feature(32)
    assert hook_count(scope.model) == before


def test_scope_on_gemma2_and_multimodal(gemma2, gemma3_mm):
    for model, tok in (gemma2, gemma3_mm):
        scope = sw.Scope(model, tok, saes=[random_sae(model, "mlp_out", 3, 16)])
        acts = scope.activations("hello")
        assert acts.values.shape == (6, 16)


def test_no_sae_scope_says_so(gemma3):
    scope = sw.Scope(*gemma3)
    with pytest.raises(ValueError, match="no SAEs"):
        scope.activations("hi")
