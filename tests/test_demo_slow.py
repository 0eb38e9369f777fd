"""The slow lane: the real Gemma 3 270M, the shipped demo SAE, and `scopewidgets demo` serving a notebook."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import torch

import scopewidgets as sw
from scopewidgets import cli
from scopewidgets.demo import held_out_windows

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def gemma() -> tuple:
    return sw.demo_model()


def test_demo_model_knows_where_the_eiffel_tower_is(gemma: tuple) -> None:
    model, tokenizer = gemma
    ids = tokenizer("The Eiffel Tower is in the city of", return_tensors="pt").input_ids
    assert ids[0, 0] == tokenizer.bos_token_id
    with torch.inference_mode():
        logits = model(input_ids=ids).logits[0, -1]
    assert tokenizer.decode(int(logits.argmax())) == " Paris"


def test_demo_returns_a_scope_with_the_demo_sae(capfd: pytest.CaptureFixture[str]) -> None:
    scope = sw.demo()
    assert "Loading weights" not in capfd.readouterr().err  # no transformers bar on every sw.demo()
    assert isinstance(scope, sw.Scope)
    (sae,) = scope.saes
    assert (sae.cfg.site, sae.cfg.layer, sae.cfg.d_in) == ("resid_post", 6, 640)
    assert sae.reserved_features == (0, 1)  # the massive-activation direction, labelled as such
    assert all("reserved" in sae.label(f) for f in sae.reserved_features)
    acts = scope.activations("The Eiffel Tower is in Paris")
    assert acts.values.shape == (len(acts.tokens), sae.cfg.d_sae)
    assert acts.values[0].abs().sum() == 0  # BOS row
    active = (acts.values[1:] > 0).sum(-1).float()
    assert 4 <= active.mean() <= 256
    # The shipped statistics know text starts: #1288 fires on "The" opening a text (a start feature, 20%
    # of text starts, 0.17% of corpus tokens) and no longer leads; the place-name feature at "Paris" does.
    assert scope.feature_stats().has_starts and acts.start_rows == [1]
    top = acts.top_features(3)
    assert top.top_token.iloc[0].strip() == "Paris" and "The" not in top.top_token.str.strip().tolist()


def test_demo_sae_metrics_match_its_model_card(gemma: tuple) -> None:
    model, tokenizer = gemma
    sae = sw.demo_sae()
    training = sae.cfg.extra["training"]
    card = training["quick_check"]
    windows = held_out_windows(tokenizer, training["eval_windows"])[: training["quick_windows"]]
    row = sw.Scope(model, tokenizer, saes=[sae]).evaluate(windows).iloc[0]
    assert row["tokens"] == card["tokens"]
    assert row["l0"] == pytest.approx(card["l0"], rel=0.01)
    assert row["fvu"] == pytest.approx(card["fvu"], abs=0.005)
    assert row["frac_loss_recovered"] == pytest.approx(card["frac_loss_recovered"], abs=0.01)
    assert row["ce_clean"] == pytest.approx(card["ce_clean"], abs=0.01)


@contextlib.contextmanager
def _no_forward(model: torch.nn.Module):
    """Fails the test if `model` runs a forward pass inside."""
    calls: list[int] = []
    handle = model.register_forward_pre_hook(lambda *_: calls.append(1))
    try:
        yield
    finally:
        handle.remove()
    assert not calls, f"{len(calls)} forward passes ran"


def test_demo_dashboards_open_from_the_shipped_evidence_without_a_pass() -> None:
    scope = sw.demo()
    sae = scope.sae()
    with _no_forward(scope.model):  # neither the model nor a corpus pass runs
        for feature in (2, sae.cfg.d_sae // 2, sae.cfg.d_sae - 1):
            dash = scope.dashboard(feature)
            assert "evidence file" in dash.source and dash.feature == feature
            assert dash.density >= 0 and len(dash.top_logits) == 10
        every = scope.dashboards(None, progress=False)
    assert every.features == list(range(sae.cfg.d_sae)) and "examples.safetensors" in every.rows.source
    stats = scope.feature_stats()  # the ranking's statistics come from the same shipped pass
    assert stats.n_tokens == every.rows.n_tokens
    live = int((stats.density > 0).sum())
    assert live >= 0.95 * sae.cfg.d_sae


def test_demo_ships_its_steering_jacobian_and_labels_read_by_steering() -> None:
    from scopewidgets.core import sites
    from scopewidgets.core.corpus import bos_id
    from scopewidgets.core.hooks import patch
    from scopewidgets.features.logit import context_windows, steering_jacobian

    scope = sw.demo()
    sae = scope.sae()
    with _no_forward(scope.model):
        shipped = steering_jacobian(scope, sae, progress=False)  # found under the model's fingerprint
    assert shipped.shape == (640, 640)
    windows = context_windows(scope.tokenizer)  # three rows again, by autograd, written out
    delta = torch.zeros(640, requires_grad=True)
    keep = (windows != bos_id(scope.tokenizer))[..., None]
    with torch.enable_grad(), patch(scope.model, sae.cfg.site, sae.cfg.layer, lambda h: h + keep * delta):
        mean = sites.text_model(scope.model)(input_ids=windows, use_cache=False).last_hidden_state[:, 1:]
        mean = mean.float().mean((0, 1))
        for row in (0, 321, 639):
            expected = torch.autograd.grad(mean[row], delta, retain_graph=True)[0]
            assert torch.allclose(shipped[row], expected, rtol=1e-3, atol=1e-5 * float(expected.abs().max()))
    # the labels' promoted half reads the feature's effect through the later layers
    fired = {f: set(sae.label(f).split(" → ")[0].split(" · ")) for f in range(sae.cfg.d_sae)}
    dog = next(f for f, words in fired.items() if "animal" in words and words & {"dog", "cat"})
    assert "animal" in sae.label(dog).split(" → ")[1].lower()
    from scopewidgets.widgets import DashboardWidget  # and its dashboard lists what steering promotes

    view = DashboardWidget(scope.dashboards(None, progress=False), feature=dog)
    assert any("animal" in item["token"] for item in view.logits["steer_top"][:3]), view.logits["steer_top"]


def _read_url(process: subprocess.Popen, timeout: float) -> str:
    """The URL the command prints once the server answers (read in a thread: the pipe blocks)."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
    deadline, seen = time.monotonic() + timeout, []
    while time.monotonic() < deadline and process.poll() is None:
        try:
            seen.append(lines.get(timeout=1))
        except queue.Empty:
            continue
        for word in seen[-1].split():
            if word.startswith("http://") and "token=" in word:
                return word
    raise AssertionError(f"no URL printed within {timeout} s; output so far:\n{''.join(seen)}")


def test_scopewidgets_demo_serves_the_quickstart_notebook(tmp_path: Path) -> None:
    port = cli.free_port(18888)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    command = [
        sys.executable,
        "-m",
        "scopewidgets",
        "demo",
        "--no-browser",
        "--port",
        str(port),
        "--dir",
        str(tmp_path),
    ]
    log = tmp_path / "server.log"  # what the user's terminal shows besides the URL
    with log.open("w") as server_log:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=server_log, text=True, env=env)
    try:
        url = _read_url(process, timeout=240)
        assert url.startswith(f"http://127.0.0.1:{port}/lab/tree/{cli.FIRST_TUTORIAL}?token=")
        with urllib.request.urlopen(url, timeout=30) as page:
            assert page.status == 200 and "JupyterLab" in page.read().decode()
        token = url.split("token=")[1]
        api = f"http://127.0.0.1:{port}/api/contents/{cli.FIRST_TUTORIAL}?token={token}"
        with urllib.request.urlopen(api, timeout=30) as reply:
            notebook = json.load(reply)
        assert notebook["type"] == "notebook"
        assert any("sw.demo()" in "".join(cell["source"]) for cell in notebook["content"]["cells"])
        assert (tmp_path / cli.FIRST_TUTORIAL).is_file()
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status", timeout=5)
    # a clean start: no error logged (the repository's package.json once made Node load JupyterLab's
    # CommonJS yarn.js from the .venv inside the repository as an ES module, a wall of minified JavaScript)
    errors = [
        line for line in log.read_text().splitlines() if "[E " in line or "Error" in line or "Fail" in line
    ]
    assert not errors, "\n".join(errors[:5])
