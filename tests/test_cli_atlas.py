"""`scopewidgets atlas`: the corpus named on the command line is read, the pass runs and the atlas (and
with --save, the saved pass) is written, with progress bars."""

from __future__ import annotations

import pytest
import torch

import scopewidgets as sw
from scopewidgets import _cli_atlas, cli
from scopewidgets.dashboards import DashboardSet
from scopewidgets.testing import random_sae, tiny_gemma3

pytestmark = pytest.mark.usefixtures("private_cache")


def test_atlas_command_writes_the_atlas_and_the_saved_pass(tmp_path, monkeypatch, capsys):
    model, tokenizer = tiny_gemma3()
    scope = sw.Scope(model, tokenizer, saes=[random_sae(model, "resid_post", 1, d_sae=20, threshold=0.3)])
    monkeypatch.setattr(_cli_atlas, "_scope", lambda args: scope)
    corpus = tmp_path / "texts.txt"
    corpus.write_text("The cat sat on the mat.\n\nThe dog sat on the log.\n\n" * 4)
    out, saved = tmp_path / "atlas", tmp_path / "dashes.safetensors"
    argv = ["atlas", "--sae", "demo", "--corpus", str(corpus), "--out", str(out), "--seq-len", "8"]
    assert cli.main([*argv, "--features", "12", "--save", str(saved)]) == 0
    assert (out / "index.html").is_file() and (out / "data" / "features" / "0.js").is_file()
    assert "window.SW_ATLAS_INDEX" in (out / "data" / "index.js").read_text()
    assert DashboardSet.load(saved, scope).features == list(range(12))
    captured = capsys.readouterr()
    assert "Atlas of 12 features" in captured.out and "Atlas" in captured.err  # the progress bar


def test_corpus_arguments(tmp_path):
    (tmp_path / "a.txt").write_text("one\n\ntwo")
    (tmp_path / "b.jsonl").write_text('{"text": "three"}\n{"text": "four"}\n')
    torch.save(torch.ones(2, 3, dtype=torch.long), tmp_path / "t.pt")
    assert _cli_atlas.read_corpus(str(tmp_path / "a.txt")) == ["one", "two"]
    assert _cli_atlas.read_corpus(str(tmp_path / "b.jsonl")) == ["three", "four"]
    assert _cli_atlas.read_corpus(str(tmp_path)) == ["one", "two"]
    assert _cli_atlas.read_corpus(str(tmp_path / "t.pt")).shape == (2, 3)
    with pytest.raises(FileNotFoundError, match="no such file"):
        _cli_atlas.read_corpus(str(tmp_path / "missing.txt"))
