"""CircuitsVis interop: `acts.to_circuitsvis()` renders from a file with no network."""

from __future__ import annotations

import json

import pytest

import scopewidgets as sw
from scopewidgets.testing import random_sae, tiny_gemma3


@pytest.fixture(scope="module")
def acts():
    model, tok = tiny_gemma3()
    sae = random_sae(model, "resid_post", 1, 32, threshold=0.5)
    sae.labels[
        int(sw.Scope(model, tok, saes=[sae]).activations("Zebra quilt").top_features(1).feature[0])
    ] = "z<b>"
    return sw.Scope(model, tok, saes=[sae]).activations("Zebra quilt")


def test_circuitsvis_view_holds_the_features(acts) -> None:
    chosen = acts.top_features(3).feature.tolist()
    props = acts.to_circuitsvis(k=3).local_src.rsplit("ColoredTokensMulti", 1)[1]
    labels = [f"#{f}" for f in chosen]
    labels[0] += " z<b>"
    assert f'"labels": {json.dumps(labels)}' in props
    assert f'"tokens": {json.dumps(acts.tokens)}' in props
    with pytest.raises(ValueError, match=r"\[0, 32\)"):
        acts.to_circuitsvis(features=[99])


@pytest.mark.browser
def test_circuitsvis_renders_offline(acts, offline_page, tmp_path) -> None:
    path = tmp_path / "cv.html"
    path.write_text(acts.to_circuitsvis(k=3).local_src, encoding="utf-8")
    page = offline_page.page
    page.goto(path.as_uri())
    page.wait_for_function(
        "document.body.innerText.includes('Zebra') || document.body.innerText.includes('Z')", timeout=20000
    )
    text = page.inner_text("body")
    assert "quilt" in text
    assert offline_page.non_local_requests() == []
    assert offline_page.page_errors == []
