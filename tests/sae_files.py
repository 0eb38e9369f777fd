"""Write SAE files exactly as each real format lays them out (REFERENCE.md), for loader tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file


def random_weights(d_in: int, d_sae: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "W_enc": rng.normal(size=(d_in, d_sae)).astype(np.float32),
        "W_dec": rng.normal(size=(d_sae, d_in)).astype(np.float32),
        "b_enc": rng.normal(size=d_sae).astype(np.float32) * 0.1,
        "b_dec": rng.normal(size=d_in).astype(np.float32) * 0.1,
        "threshold": np.abs(rng.normal(size=d_sae)).astype(np.float32),
    }


def write_gemma_scope_1(root: Path, repo: str, layer: int, width: str, l0: int, weights: dict) -> Path:
    """`{repo}/layer_{L}/width_{W}/average_l0_{N}/params.npz` with fp32 W_enc, W_dec, b_enc, b_dec, threshold."""
    folder = root / repo / f"layer_{layer}" / f"width_{width}" / f"average_l0_{l0}"
    folder.mkdir(parents=True)
    np.savez(folder / "params.npz", **weights)
    return folder


def write_gemma_scope_2(
    root: Path,
    sae_id: str,
    weights: dict,
    hook_in: str,
    hook_out: str | None = None,
    skip: np.ndarray | None = None,
    **config,
) -> Path:
    """`{sae_id}/params.safetensors` (lowercase keys) + `config.json` with hf_hook_point_in/out."""
    folder = root / sae_id
    folder.mkdir(parents=True)
    tensors = {k.lower(): torch.from_numpy(v) for k, v in weights.items()}
    if skip is not None:
        tensors["affine_skip_connection"] = torch.from_numpy(skip)
    save_file(tensors, str(folder / "params.safetensors"))
    meta = {
        "hf_hook_point_in": hook_in,
        "hf_hook_point_out": hook_out or hook_in,
        "model_name": "google/gemma-3-1b-pt",
        "architecture": "jump_relu",
        "width": weights["W_enc"].shape[1],
        "l0": 40,
        "affine_connection": skip is not None,
        "type": "transcoder" if hook_out else "sae",
        **config,
    }
    (folder / "config.json").write_text(json.dumps(meta))
    return folder


def write_saelens(
    root: Path,
    name: str,
    weights: dict,
    architecture: str,
    hook: str,
    *,
    nested: bool = True,
    apply_b_dec_to_input: bool = False,
    k: int | None = None,
) -> Path:
    """`cfg.json` + `sae_weights.safetensors` (+ `sparsity.safetensors`), new (metadata) or old (top-level) style."""
    folder = root / name
    folder.mkdir(parents=True)
    tensors = {
        k_: torch.from_numpy(v)
        for k_, v in weights.items()
        if architecture == "jumprelu" or k_ != "threshold"
    }
    save_file(tensors, str(folder / "sae_weights.safetensors"))
    save_file({"sparsity": torch.zeros(weights["W_enc"].shape[1])}, str(folder / "sparsity.safetensors"))
    d_in, d_sae = weights["W_enc"].shape
    cfg = {
        "d_in": d_in,
        "d_sae": d_sae,
        "dtype": "float32",
        "device": "cpu",
        "architecture": architecture,
        "apply_b_dec_to_input": apply_b_dec_to_input,
        "normalize_activations": "none",
    }
    if k is not None:
        cfg["k"] = k
    info = {
        "model_name": "gemma-2-2b",
        "hook_name": hook,
        "hf_hook_name": None,
        "prepend_bos": True,
        "context_size": 1024,
        "neuronpedia_id": "gemma-2-2b/12-res-16k",
    }
    if nested:
        cfg["metadata"] = info
    else:
        cfg.update(info)
    (folder / "cfg.json").write_text(json.dumps(cfg))
    return folder
