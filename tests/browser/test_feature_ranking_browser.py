"""The token view's side list in a real browser (exported page, file://, no network): every feature shows
its density, no reserved feature is listed or colours a token, and the "show reserved" toggle brings them."""

from __future__ import annotations

import pytest
import torch
from sw_browser import Recorder

import scopewidgets as sw
from scopewidgets.features import FeatureStats, register_feature_stats
from scopewidgets.testing import random_sae, tiny_gemma3

SIDE = "[data-testid=feature-list] .sw-feat"


def _view():
    model, tok = tiny_gemma3()
    sae = random_sae(model, "resid_post", 1, 32, threshold=0.3)
    sae.cfg.extra["training"] = {"reserved_direction": True}  # features 0 and 1 are reserved...
    with torch.no_grad():
        sae.b_enc[:2] = 50.0  # ...and, as in the demo SAE, the strongest on every token
    density = torch.linspace(0.0005, 0.9, 32)
    register_feature_stats(sae, FeatureStats(density, torch.full((32,), 3.0), torch.ones(32), 10_000, "test"))
    scope = sw.Scope(model, tok, saes=[sae])
    return scope.activations("The cat sat on the mat.").widget(n_features=12), density


@pytest.mark.browser
def test_side_list_shows_density_and_no_reserved_feature(offline_page: Recorder, tmp_path) -> None:
    view, density = _view()
    page = offline_page.page
    page.goto(view.save_html(tmp_path / "ranked.html").as_uri())
    page.wait_for_selector(SIDE)
    rows = page.locator(SIDE)
    features = [int(rows.nth(i).get_attribute("data-feature")) for i in range(rows.count())]
    shown = page.locator(f"{SIDE} [data-testid=density]").all_text_contents()
    assert features == [item["feature"] for item in view.top_features] and len(features) == 12
    assert not {0, 1} & set(features)
    assert len(shown) == len(features) and all(text.endswith("%") for text in shown), shown
    percents = [float(text.removesuffix("%").replace(",", "")) for text in shown]
    assert percents == pytest.approx([100 * float(density[f]) for f in features], rel=0.01)
    status = page.locator("[data-testid=status]").text_content()
    assert "reserved #0 #1 left out" in status, status

    page.click("[data-testid=include-reserved]")  # offline, the page holds Python's answer for the toggle
    page.wait_for_function(
        "document.querySelector(\"[data-testid=feature-list] [data-feature='0']\") !== null"
    )
    assert "left out" not in page.locator("[data-testid=status]").text_content()
    assert offline_page.non_local_requests() == [] and offline_page.page_errors == []
