import numpy as np
import pytest
import torch
from sae_files import random_weights

from scopewidgets import SAE, SAEConfig


def _sae(architecture, apply_b_dec=False, k=None, seed=0):
    w = {name: torch.from_numpy(v) for name, v in random_weights(12, 40, seed).items()}
    cfg = SAEConfig(d_in=12, d_sae=40, architecture=architecture, apply_b_dec_to_input=apply_b_dec, k=k)
    return SAE.from_tensors(cfg, w), w


def test_jumprelu_matches_formula_and_threshold_is_strict():
    sae, w = _sae("jumprelu")
    x = torch.randn(5, 7, 12)
    pre = x @ w["W_enc"] + w["b_enc"]
    expected = pre * (pre > w["threshold"])
    torch.testing.assert_close(sae.encode(x), expected)
    torch.testing.assert_close(sae.decode(expected), expected @ w["W_dec"] + w["b_dec"])
    # a pre-activation exactly at the threshold gives 0
    with torch.no_grad():
        sae.threshold.copy_(sae.pre_activations(x[0, 0]))
    assert torch.count_nonzero(sae.encode(x[0, 0])) == 0


@pytest.mark.parametrize("apply_b_dec", [False, True])
def test_standard_relu_matches_formula(apply_b_dec):
    sae, w = _sae("standard", apply_b_dec)
    x = torch.randn(9, 12)
    expected = torch.relu((x - w["b_dec"] * apply_b_dec) @ w["W_enc"] + w["b_enc"])
    torch.testing.assert_close(sae.encode(x), expected)
    torch.testing.assert_close(sae(x), expected @ w["W_dec"] + w["b_dec"])


def test_topk_keeps_k_largest_relu():
    sae, w = _sae("topk", k=5)
    x = torch.randn(6, 12)
    acts = torch.relu(x @ w["W_enc"] + w["b_enc"])
    got = sae.encode(x)
    for row, full in zip(got, acts, strict=True):
        kept = torch.nonzero(row).flatten()
        assert len(kept) <= 5
        assert set(kept.tolist()) <= set(full.topk(5).indices.tolist())
        torch.testing.assert_close(row[kept], full[kept])


def test_wrong_width_and_bad_feature_raise():
    sae, _ = _sae("jumprelu")
    with pytest.raises(ValueError, match="d_in=12"):
        sae.encode(torch.randn(3, 13))
    with pytest.raises(ValueError, match=r"\[0, 40\)"):
        sae.check_feature(40)
    with pytest.raises(ValueError, match=r"\[0, 40\)"):
        sae.check_feature(-1)
    with pytest.raises(ValueError, match="int"):
        sae.check_feature("3")
    assert sae.check_feature(np.int64(3)) == 3


def test_config_validation():
    with pytest.raises(ValueError, match="architecture"):
        SAEConfig(d_in=4, d_sae=8, architecture="gated")
    with pytest.raises(ValueError, match="k in"):
        SAEConfig(d_in=4, d_sae=8, architecture="topk")
    with pytest.raises(ValueError, match="site"):
        SAEConfig(d_in=4, d_sae=8, site="resid_pre")


def test_from_tensors_names_missing_and_misshaped_keys():
    w = {name: torch.from_numpy(v) for name, v in random_weights(12, 40).items()}
    cfg = SAEConfig(d_in=12, d_sae=40, source="x.npz")
    with pytest.raises(ValueError, match="missing key 'threshold'"):
        SAE.from_tensors(cfg, {k: v for k, v in w.items() if k != "threshold"})
    with pytest.raises(ValueError, match=r"'b_dec' has shape \(11,\), expected \(12,\)"):
        SAE.from_tensors(cfg, {**w, "b_dec": torch.zeros(11)})
