"""The explorer in JupyterLab: click a feature in the token view -> its dashboard appears and the kernel's
selection agrees -> "steer" -> a slider for it in the steering panel, which the kernel sees; typing a text,
an inline error, and a search whose row opens a dashboard. Then its saved page, offline."""

from __future__ import annotations

import pytest
from sw_browser import Recorder

EXPLORER = "[data-testid=explorer]"
TITLE = "[data-testid=dash-title]"
SETUP = (
    "import torch\n"
    "import scopewidgets as sw\n"
    "from scopewidgets.testing import tiny_gemma3, random_sae\n"
    "torch.set_num_threads(1)\n"
    "model, tok = tiny_gemma3()\n"
    "scope = sw.Scope(model, tok, saes=[random_sae(model, 'resid_post', 1, d_sae=64, threshold=0.3)])\n"
    "texts = ['The cat sat on the mat.\\nThe dog sat on the log.'] * 8\n"
    "ex = scope.explorer('The cat sat on the mat', corpus=texts, max_windows=4, seq_len=16, cache=False)\n"
    "ex"
)


def wait_for_title(page, feature: str) -> None:
    page.wait_for_function(
        f"() => document.querySelector('{TITLE}')?.textContent.startsWith('Feature #{feature}')"
    )


@pytest.mark.browser
def test_click_a_feature_open_its_dashboard_and_steer_with_it(lab_notebook) -> None:
    kernel = lab_notebook.open(
        [SETUP], wait_for="[data-testid=token-view] [data-testid=feature-list] .sw-feat"
    )
    page = lab_notebook.page
    assert page.locator(f"{EXPLORER} [data-testid=text-input]").input_value() == "The cat sat on the mat"

    side = page.locator("[data-testid=feature-list] .sw-feat").first
    feature = side.get_attribute("data-feature")
    side.click()
    page.wait_for_selector("[data-testid=dashboard]")
    wait_for_title(page, feature)
    kernel.wait_for("ex.selected_feature", feature)
    assert kernel.eval("ex.dashboard.header['feature']") == feature
    assert kernel.eval("len(ex.library.passes)") == "1"  # the pass built with the text served the click

    page.locator("[data-testid=tokens] .sw-tok").nth(3).click()  # pin a token, click a feature of its list
    in_token = page.locator("[data-testid=token-detail] .sw-feat").first
    other = in_token.get_attribute("data-feature")
    in_token.click()
    wait_for_title(page, other)
    kernel.wait_for("ex.selected_feature", other)

    page.click("[data-testid=action-steer]")
    page.wait_for_selector(f"[data-testid=steering] [data-testid=slider-{other}]")
    kernel.wait_for("ex.steering.features", f"[{other}]")
    assert kernel.eval("ex.steer_features") == f"[{other}]"
    assert (
        page.locator("[data-testid=steering] [data-testid=prompt]").input_value() == "The cat sat on the mat"
    )

    box = page.locator(f"{EXPLORER} [data-testid=text-input]")
    box.fill("")
    box.press("Enter")
    banner = page.wait_for_selector(f"{EXPLORER} [data-testid=error]:not([hidden])")
    assert "The text is empty" in banner.text_content()
    box.type("A dog")  # real key presses: notebook shortcuts (A: insert a cell) must not fire
    box.press("Enter")
    kernel.wait_for("ex.text", "'A dog'")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=tokens]')?.textContent === '<bos>A·dog'"
    )
    page.wait_for_selector(f"{EXPLORER} [data-testid=error]", state="hidden")
    kernel.wait_for("ex.steering.prompt", "'A dog'")  # the untouched prompt follows the text
    assert page.locator(".jp-Notebook .jp-Cell").count() == 1

    query = page.locator(f"{EXPLORER} [data-testid=search-input]")
    query.fill("the dog")
    query.press("Enter")
    row = page.locator("[data-testid=search-row]").last
    row.wait_for()
    found = row.get_attribute("data-feature")
    assert kernel.eval("[r[0] for r in ex.search_results.rows][-1]") == found
    row.click()
    wait_for_title(page, found)
    kernel.wait_for("ex.selected_feature", found)
    assert kernel.eval("ex.error") == "''"


@pytest.mark.browser
def test_a_new_text_clears_stale_results_and_selection_and_the_token_view_fits_its_text(lab_notebook) -> None:
    kernel = lab_notebook.open(
        [SETUP], wait_for="[data-testid=token-view] [data-testid=feature-list] .sw-feat"
    )
    page = lab_notebook.page
    query = page.locator(f"{EXPLORER} [data-testid=search-input]")
    query.fill("the dog")
    query.press("Enter")
    page.locator("[data-testid=search-row]").first.wait_for()
    results = page.locator("[data-testid=search-results]").bounding_box()
    tokens = page.locator("[data-testid=token-view]").bounding_box()
    assert results["y"] >= tokens["y"] + tokens["height"]  # the results sit below the tokens
    assert tokens["height"] < 300  # a one-line text: the view is not as tall as its side lists
    kernel.run("silent = int(torch.nonzero(scope.activations('A dog').values.amax(0) == 0)[0])\n"
               "ex.selected_feature = silent")  # fmt: skip
    wait_for_title(page, kernel.eval("silent"))
    box = page.locator(f"{EXPLORER} [data-testid=text-input]")
    box.fill("A dog")
    box.press("Enter")
    kernel.wait_for("ex.text", "'A dog'")
    kernel.wait_for("ex.selected_feature", "None")
    page.wait_for_function("() => !document.querySelector('[data-testid=search-row]')?.checkVisibility()")
    assert page.locator(f"{EXPLORER} [data-testid=search-input]").input_value() == ""
    colours = page.locator("[data-testid=tokens] .sw-tok").evaluate_all(
        "spans => spans.map((s) => getComputedStyle(s).backgroundColor)"
    )
    assert any(c not in ("rgba(0, 0, 0, 0)", "transparent") for c in colours), colours  # not all uncoloured


@pytest.mark.browser
def test_the_saved_explorer_page_shows_its_parts_offline(offline_page: Recorder, tmp_path) -> None:
    import scopewidgets as sw
    from scopewidgets.testing import random_sae, tiny_gemma3

    model, tok = tiny_gemma3()
    scope = sw.Scope(model, tok, saes=[random_sae(model, "resid_post", 1, d_sae=64, threshold=0.3)])
    ex = scope.explorer("The <b>cat</b>", corpus=["The cat sat on the mat."] * 8, max_windows=4, seq_len=16,
                        cache=False)  # fmt: skip
    feature = ex.tokens.top_features[0]["feature"]
    ex.selected_feature = feature
    path = ex.save_html(tmp_path / "explorer.html")
    page = offline_page.page
    page.goto(path.as_uri())
    page.wait_for_selector(TITLE)
    wait_for_title(page, str(feature))
    assert page.locator("[data-testid=tokens]").text_content() == "<bos>The·<b>cat</b>"
    assert page.locator("[data-testid=token-view] b").count() == 0
    similar = page.locator("[data-testid=similar] .sw-feat:not([disabled])")
    assert similar.count() > 0  # a similar feature the saved pass covers opens offline
    target = similar.first.get_attribute("data-feature")
    similar.first.click()
    wait_for_title(page, target)
    assert page.locator("[data-testid=action-steer]").count() == 0  # nothing to steer with offline
    ex.close()
    assert offline_page.non_local_requests() == [] and offline_page.page_errors == []
