"""Fixtures for widget tests: a tiny random Gemma 3 with a random SAE (built offline)."""

from __future__ import annotations

import pytest

import scopewidgets as sw
from scopewidgets.testing import random_sae, tiny_gemma3


@pytest.fixture(scope="session")
def scope() -> sw.Scope:
    model, tokenizer = tiny_gemma3()
    sae = random_sae(model, "resid_post", 1, d_sae=64, threshold=0.5)
    sae.labels = {3: "third <b>feature</b>", 10: "tenth"}
    return sw.Scope(model, tokenizer, saes=[sae])
