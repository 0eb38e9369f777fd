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


def test_several_mix_caches_read_as_one_in_order(module, tmp_path: Path) -> None:
    train = load_repo_module("scripts/train_demo_sae.py")
    for name, first, rows in (("a", 0, 2), ("b", 10, 3)):
        cache = module.ActivationCache(tmp_path / name, 4, 5, 3)
        cache.append(*_batch(first, rows))  # a: 2 of 4 windows filled, b: 3
        cache.save_progress()
        (tmp_path / name / "meta.json").write_text(json.dumps({"corpus": name, "seconds": rows}))
    acts, n, meta = train.mixed_caches([tmp_path / "a", tmp_path / "b"])
    expected = np.concatenate([_batch(0, 2)[1].reshape(-1, 3), _batch(10, 3)[1].reshape(-1, 3)])
    assert n == 20 and np.array_equal(acts, expected.astype(np.float16))  # unfilled rows left out
    assert meta["corpus"] == "a; then b" and meta["seconds"] == 5
    alone, n_alone, _ = train.mixed_caches([tmp_path / "b"])
    assert n_alone == 12 and alone.shape[0] == 16  # one cache: its memmap as is


def test_model_card_lists_every_stage_of_a_chained_record() -> None:
    card = load_repo_module("scripts/model_card.py")
    stage2 = {"first_stage": {"tokens": 4_000_000, "lr": 3e-4}, "continued_tokens": 2_000_000, "lr": 9e-5,
              "replayed_tokens": 500_000, "val_rows": 100, "mix": {"share": 0.65, "unique_tokens": 400_000,
              "corpus": "text sampled from Gemma 3 270M after 110 modern openings"}}  # fmt: skip
    stage3 = {"previous": stage2, "first_stage": {"tokens": 6_000_000, "lr": 9e-5}, "continued_tokens": 1_000_000,
              "lr": 8e-5, "replayed_tokens": 3_000_000, "val_rows": 100, "mix": {"share": 0.5,
              "unique_tokens": 700_000, "corpus": "modern openings; then text after 56 topics openings"}}  # fmt: skip
    stages, data, lines = card.later_stages(stage3)
    assert "4,000,000 in a first run" in stages and "6,000,000" not in stages  # the nested first stage
    assert "stage 2: 2,000,000 more with 65%" in stages and "stage 3: 1,000,000 more with 50%" in stages
    assert "Stage 3: `modern openings; then" in data
    assert "--openings topics --seed 1 --tokens 300000" in lines
    assert lines.count("train_demo_sae.py --continue-from") == 2
    stages, data, lines = card.later_stages(stage2)  # taken on once: the same reading, one later stage
    assert "4,000,000 in a first run" in stages and "stage 2: 2,000,000 more with 65%" in stages
    assert "stage 3" not in stages and "everyday subjects" not in data and "--openings topics" not in lines
    assert lines.count("train_demo_sae.py --continue-from") == 1
