"""The real-shapes lane: random-weight models with the exact configs of Gemma 2 2B and Gemma 3 270M / 1B (two
layers; widths, heads, head_dim, vocabulary and norms real), SAE files in every Gemma Scope family written as
the real formats lay them out, and each run once through every public call. Tiny models have
heads x head_dim == hidden; these do not (2B: 8 x 256 = 2048 vs 2304), which is where attn_out crashes hid."""

from __future__ import annotations

import gc

import numpy as np
import pytest
import torch
from sae_files import write_gemma_scope_1, write_gemma_scope_2

import scopewidgets as sw
from scopewidgets.core.sites import site_width
from scopewidgets.features.logit import context_windows, steering_effects
from scopewidgets.testing import real_shape_gemma

pytestmark = [pytest.mark.slow, pytest.mark.shapes, pytest.mark.usefixtures("private_cache")]
LAYER, D_SAE = 1, 48
TEXT = "Paris is big"  # byte-level tokens: short texts keep the 256k-wide unembedding cheap on a CPU
CORPUS = ["The tower is tall", "A river runs by"]
GS2_HOOKS = {
    "resid_post": ("model.layers.{L}.output", None),
    "mlp_out": ("model.layers.{L}.post_feedforward_layernorm.output", None),
    "attn_out": ("model.layers.{L}.self_attn.o_proj.input", None),
    "transcoder": (
        "model.layers.{L}.pre_feedforward_layernorm.output",
        "model.layers.{L}.post_feedforward_layernorm.output",
    ),
}
GS1_SITES = {"res": "resid_post", "mlp": "mlp_out", "att": "attn_out"}
CASES = [("gemma-2-2b", f"gemma-scope-1/{family}") for family in GS1_SITES] + [
    (model, f"gemma-scope-2/{site}") for model in ("gemma-3-270m", "gemma-3-1b") for site in GS2_HOOKS
]


@pytest.fixture(scope="module")
def model_name(request):
    return request.param


@pytest.fixture(scope="module")
def model(model_name):
    gc.collect()  # the previous model's few GB go before the next is built
    built = real_shape_gemma(model_name, layers=2)
    yield built
    del built
    gc.collect()


def _weights(d_in: int, d_out: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    w_dec = rng.normal(size=(D_SAE, d_out)).astype(np.float32)
    w_dec /= np.linalg.norm(w_dec, axis=1, keepdims=True)
    w_enc = rng.normal(size=(d_in, D_SAE)).astype(np.float32) / np.sqrt(d_in)
    return {
        "W_enc": w_enc,
        "W_dec": w_dec,
        "b_enc": np.zeros(D_SAE, np.float32),
        "b_dec": np.zeros(d_out, np.float32),
        "threshold": np.full(D_SAE, 1e-3, np.float32),
    }


def _load(tmp_path, model, family: str) -> sw.SAE:
    kind, name = family.split("/")
    if kind == "gemma-scope-1":
        width = site_width(model, GS1_SITES[name])
        repo = f"gemma-scope-2b-pt-{name}"
        folder = write_gemma_scope_1(tmp_path, repo, LAYER, "16k", 40, _weights(width, width, 1))
        sae = sw.load_sae(folder)
        assert sae.cfg.site == GS1_SITES[name]
        return sae
    hook_in, hook_out = (h.format(L=LAYER) if h else None for h in GS2_HOOKS[name])
    site = {"transcoder": "transcoder_in"}.get(name, name)
    width = site_width(model, site)
    skip = np.zeros((width, width), np.float32) if name == "transcoder" else None
    sae_id = f"{name}/layer_{LAYER}_width_16k_l0_small"
    folder = write_gemma_scope_2(tmp_path, sae_id, _weights(width, width, 2), hook_in, hook_out, skip)
    return sw.load_sae(folder)


@pytest.mark.parametrize(("model_name", "family"), CASES, indirect=["model_name"])
def test_every_public_call_runs_on_real_shapes(tmp_path, model, family):
    sae = _load(tmp_path, model[0], family)
    scope = sw.Scope(*model, saes=[sae])
    transcoder = sae.cfg.site_out not in (None, sae.cfg.site)
    failures = {}

    def check(name, call):
        try:
            call()
        except Exception as err:  # collected, so one failure does not hide the others
            failures[name] = f"{type(err).__name__}: {err}"

    def dashboards():
        dashes = scope.dashboards(None, corpus=CORPUS, seq_len=8, n_examples=3, progress=False)
        feature = int(dashes.features[0])
        assert len(dashes[feature].top_logits) > 0 and len(dashes[feature].similar) > 0
        assert dashes[feature].widget() is not None

    def steer():
        if transcoder:
            with pytest.raises(ValueError, match="transcoder"):
                scope.steer(TEXT, {3: 2.0}, max_new_tokens=2)
            return
        out = scope.steer(TEXT, {3: 2.0}, max_new_tokens=2)
        assert len(out.default_tokens) == len(out.steered_tokens) == 2

    def steering():  # what logit search's default effect="steer" runs, on two short windows
        effects = steering_effects(scope, sae, [70, 71], context_windows(scope.tokenizer, 2, 8), joint=True)
        assert effects.shape == (D_SAE, 3) and bool(torch.isfinite(effects).all())

    def panel():
        if transcoder:
            with pytest.raises(ValueError, match="transcoder"):
                scope.steering_panel(TEXT, features=[3, 4])
            return
        assert scope.steering_panel(TEXT, features=[3, 4], max_new_tokens=2).features == [3, 4]

    acts = scope.activations(TEXT)
    assert acts.values.shape == (len(acts.tokens), D_SAE) and bool(torch.isfinite(acts.values).all())
    check("dashboards", dashboards)
    check("search text", lambda: scope.search(TEXT, k=5).to_dataframe())
    check("search logit", lambda: scope.search(logit=70, k=5, effect="direct").to_dataframe())
    check("steering effects", steering)
    check("steer", steer)
    check("steering_panel", panel)
    check("ablate", lambda: scope.ablate(TEXT, [3, 4]).table)
    check("attribute", lambda: scope.attribute(TEXT, 70, k=5, check=2).table)
    check("compare", lambda: scope.compare(TEXT, "Rome is old", k=5).table)
    check("evaluate", lambda: scope.evaluate(CORPUS[:1], seq_len=8, batch_size=1))
    check("save_html", lambda: acts.save_html(tmp_path / "acts.html"))
    assert not failures, failures
    assert "<html" in (tmp_path / "acts.html").read_text().lower()
