"""The feature atlas opened from file:// with every non-local request blocked: it lists the features,
searches and sorts them, opens a dashboard (data loaded lazily) and a similar feature inside it; and the list
of 8,192 features renders in under 1 s."""

from __future__ import annotations

import json

import pytest
from sw_browser import Recorder

ROW = "[data-testid=atlas-row]"


@pytest.mark.browser
def test_atlas_lists_searches_and_opens_dashboards_offline(
    offline_page: Recorder, tmp_path, monkeypatch
) -> None:
    import scopewidgets as sw
    from scopewidgets.features import logit
    from scopewidgets.testing import random_sae, tiny_gemma3

    model, tok = tiny_gemma3()
    sae = random_sae(model, "resid_post", 1, d_sae=160, threshold=0.3, seed=2)
    sae.labels[7] = "cats and dogs"
    scope = sw.Scope(model, tok, saes=[sae])
    texts = ["The cat sat on the mat.\nThe dog sat on the log."] * 6
    dashes = scope.dashboards(None, corpus=texts, seq_len=24, cache=False, progress=False)
    monkeypatch.setenv("SCOPEWIDGETS_CACHE", str(tmp_path / "cache"))
    logit.steering_jacobian(scope, sae, progress=False)  # known: the dashboards list what steering promotes
    index = dashes.save_atlas(tmp_path / "atlas", progress=False)
    assert len(list((tmp_path / "atlas" / "data" / "features").glob("*.js"))) == 3  # 160 features, 64 a file
    page = offline_page.page
    page.goto(index.as_uri())
    page.wait_for_selector(ROW)
    assert page.locator("[data-testid=atlas-count]").text_content().startswith("160 of 160")
    assert page.locator("[data-testid=sort-top]").text_content() == "top token by steering"
    page.fill("[data-testid=atlas-search]", "CATS")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=atlas-count]').textContent.startsWith('1 of')"
    )
    assert page.locator(ROW).first.get_attribute("data-feature") == "7"
    page.fill("[data-testid=atlas-search]", "")
    page.click("[data-testid=sort-feature]")
    page.wait_for_function("() => document.querySelector('[data-testid=atlas-row]').dataset.feature === '0'")
    page.fill("[data-testid=atlas-search]", "#10")  # an id: that feature alone, not #100..#109
    page.wait_for_function(
        "() => document.querySelector('[data-testid=atlas-count]').textContent.startsWith('1 of')"
    )
    page.fill("[data-testid=atlas-search]", "#100")
    page.locator(ROW).first.click()
    page.wait_for_selector("[data-testid=dashboard]")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=atlas-status]').textContent === 'Feature #100'"
    )
    assert "#100" in page.locator("[data-testid=dash-header]").text_content()
    assert page.locator("[data-testid=top-examples] .sw-strip").count() == len(dashes[100].examples)
    assert page.locator("[data-testid=steer-top-logits] .sw-logit").count() == 10
    headers = page.locator("[data-testid=dashboard] h4").all_text_contents()
    assert headers.index("Promoted by steering") < headers.index("Promoted tokens (direct logit effect)")
    similar = page.locator("[data-testid=similar] .sw-feat:not([disabled])").first
    target = similar.get_attribute("data-feature")
    similar.click()  # its data file is loaded when first asked for
    page.wait_for_function(
        f"() => document.querySelector('[data-testid=atlas-status]').textContent === 'Feature #{target}'"
    )
    assert f"#{target}" in page.locator("[data-testid=dash-header]").text_content()
    assert offline_page.non_local_requests() == [] and offline_page.page_errors == []
    assert offline_page.console_errors == []


@pytest.mark.browser
def test_atlas_list_of_8192_features_renders_in_under_a_second(offline_page: Recorder, tmp_path) -> None:
    from scopewidgets.widgets import _atlas

    folder = tmp_path / "atlas"
    (folder / "data").mkdir(parents=True)
    n = 8192
    index = {"title": "big", "features": list(range(n)), "label": [f"label {i}" for i in range(n)],
             "density": [i / n for i in range(n)], "max": [float(i % 97) for i in range(n)],
             "top": [f" tok{i % 500}" for i in range(n)], "chunk": 64, "vocab": []}  # fmt: skip
    (folder / "data" / "index.js").write_text(f"window.SW_ATLAS_INDEX = {json.dumps(index)};")
    app = {"module": _atlas.bundle_text("atlas.js"), "css": _atlas.bundle_text("atlas.css")}
    (folder / "data" / "app.js").write_text(f"window.SW_ATLAS_APP = {_atlas.script_json(app)};")
    (folder / "index.html").write_text(_atlas._page("big"))
    page = offline_page.page
    page.goto((folder / "index.html").as_uri())
    page.wait_for_selector(ROW)
    elapsed = int(page.locator("#sw-atlas").get_attribute("data-rendered-ms")) / 1000  # from navigation start
    assert page.locator("[data-testid=atlas-count]").text_content().startswith("8,192 of 8,192")
    assert page.locator(ROW).count() < 60  # a virtual list: only the rows in view exist
    assert elapsed < 1.0, f"the 8,192-feature list took {elapsed:.2f} s"
    page.fill("[data-testid=atlas-search]", "tok499")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=atlas-count]').textContent.startsWith('16 of')"
    )
    assert offline_page.page_errors == []
