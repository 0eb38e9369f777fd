"""`scripts/generate_modern_text.py`: sampled windows and the activations read while sampling them."""

from __future__ import annotations

import pytest
import torch
from repo_module import load_repo_module

from scopewidgets.core.hooks import run_truncated
from scopewidgets.testing import tiny_gemma2, tiny_gemma3


def load_script():
    return load_repo_module("scripts/generate_modern_text.py")


def test_openings_keep_their_newlines_and_none_is_empty():
    openings = load_script().OPENINGS
    assert len(openings) >= 100 and all(o.strip() for o in openings)
    assert "Hi Sarah,\n\nThanks for your email about" in openings
    assert not any("\\n" in o for o in openings)
    topics = load_script().OPENING_SETS["topics"]
    assert len(topics) >= 50 and all(o.strip() for o in topics) and not set(topics) & set(openings)
    assert "Ingredients:\n" in topics and not any("\\n" in o for o in topics)


def test_sampled_windows_and_their_activations_equal_one_forward_over_the_result():
    script = load_script()
    for build in (tiny_gemma3, tiny_gemma2):
        model, _ = build()
        unembed_all = model.get_output_embeddings().weight.detach()
        vocab = torch.arange(3, unembed_all.shape[0], 2)  # only odd ids from 3 may be sampled
        opening = torch.tensor([[2, 10, 11], [2, 12, 13]])
        gen = torch.Generator().manual_seed(0)
        ids, resid = script.sample_windows(model, opening, 16, 1, unembed_all[vocab], vocab, 0.9, 8, gen)
        assert ids.shape == (2, 16) and torch.equal(ids[:, :3], opening)
        assert bool(torch.isin(ids[:, 3:], vocab).all())
        full = run_truncated(model, ids, [("resid_post", 1)])["resid_post", 1]
        assert resid.shape == full.shape
        torch.testing.assert_close(resid, full, rtol=1e-4, atol=1e-4)
        again = script.sample_windows(
            model, opening, 16, 1, unembed_all[vocab], vocab, 0.9, 8, torch.Generator().manual_seed(0)
        )
        assert torch.equal(again[0], ids)  # a resumed batch draws the same tokens


def test_model_written_passages_drop_bos_and_the_opening_and_join_windows(tmp_path):
    import json

    import numpy as np

    from scopewidgets.testing import tiny_tokenizer

    script = load_repo_module("scripts/model_written_passages.py")
    tok = tiny_tokenizer()
    openings = script.opening_ids(tok)
    assert [len(ids) for _, ids in openings] == sorted((len(ids) for _, ids in openings), reverse=True)
    name, first = next((n, ids) for n, ids in openings if n == "topics")
    written = tok("the cake was warm", add_special_tokens=False)["input_ids"]
    windows = np.array([[tok.bos_token_id, *first, *written]] * 3, dtype=np.int32)
    folder = tmp_path / "topics_seed7"
    folder.mkdir()
    np.save(folder / "tokens.npy", np.concatenate([windows, windows]))  # a cache holds spare rows
    (folder / "progress.json").write_text(json.dumps({"n_windows": 6, "done": 3}))
    assert script.written_part(windows[0].tolist(), openings) == (name, written)
    records = script.passages([folder], tok, size=30)
    assert [r["text"] for r in records] == ["the cake was warm\n\nthe cake was warm", "the cake was warm"]
    assert [r["index"] for r in records] == [0, 1] and records[0]["title"] == "topics openings, topics_seed7"
    with pytest.raises(ValueError, match="none of the openings"):
        script.written_part([tok.bos_token_id, *written], openings)
