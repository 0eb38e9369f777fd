import pytest
import torch

from scopewidgets.core import sites


def test_text_layers_found_in_every_model_class(gemma2, gemma3, gemma3_mm):
    assert sites.decoder_layers(gemma2[0]) is gemma2[0].model.layers
    assert sites.decoder_layers(gemma3[0]) is gemma3[0].model.layers
    assert sites.decoder_layers(gemma3_mm[0]) is gemma3_mm[0].model.language_model.layers
    for model, _ in (gemma2, gemma3, gemma3_mm):
        assert sites.n_layers(model) == 4
        assert sites.d_model(model) == 64
        assert sites.vocab_size(model) == 260


@pytest.mark.parametrize(
    ("site", "path", "side"),
    [
        ("resid_post", "", "output"),
        ("mlp_out", "post_feedforward_layernorm", "output"),
        ("attn_out", "self_attn.o_proj", "input"),
        ("transcoder_in", "pre_feedforward_layernorm", "output"),
        ("transcoder_out", "post_feedforward_layernorm", "output"),
    ],
)
def test_resolve_maps_site_to_real_module(any_gemma, site, path, side):
    model, _ = any_gemma
    layer = sites.decoder_layers(model)[2]
    point = sites.resolve(model, site, 2)
    assert point.module is (layer.get_submodule(path) if path else layer)
    assert point.side == side


def test_site_width_attn_out_is_heads_times_head_dim(gemma3):
    model, _ = gemma3
    cfg = model.config
    assert sites.site_width(model, "attn_out") == cfg.num_attention_heads * cfg.head_dim


@pytest.mark.parametrize("layer", [-1, 4, 99, 1.5, True])
def test_bad_layer_names_allowed_range(gemma3, layer):
    with pytest.raises(ValueError, match=r"0\.\.3"):
        sites.resolve(gemma3[0], "resid_post", layer)


def test_unknown_site_lists_allowed(gemma3):
    with pytest.raises(ValueError, match="resid_post, mlp_out, attn_out"):
        sites.resolve(gemma3[0], "resid_pre", 1)


@pytest.mark.parametrize(
    ("hook", "expected"),
    [
        ("model.layers.13.output", ("resid_post", 13)),
        ("model.layers.7.self_attn.o_proj.input", ("attn_out", 7)),
        ("model.layers.5.post_feedforward_layernorm.output", ("mlp_out", 5)),
        ("model.layers.5.pre_feedforward_layernorm.output", ("transcoder_in", 5)),
        ("model.language_model.layers.2.output", ("resid_post", 2)),
        ("model.layers.4", ("resid_post", 4)),
    ],
)
def test_parse_gemma_scope_2_hook_points(hook, expected):
    assert sites.parse_hf_hook_point(hook) == expected
    assert sites.parse_hook(hook) == expected


@pytest.mark.parametrize(
    ("hook", "expected"),
    [
        ("blocks.13.hook_resid_post", ("resid_post", 13)),
        ("blocks.3.hook_mlp_out", ("mlp_out", 3)),
        ("blocks.20.attn.hook_z", ("attn_out", 20)),
        ("blocks.6.hook_resid_pre", ("resid_post", 5)),
        ("blocks.6.ln2.hook_normalized", ("transcoder_in", 6)),
    ],
)
def test_parse_transformerlens_hook_names(hook, expected):
    assert sites.parse_tl_hook_name(hook) == expected
    assert sites.parse_hook(hook) == expected


@pytest.mark.parametrize(
    "hook",
    [
        "blocks.0.hook_resid_pre",
        "blocks.3.hook_attn_scores",
        "model.layers.x.output",
        "model.layers.3.mlp.down_proj.output",
        "embed",
    ],
)
def test_unsupported_hooks_raise(hook):
    with pytest.raises(ValueError, match="Unsupported"):
        sites.parse_hook(hook)


def test_hook_point_round_trip():
    for site in sites.SITES:
        parsed = sites.parse_hf_hook_point(sites.hf_hook_point(site, 9))
        assert parsed[1] == 9
        assert parsed[0] == ("mlp_out" if site == "transcoder_out" else site)


def test_final_norm_gain_is_one_plus_weight(gemma3):
    model, _ = gemma3
    norm = sites.final_norm(model)
    x = torch.randn(3, 64)
    normed = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + norm.eps)
    torch.testing.assert_close(norm(x), normed * sites.final_norm_gain(model))
