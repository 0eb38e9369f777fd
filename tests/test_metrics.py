import math

import pytest
import torch
import torch.nn.functional as F

import scopewidgets as sw
from scopewidgets.core.corpus import token_windows
from scopewidgets.testing import random_sae

TEXTS = ["The quick brown fox jumps over the lazy dog. " * 6, "Pack my box with five dozen liquor jugs. " * 5]


def _ce(logits, ids):
    losses = F.cross_entropy(logits[:, :-1].flatten(0, 1), ids[:, 1:].flatten(), reduction="none")
    return losses.view(ids.shape[0], -1)[:, 1:]  # drop predictions made from the BOS position


@torch.no_grad()
def _by_hand(model, tok, sae, layer):
    ids = token_windows(tok, TEXTS, 32)
    out = model(input_ids=ids, output_hidden_states=True)
    x = out.hidden_states[layer + 1][:, 1:]  # non-BOS
    x_hat = sae(x)
    feats = sae.encode(x)
    flat, flat_hat = x.reshape(-1, x.shape[-1]), x_hat.reshape(-1, x.shape[-1])
    fvu = ((flat - flat_hat) ** 2).sum() / ((flat - flat.mean(0)) ** 2).sum()
    layers = model.model.layers
    results = {}
    for name, replacement in (("spliced", x_hat), ("ablated", torch.zeros_like(x))):

        def hook(_m, _a, output, replacement=replacement):
            return torch.cat([output[:, :1], replacement], dim=1)

        handle = layers[layer].register_forward_hook(hook)
        try:
            results[name] = _ce(model(input_ids=ids).logits, ids).mean().item()
        finally:
            handle.remove()
    clean = _ce(out.logits, ids).mean().item()
    return {
        "l0": (feats > 0).float().sum(-1).mean().item(),
        "fvu": fvu.item(),
        "ce_clean": clean,
        "ce_spliced": results["spliced"],
        "ce_ablated": results["ablated"],
        "frac_loss_recovered": (results["ablated"] - results["spliced"]) / (results["ablated"] - clean),
    }


def test_evaluate_matches_hand_computation(gemma3):
    model, tok = gemma3
    sae = random_sae(model, "resid_post", 1, 48, threshold=0.5)
    scope = sw.Scope(model, tok, saes=[sae])
    table = scope.evaluate(TEXTS, seq_len=32, batch_size=3)
    assert list(table.columns[:6]) == [
        "l0",
        "fvu",
        "ce_clean",
        "ce_spliced",
        "ce_ablated",
        "frac_loss_recovered",
    ]
    row = table.iloc[0]
    expected = _by_hand(model, tok, sae, 1)
    for key, value in expected.items():
        assert math.isclose(row[key], value, rel_tol=1e-4, abs_tol=1e-5), (key, row[key], value)


def test_evaluate_one_row_per_sae(gemma3):
    model, tok = gemma3
    saes = [random_sae(model, "resid_post", 1, 16), random_sae(model, "mlp_out", 2, 16, seed=2)]
    scope = sw.Scope(model, tok, saes=saes)
    table = scope.evaluate(TEXTS, seq_len=32)
    assert len(table) == 2
    assert table.ce_clean.iloc[0] == table.ce_clean.iloc[1]
    only = scope.evaluate(TEXTS, sae=1, seq_len=32)
    assert len(only) == 1
    assert math.isclose(only.fvu.iloc[0], table.fvu.iloc[1], rel_tol=1e-9)


def test_perfect_sae_recovers_all_loss(gemma3):
    """An SAE whose reconstruction is exact (identity dictionary with both signs) has FVU 0 and recovers 100%."""
    model, tok = gemma3
    d = 64
    cfg = sw.SAEConfig(d_in=d, d_sae=2 * d, architecture="standard", site="resid_post", layer=2)
    eye = torch.eye(d)
    sae = sw.SAE.from_tensors(
        cfg,
        {
            "W_enc": torch.cat([eye, -eye], 1),
            "W_dec": torch.cat([eye, -eye], 0),
            "b_enc": torch.zeros(2 * d),
            "b_dec": torch.zeros(d),
        },
    )
    row = sw.Scope(model, tok, saes=[sae]).evaluate(TEXTS, seq_len=32).iloc[0]
    assert row.fvu == pytest.approx(0.0, abs=1e-6)
    assert row.frac_loss_recovered == pytest.approx(1.0, abs=1e-4)
