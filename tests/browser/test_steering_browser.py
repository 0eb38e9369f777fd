"""The steering panel in JupyterLab: move a slider, press Generate, and the streamed completions equal
`scope.steer(...)` computed in the kernel with the same settings."""

from __future__ import annotations

import ast

import pytest

PANEL = "[data-testid=steering]"
CELLS = [
    "import torch\n"
    "import scopewidgets as sw\n"
    "from scopewidgets.testing import tiny_gemma3, random_sae\n"
    "torch.set_num_threads(1)\n"
    "model, tok = tiny_gemma3()\n"
    "scope = sw.Scope(model, tok, saes=[random_sae(model, 'resid_post', 1, d_sae=64)])\n"
    "density = torch.linspace(0.0001, 0.5, 64)\n"
    "from scopewidgets.features import FeatureStats, register_feature_stats\n"
    "register_feature_stats(scope.sae(), FeatureStats(density, density, density, 1000, 'test'))\n"
    "panel = scope.steering_panel('The Eiffel Tower is in', features=[5, 9], max_new_tokens=12,"
    " temperature=0.5, seed=16)\n"
    "panel",
]


WATCH_STREAM = """() => {
  window.__counts = [];
  const column = document.querySelector('[data-testid=steered] .sw-steer-generated');
  new MutationObserver(() => window.__counts.push(column.childElementCount))
    .observe(column, {childList: true});
}"""


DENSITY = [0.0001 + (0.5 - 0.0001) * i / 63 for i in range(64)]  # the registered statistics


def density_shown(page, feature: int) -> float:
    """The density beside feature `feature`'s slider, as a fraction (fails on "NaN" or "–")."""
    text = page.locator(f"[data-testid=density-{feature}]").text_content()
    assert text.endswith("%") and "NaN" not in text, text
    return float(text.removesuffix("%")) / 100


def texts(page, column: str) -> str:
    return page.locator(f"[data-testid={column}] .sw-steer-generated").text_content()


def move_slider(page, feature: int, position: float) -> None:
    """Drag-equivalent: set the range input and fire input + change, as a released drag does."""
    page.locator(f"[data-testid=slider-{feature}]").evaluate(
        "(el, v) => { el.value = String(v); el.dispatchEvent(new Event('input', {bubbles: true}));"
        " el.dispatchEvent(new Event('change', {bubbles: true})); }",
        round(position * 1000),
    )


@pytest.mark.browser
def test_slider_generate_and_streamed_text_equals_steer(lab_notebook) -> None:
    kernel = lab_notebook.open(CELLS, wait_for=f"{PANEL} [data-testid=slider-5]")
    page = lab_notebook.page
    for feature in (5, 9):  # each steered feature shows its density
        assert density_shown(page, feature) == pytest.approx(DENSITY[feature], rel=0.01)
    move_slider(page, 5, 0.9)
    kernel.wait_for("round(panel.strengths['5'], 3) > 100", "True")
    page.evaluate(WATCH_STREAM)
    page.click("[data-testid=generate]")
    kernel.wait_for("panel.result.get('id') == panel.generation > 0", "True", timeout=120)
    page.wait_for_function(
        "() => document.querySelector('[data-testid=status]').textContent.includes('tokens in')"
    )
    kernel.run(
        "o = scope.steer('The Eiffel Tower is in', {5: panel.strengths['5'], 9: 0.0},"
        " max_new_tokens=12, temperature=0.5, seed=16)"
    )
    expected = ast.literal_eval(kernel.eval("[''.join(o.default_tokens), ''.join(o.steered_tokens)]"))
    assert [texts(page, "default"), texts(page, "steered")] == expected
    assert expected[0] != expected[1]  # the slider's strength changed the completion
    counts = page.evaluate("window.__counts")
    assert any(0 < n < 12 for n in counts), counts  # tokens arrived one by one, before the result
    marked = page.locator("[data-testid=steered] .sw-steer-diff").count()
    assert marked == int(kernel.eval("sum(panel.result['differs'])")) > 0
    code = page.locator("[data-testid=code]").text_content()
    assert code == ast.literal_eval(kernel.eval("panel.code"))


@pytest.mark.browser
def test_errors_show_inline_and_the_panel_recovers(lab_notebook) -> None:
    kernel = lab_notebook.open(CELLS, wait_for=f"{PANEL} [data-testid=slider-5]")
    page = lab_notebook.page
    page.fill("[data-testid=add-input]", "100000")
    page.click("[data-testid=add]")
    banner = page.wait_for_selector("[data-testid=error]:not([hidden])")
    assert "Feature 100000 is out of range" in banner.text_content()
    kernel.wait_for("panel.features", "[5, 9]")  # the bad feature was dropped
    page.fill("[data-testid=add-input]", "7")
    page.click("[data-testid=add]")
    page.wait_for_selector(f"{PANEL} [data-testid=slider-7]")
    assert density_shown(page, 7) == pytest.approx(DENSITY[7], rel=0.01)  # an added feature's too
    kernel.wait_for("panel.error", "''")
    page.wait_for_selector("[data-testid=error]", state="hidden")


@pytest.mark.browser
def test_a_saved_result_renders_offline_with_marks(offline_page, tmp_path) -> None:
    import scopewidgets as sw
    from scopewidgets.testing import random_sae, tiny_gemma3

    model, tok = tiny_gemma3()
    import torch

    from scopewidgets.features import FeatureStats, register_feature_stats

    scope = sw.Scope(model, tok, saes=[random_sae(model, "resid_post", 1, d_sae=64)])
    density = torch.tensor(DENSITY)
    register_feature_stats(scope.sae(), FeatureStats(density, density, density, 1000, "test"))
    out = scope.steer("<b>The</b> Eiffel", {5: 60.0}, max_new_tokens=8)
    path = out.save_html(tmp_path / "steering.html")
    page = offline_page.page
    page.goto(path.as_uri())
    page.wait_for_selector("[data-testid=steered] .sw-steer-tok")
    assert texts(page, "steered") == "".join(out.steered_tokens)
    assert texts(page, "default") == "".join(out.default_tokens)
    assert page.locator("[data-testid=steered] .sw-steer-diff").count() == sum(out.differs) > 0
    assert page.locator("[data-testid=steered] .sw-steer-prompt").text_content() == "<b>The</b> Eiffel"
    assert page.locator(".sw-steer-controls").is_hidden()
    summary = page.locator("[data-testid=summary]").text_content()
    assert summary == out.widget().summary and "NaN" not in summary
    assert summary.endswith(f"#5 (density {100 * DENSITY[5]:.3g}%)"), summary
    assert page.locator("[data-testid=steering] b").count() == 0
    assert offline_page.non_local_requests() == [] and offline_page.page_errors == []
