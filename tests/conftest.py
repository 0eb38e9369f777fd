"""Shared fixtures: tiny random Gemma models (built offline from configs) and SAE file writers."""

from __future__ import annotations

import os

import pytest
import torch

from scopewidgets.testing import tiny_gemma2, tiny_gemma3, tiny_gemma3_multimodal

# Rankings of tiny random SAEs compute feature statistics with a pass: a short one keeps tests fast
os.environ.setdefault("SCOPEWIDGETS_STATS_WINDOWS", "8")


@pytest.fixture(scope="session")
def gemma3():
    return tiny_gemma3()


@pytest.fixture(scope="session")
def gemma2():
    return tiny_gemma2()


@pytest.fixture(scope="session")
def gemma3_mm():
    return tiny_gemma3_multimodal()


@pytest.fixture(scope="session", params=["gemma2", "gemma3", "gemma3_mm"])
def any_gemma(request):
    return request.getfixturevalue(request.param)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models gain nothing from threads, and on a shared 2-core machine spinning threads cost 10x.
    Modules opt in with `pytestmark = pytest.mark.usefixtures("one_torch_thread")`."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    """A fresh `SCOPEWIDGETS_CACHE` for one test (dashboard passes written there, not in the user's cache).
    Modules opt in with `pytestmark = pytest.mark.usefixtures("private_cache")`; the slow lane does not,
    so it reuses the converted demo model."""
    monkeypatch.setenv("SCOPEWIDGETS_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"
