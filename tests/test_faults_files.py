"""Damaged, inconsistent and ambiguous SAE files: each refused with an error naming the file and what is wrong
(files built exactly as the real formats lay them out, then damaged one way)."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from sae_files import random_weights, write_gemma_scope_1, write_gemma_scope_2, write_saelens
from safetensors.torch import load_file, save_file

import scopewidgets as sw

D_IN, D_SAE = 8, 16
HOOK = "model.layers.3.output"


def _gs2(tmp_path, **config):
    return write_gemma_scope_2(
        tmp_path, "resid_post/layer_3_width_16_l0_small", random_weights(D_IN, D_SAE), HOOK, **config
    )


def _saelens(tmp_path, weights=None):
    return write_saelens(
        tmp_path, "sl", weights or random_weights(D_IN, D_SAE), "jumprelu", "blocks.3.hook_resid_post"
    )


def _gs1(tmp_path, weights=None):
    return write_gemma_scope_1(
        tmp_path, "gemma-scope-2b-pt-res", 3, "16k", 40, weights or random_weights(D_IN, D_SAE)
    )


@pytest.mark.parametrize(
    ("writer", "file", "key"),
    [
        ("gs1", "params.npz", "W_dec"),
        ("gs2", "params.safetensors", "w_dec"),
        ("saelens", "sae_weights.safetensors", "W_dec"),
    ],
)
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_non_finite_weight_is_refused_naming_file_and_tensor(tmp_path, writer, file, key, bad):
    weights = random_weights(D_IN, D_SAE)
    weights["W_dec"][3, 1] = bad
    folder = {
        "gs1": lambda: _gs1(tmp_path, weights),
        "gs2": lambda: write_gemma_scope_2(tmp_path, "sae", weights, HOOK),
        "saelens": lambda: _saelens(tmp_path, weights),
    }[writer]()
    with pytest.raises(
        ValueError, match=rf"{file}: tensor '{key}' holds 1 NaN/inf value\(s\) of {D_SAE * D_IN}"
    ):
        sw.load_sae(folder)


def test_a_gemma_scope_2_width_disagreeing_with_the_weights_is_refused(tmp_path):
    folder = _gs2(tmp_path, width=32)
    with pytest.raises(
        ValueError, match=r"config.json: width 32 disagrees with params.safetensors.*16 features"
    ):
        sw.load_sae(folder)


@pytest.mark.parametrize(("width", "loads"), [(16, True), ("16", True), ("16k", False), ("unknown", True)])
def test_gemma_scope_2_widths_are_read_as_counts(tmp_path, width, loads):
    folder = _gs2(tmp_path, width=width)
    if loads:
        assert sw.load_sae(folder).cfg.d_sae == D_SAE
    else:
        with pytest.raises(ValueError, match="disagrees"):
            sw.load_sae(folder)


def test_a_folder_with_two_formats_is_refused_naming_both(tmp_path):
    folder = _gs2(tmp_path)
    np.savez(folder / "params.npz", **random_weights(D_IN, D_SAE))
    with pytest.raises(ValueError, match=r"more than one SAE: params.safetensors \+ config.json.*params.npz"):
        sw.load_sae(folder)


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _absurd_header(path):
    data = path.read_bytes()
    path.write_bytes(struct.pack("<Q", 2**62) + data[8:])


DAMAGE = [
    ("gs2", "params.safetensors", _truncate, r"params.safetensors: damaged or not a safetensors file"),
    ("gs2", "params.safetensors", _absurd_header, r"params.safetensors: damaged or not a safetensors file"),
    ("gs2", "params.safetensors", lambda p: p.write_bytes(b""), r"params.safetensors: damaged"),
    ("gs2", "config.json", lambda p: p.write_text("{not json"), r"config.json is not valid JSON"),
    ("gs2", "config.json", lambda p: p.write_text("[1, 2]"), r"config.json must hold a JSON object.*list"),
    ("gs2", "config.json", lambda p: p.write_bytes(b"\xff\xfe{}"), r"config.json is not valid JSON"),
    ("saelens", "cfg.json", lambda p: p.write_text("7"), r"cfg.json must hold a JSON object.*int"),
    ("saelens", "sae_weights.safetensors", _truncate, r"sae_weights.safetensors: damaged"),
    ("gs1", "params.npz", _truncate, r"params.npz: not a plain numeric .npz"),
]


@pytest.mark.parametrize(
    ("writer", "file", "damage", "message"), DAMAGE, ids=[f"{d[1]}-{i}" for i, d in enumerate(DAMAGE)]
)
def test_a_damaged_file_is_named_with_what_is_wrong(tmp_path, writer, file, damage, message):
    folder = {"gs1": _gs1, "gs2": _gs2, "saelens": _saelens}[writer](tmp_path)
    damage(folder / file)
    with pytest.raises(ValueError, match=message):
        sw.load_sae(folder)


@pytest.mark.parametrize("drop", ["d_in", "d_sae"])
def test_a_saelens_config_without_its_sizes_is_refused(tmp_path, drop):
    folder = _saelens(tmp_path)
    cfg = json.loads((folder / "cfg.json").read_text())
    del cfg[drop]
    (folder / "cfg.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match=rf"cfg.json: {drop} must be ints"):
        sw.load_sae(folder)


@pytest.mark.parametrize(
    ("writer", "file", "key"),
    [
        ("gs1", "params.npz", "W_enc"),
        ("gs2", "params.safetensors", "w_enc"),
        ("saelens", "sae_weights.safetensors", "W_enc"),
    ],
)
def test_a_one_dimensional_encoder_is_refused(tmp_path, writer, file, key):
    folder = {"gs1": _gs1, "gs2": _gs2, "saelens": _saelens}[writer](tmp_path)
    tensors = (
        {k: v.clone() for k, v in load_file(folder / file).items()} if file.endswith("safetensors") else None
    )
    if tensors is None:
        weights = dict(np.load(folder / file))
        weights[key] = weights[key].reshape(-1)
        np.savez(folder / file, **weights)
    else:
        tensors[key] = tensors[key].reshape(-1)
        save_file(tensors, str(folder / file))
    with pytest.raises(ValueError, match=rf"{file}: '{key}' has shape \({D_IN * D_SAE},\); expected 2-D"):
        sw.load_sae(folder)


def test_a_config_value_of_the_wrong_kind_names_the_folder(tmp_path):
    folder = _gs2(tmp_path, k="many", architecture="topk")
    with pytest.raises(ValueError, match=str(folder)):
        sw.load_sae(folder)


def test_the_three_formats_still_load(tmp_path):
    assert sw.load_sae(_gs1(tmp_path / "a")).cfg.d_sae == D_SAE
    assert sw.load_sae(_gs2(tmp_path / "b")).cfg.d_sae == D_SAE
    assert sw.load_sae(_saelens(tmp_path / "c")).cfg.d_in == D_IN
