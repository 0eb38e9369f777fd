"""Shared fixtures: tiny random Gemma models (built offline from configs) and SAE file writers."""

from __future__ import annotations

import pytest

from scopewidgets.testing import tiny_gemma2, tiny_gemma3, tiny_gemma3_multimodal


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
