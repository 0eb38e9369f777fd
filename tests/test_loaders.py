import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from sae_files import random_weights, write_gemma_scope_1, write_gemma_scope_2, write_saelens

import scopewidgets as sw
from scopewidgets.core import hub as _hub
from scopewidgets.core import sae_io as _sae_io


def _check_weights(sae, weights):
    for name, value in weights.items():
        torch.testing.assert_close(getattr(sae, name), torch.from_numpy(value))


@pytest.mark.parametrize(("suffix", "site"), [("res", "resid_post"), ("mlp", "mlp_out"), ("att", "attn_out")])
def test_gemma_scope_1_npz(tmp_path, suffix, site):
    weights = random_weights(16, 48)
    folder = write_gemma_scope_1(tmp_path, f"gemma-scope-2b-pt-{suffix}", 20, "16k", 71, weights)
    sae = sw.load_sae(folder)
    assert (sae.cfg.site, sae.cfg.layer, sae.cfg.architecture) == (site, 20, "jumprelu")
    assert (sae.cfg.d_in, sae.cfg.d_sae) == (16, 48)
    assert sae.cfg.extra["average_l0"] == 71
    _check_weights(sae, weights)
    # also loadable as (root, sae_id)
    same = sw.load_sae(tmp_path / f"gemma-scope-2b-pt-{suffix}", "layer_20/width_16k/average_l0_71")
    torch.testing.assert_close(same.W_dec, sae.W_dec)


def test_npz_with_pickled_object_is_refused_not_executed(tmp_path):
    folder = tmp_path / "gemma-scope-2b-pt-res/layer_1/width_16k/average_l0_10"
    folder.mkdir(parents=True)
    marker = tmp_path / "ran"
    payload = np.array([_Evil(str(marker))], dtype=object)
    np.savez(folder / "params.npz", W_enc=payload)
    with pytest.raises(ValueError, match="pickled objects are refused"):
        sw.load_sae(folder)
    assert not marker.exists()


class _Evil:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.mark.parametrize("drop", ["W_dec", "threshold", "b_enc"])
def test_missing_key_is_named(tmp_path, drop):
    weights = random_weights(8, 16)
    del weights[drop]
    folder = write_gemma_scope_1(tmp_path, "gemma-scope-2b-pt-res", 3, "16k", 50, weights)
    with pytest.raises(ValueError, match=f"missing key '{drop}'"):
        sw.load_sae(folder)


def test_misshaped_key_is_named(tmp_path):
    weights = random_weights(8, 16)
    weights["b_dec"] = np.zeros(9, dtype=np.float32)
    folder = write_gemma_scope_1(tmp_path, "gemma-scope-2b-pt-res", 3, "16k", 50, weights)
    with pytest.raises(ValueError, match=r"'b_dec' has shape \(9,\), expected \(8,\)"):
        sw.load_sae(folder)


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        sw.load_sae(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="params.npz"):
        sw.load_sae(tmp_path / "empty")
    with pytest.raises(FileNotFoundError):
        sw.load_sae("./not/a/folder")


@pytest.mark.parametrize(
    ("hook", "site", "layer"),
    [
        ("model.layers.13.output", "resid_post", 13),
        ("model.layers.4.self_attn.o_proj.input", "attn_out", 4),
        ("model.layers.7.post_feedforward_layernorm.output", "mlp_out", 7),
    ],
)
def test_gemma_scope_2_safetensors(tmp_path, hook, site, layer):
    weights = random_weights(16, 32)
    folder = write_gemma_scope_2(tmp_path, f"{site}/layer_{layer}_width_16k_l0_medium", weights, hook)
    sae = sw.load_sae(tmp_path, f"{site}/layer_{layer}_width_16k_l0_medium")
    assert (sae.cfg.site, sae.cfg.layer, sae.cfg.architecture, sae.cfg.hook_point) == (
        site,
        layer,
        "jumprelu",
        hook,
    )
    assert sae.cfg.site_out is None
    assert sae.cfg.model_name == "google/gemma-3-1b-pt"
    _check_weights(sae, weights)
    assert folder.exists()


def test_gemma_scope_2_affine_transcoder(tmp_path):
    weights = random_weights(16, 32)
    skip = np.random.default_rng(1).normal(size=(16, 16)).astype(np.float32)
    folder = write_gemma_scope_2(
        tmp_path,
        "transcoder/layer_5_width_16k_l0_big_affine",
        weights,
        "model.layers.5.pre_feedforward_layernorm.output",
        "model.layers.5.post_feedforward_layernorm.output",
        skip=skip,
    )
    sae = sw.load_sae(folder)
    assert (sae.cfg.site, sae.cfg.site_out, sae.cfg.layer) == ("transcoder_in", "transcoder_out", 5)
    x = torch.randn(3, 16)
    torch.testing.assert_close(sae(x), sae.decode(sae.encode(x)) + x @ torch.from_numpy(skip))


@pytest.mark.parametrize("nested", [True, False])
@pytest.mark.parametrize(("architecture", "k"), [("standard", None), ("jumprelu", None), ("topk", 4)])
def test_saelens_formats(tmp_path, nested, architecture, k):
    weights = random_weights(16, 32)
    folder = write_saelens(
        tmp_path,
        "sae",
        weights,
        architecture,
        "blocks.12.hook_resid_post",
        nested=nested,
        apply_b_dec_to_input=architecture == "standard",
        k=k,
    )
    sae = sw.load_sae(folder)
    assert (sae.cfg.site, sae.cfg.layer, sae.cfg.architecture, sae.cfg.k) == (
        "resid_post",
        12,
        architecture,
        k,
    )
    assert sae.cfg.apply_b_dec_to_input == (architecture == "standard")
    assert sae.cfg.extra["neuronpedia_id"] == "gemma-2-2b/12-res-16k"
    x = torch.randn(4, 16)
    pre = (x - torch.from_numpy(weights["b_dec"]) * sae.cfg.apply_b_dec_to_input) @ torch.from_numpy(
        weights["W_enc"]
    ) + torch.from_numpy(weights["b_enc"])
    if architecture == "jumprelu":
        torch.testing.assert_close(sae.encode(x), pre * (pre > torch.from_numpy(weights["threshold"])))
    elif architecture == "standard":
        torch.testing.assert_close(sae.encode(x), torch.relu(pre))


def test_saelens_attn_z_hook(tmp_path):
    folder = write_saelens(tmp_path, "att", random_weights(16, 32), "jumprelu", "blocks.3.attn.hook_z")
    assert (sw.load_sae(folder).cfg.site, sw.load_sae(folder).cfg.layer) == ("attn_out", 3)


def test_local_gs1_copy_without_repo_name_takes_overrides(tmp_path):
    folder = tmp_path / "my_copy"
    folder.mkdir()
    np.savez(folder / "params.npz", **random_weights(8, 16))
    sae = sw.load_sae(folder)
    assert sae.cfg.site is None
    placed = sw.load_sae(folder, site="mlp_out", layer=2)
    assert (placed.cfg.site, placed.cfg.layer) == ("mlp_out", 2)


def test_canonical_picks_l0_closest_to_100():
    paths = [
        "layer_20/width_16k/average_l0_20/params.npz",
        "layer_20/width_16k/average_l0_71/params.npz",
        "layer_20/width_16k/average_l0_139/params.npz",
        "layer_20/width_65k/average_l0_99/params.npz",
        "layer_2/width_16k/average_l0_100/params.npz",
        "README.md",
    ]
    assert (
        _sae_io.resolve_canonical(paths, "layer_20/width_16k/canonical") == "layer_20/width_16k/average_l0_71"
    )
    assert (
        _sae_io.resolve_canonical(paths, "layer_20/width_65k/canonical") == "layer_20/width_65k/average_l0_99"
    )
    with pytest.raises(FileNotFoundError, match="layer_21"):
        _sae_io.resolve_canonical(paths, "layer_21/width_16k/canonical")


def _fake_hub(monkeypatch, root, calls):
    import huggingface_hub

    def download(repo, filename, **_):
        calls.append(filename)
        path = root / repo / filename
        if not path.exists():
            from huggingface_hub.errors import EntryNotFoundError

            raise EntryNotFoundError(f"{filename} not found")
        return str(path)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", download)
    monkeypatch.setattr(
        huggingface_hub,
        "list_repo_files",
        lambda repo, **_: [str(p.relative_to(root / repo)) for p in (root / repo).rglob("*") if p.is_file()],
    )


def test_hub_downloads_only_needed_files_and_resolves_canonical(tmp_path, monkeypatch):
    calls = []
    hub = tmp_path / "hub"
    for l0 in (30, 82, 160):
        write_gemma_scope_1(hub, "google/gemma-scope-2b-pt-res", 6, "16k", l0, random_weights(8, 16, l0))
    _fake_hub(monkeypatch, hub, calls)
    sae = sw.load_sae("google/gemma-scope-2b-pt-res", "layer_6/width_16k/canonical")
    assert sae.cfg.extra["average_l0"] == 82
    assert (sae.cfg.site, sae.cfg.layer) == ("resid_post", 6)
    assert all(call.startswith("layer_6/width_16k/average_l0_82/") for call in calls)
    assert "layer_6/width_16k/average_l0_82/params.npz" in calls
    assert not any("average_l0_30" in c or "average_l0_160" in c for c in calls)


def test_hub_gemma_scope_2(tmp_path, monkeypatch):
    calls = []
    hub = tmp_path / "hub"
    write_gemma_scope_2(
        hub / "google/gemma-scope-2-1b-pt",
        "resid_post/layer_13_width_16k_l0_medium",
        random_weights(8, 16),
        "model.layers.13.output",
    )
    _fake_hub(monkeypatch, hub, calls)
    sae = sw.load_sae("google/gemma-scope-2-1b-pt", "resid_post/layer_13_width_16k_l0_medium")
    assert (sae.cfg.site, sae.cfg.layer) == ("resid_post", 13)
    assert sorted(calls) == [
        "resid_post/layer_13_width_16k_l0_medium/config.json",
        "resid_post/layer_13_width_16k_l0_medium/params.safetensors",
    ]


def test_gated_repo_message(monkeypatch):
    import httpx
    import huggingface_hub
    from huggingface_hub.errors import GatedRepoError

    def download(repo, filename, **_):
        response = httpx.Response(403, request=httpx.Request("GET", f"https://huggingface.co/{repo}"))
        raise GatedRepoError("gated", response=response)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", download)
    with pytest.raises(PermissionError, match=r"gated.*HTTP 403.*hf auth login"):
        sw.load_sae("google/gemma-scope-2-1b-pt", "resid_post/layer_13_width_16k_l0_medium")
    with pytest.raises(ValueError, match="needs sae_id"):
        sw.load_sae("google/gemma-scope-2-1b-pt")


def test_hf_hub_offline_is_respected(tmp_path):
    code = (
        "import scopewidgets as sw\n"
        "try:\n sw.load_sae('google/gemma-scope-2-1b-pt', 'resid_post/layer_13_width_16k_l0_medium')\n"
        "except FileNotFoundError as e:\n print('FNF', e)\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.stdout.startswith("FNF"), out.stderr[-2000:]
    assert "HF_HUB_OFFLINE" in out.stdout


def test_save_and_load_round_trip(tmp_path, gemma3):
    from scopewidgets.testing import random_sae

    sae = random_sae(gemma3[0], "attn_out", 2, d_sae=24)
    back = sw.load_sae(sw.save_sae(sae, tmp_path / "x"))
    assert (back.cfg.site, back.cfg.layer, back.cfg.d_sae) == ("attn_out", 2, 24)
    for name in ("W_enc", "W_dec", "b_enc", "b_dec", "threshold"):
        torch.testing.assert_close(getattr(back, name), getattr(sae, name))
    meta = json.loads((tmp_path / "x/config.json").read_text())
    assert meta["hf_hook_point_in"] == "model.layers.2.self_attn.o_proj.input"
    assert meta["architecture"] == "jump_relu"
    assert _hub.GATED_HINT


def test_labels_round_trip_and_stale_labels_go(tmp_path, gemma3):
    from scopewidgets.testing import random_sae

    sae = random_sae(gemma3[0], "resid_post", 1, d_sae=24)
    sae.labels.update({3: "French <b>words</b>", 20: "numbers"})
    back = sw.load_sae(sw.save_sae(sae, tmp_path / "x"))
    assert back.labels == {3: "French <b>words</b>", 20: "numbers"}
    assert back.label(3) == "French <b>words</b>" and back.label(4) is None
    assert back.reserved_features == ()
    sae.cfg.extra["training"] = {"reserved_direction": True}  # as train_sae records it
    assert sw.load_sae(sw.save_sae(sae, tmp_path / "y")).reserved_features == (0, 1)
    sae.labels.clear()
    assert sw.load_sae(sw.save_sae(sae, tmp_path / "x")).labels == {}  # the old labels.json is gone


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"24": "x"}', r"feature '24' is not an index in \[0, 24\)"),
        ('{"-1": "x"}', r"feature '-1' is not an index"),
        ('{"2": 5}', "must be a string"),
        ('["x"]', "must hold an object"),
        ("{not json", "not valid JSON"),
    ],
)
def test_bad_labels_file_is_named(tmp_path, gemma3, content, message):
    from scopewidgets.testing import random_sae

    folder = sw.save_sae(random_sae(gemma3[0], "resid_post", 1, d_sae=24), tmp_path / "x")
    (folder / "labels.json").write_text(content)
    with pytest.raises(ValueError, match=message):
        sw.load_sae(folder)
