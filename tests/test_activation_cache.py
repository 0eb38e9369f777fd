"""`scripts/activation_cache.py`: the activation cache the demo SAE trains on, written, resumed and grown."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from repo_module import load_repo_module


@pytest.fixture(scope="module")
def module():
    return load_repo_module("scripts/activation_cache.py")


def _batch(first: int, rows: int, seq_len: int = 5, d_model: int = 3):
    ids = torch.arange(first, first + rows)[:, None].expand(rows, seq_len).int()
    resid = torch.arange(rows * (seq_len - 1) * d_model).float().view(rows, seq_len - 1, d_model) + first
    return ids, resid


def test_a_stopped_cache_resumes_grows_and_counts_clipped_values(module, tmp_path: Path) -> None:
    cache = module.ActivationCache(tmp_path, 4, 5, 3)
    ids, resid = _batch(0, 2)
    resid[0, 0, 0] = 1e6  # beyond fp16: clamped and counted
    cache.append(ids, resid)
    cache.save_progress()
    del cache  # stopped here
    resumed = module.ActivationCache(tmp_path, 4, 5, 3)
    assert resumed.done == 2 and resumed.state["clipped"] == 1
    resumed.append(*_batch(2, 2))
    meta = resumed.finish(layer=6, corpus="test")
    assert meta["clipped_values"] == 1 and meta["n_tokens"] == 16
    assert json.loads((tmp_path / "meta.json").read_text()) == meta
    acts, tokens = np.load(tmp_path / "acts.npy"), np.load(tmp_path / "tokens.npy")
    assert acts[0, 0] == 65504.0 and tokens[:, 0].tolist() == [0, 1, 2, 3]
    np.testing.assert_array_equal(acts[8:], _batch(2, 2)[1].reshape(-1, 3).numpy().astype(np.float16))
    with pytest.raises(SystemExit, match="holds a cache of 4 windows, not 6"):
        module.ActivationCache(tmp_path, 6, 5, 3)
    grown = module.ActivationCache(tmp_path, 6, 5, 3, grow=True)
    assert grown.done == 4 and np.array_equal(np.asarray(grown.acts[:16]), acts)
    assert np.array_equal(np.asarray(grown.tokens[:4]), tokens)
