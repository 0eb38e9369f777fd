"""The dashboard widget in a real browser: live in JupyterLab (a click on a similar feature moves the widget
and the kernel's trait agrees), and as an exported page from file:// with no network."""

from __future__ import annotations

import pytest
from sw_browser import Recorder

from scopewidgets.features import feature_stats

TITLE = "[data-testid=dash-title]"
SIMILAR = "[data-testid=similar] .sw-feat:not([disabled])"

SETUP = (
    "import scopewidgets as sw\n"
    "from scopewidgets.testing import tiny_gemma3, random_sae\n"
    "model, tok = tiny_gemma3()\n"
    "sae = random_sae(model, 'resid_post', 1, d_sae=24, threshold=0.3, seed=2)\n"
    "sae.labels = {i: f'<i>label</i> {i}' for i in range(24)}\n"
    "scope = sw.Scope(model, tok, saes=[sae])\n"
    "texts = ['The cat sat on the mat.\\nThe dog sat on the log.'] * 6\n"
    "dashes = scope.dashboards(None, corpus=texts, seq_len=24, cache=False, progress=False)\n"
)


def check_axes_and_one_line_examples(page, dash) -> None:
    """Round activation ticks up to the maximum and count ticks, inside the histogram's frame; every example
    strip one line high, however many newlines its tokens hold."""
    x = page.locator(".sw-hist-x .sw-tick").all_text_contents()
    y = page.locator(".sw-hist-y .sw-tick").all_text_contents()
    values = [float(t.replace(",", "")) for t in x]
    assert len(values) >= 3 and values[0] == 0 and values == sorted(values), x
    assert values[-1] <= float(dash.histogram.edges[-1]) and y[0] == "0" and len(y) >= 2, (x, y)
    frame = page.locator("[data-testid=histogram-frame]").bounding_box()
    for tick in page.locator(".sw-hist-x .sw-tick").all():
        box = tick.bounding_box()
        assert frame["x"] - box["width"] <= box["x"] <= frame["x"] + frame["width"], (box, frame)
    heights = page.locator("[data-testid=top-examples] .sw-strip").evaluate_all(
        "strips => strips.map((s) => s.getBoundingClientRect().height)"
    )
    assert heights and max(heights) < 2 * min(heights) and max(heights) < 40, heights


def title_of(page) -> str:
    return page.locator(TITLE).text_content()


@pytest.mark.browser
def test_lab_similar_feature_click_moves_the_widget_and_the_kernel_agrees(lab_notebook) -> None:
    kernel = lab_notebook.open([SETUP + "w = dashes.widget(4)\nw"], wait_for=TITLE)
    page = lab_notebook.page
    assert title_of(page).startswith("Feature #4")
    assert page.locator("[data-testid=dashboard] i").count() == 0  # labels are text
    strips = page.locator("[data-testid=top-examples] .sw-strip").count()
    assert strips == int(kernel.eval("len(dashes[4].examples)"))

    button = page.locator(SIMILAR).first
    target = button.get_attribute("data-feature")
    assert target == kernel.eval("w.similar[0]['feature']")
    button.click()
    kernel.wait_for("w.feature", target)
    page.wait_for_function(
        f"() => document.querySelector('{TITLE}').textContent.startsWith('Feature #{target}<i>')"
    )
    assert kernel.eval("w.header['feature']") == target

    page.locator("[data-testid=back]").click()
    kernel.wait_for("w.feature", "4")
    page.wait_for_function(f"() => document.querySelector('{TITLE}').textContent.startsWith('Feature #4<')")

    kernel.run("w.feature = 9")
    page.wait_for_function(f"() => document.querySelector('{TITLE}').textContent.startsWith('Feature #9<')")
    kernel.run("w.feature = 10**6")
    banner = page.wait_for_selector("[data-testid=error]:not([hidden])")
    assert "Feature 1000000 is out of range" in banner.text_content()
    assert kernel.eval("w.feature") == "9"
    page.locator(SIMILAR).first.click()  # still works, and the error clears
    kernel.wait_for("w.error", "''")
    page.wait_for_selector("[data-testid=error]", state="hidden")


@pytest.mark.browser
def test_exported_dashboard_opens_similar_features_offline(offline_page: Recorder, tmp_path) -> None:
    import scopewidgets as sw
    from scopewidgets.testing import random_sae, tiny_gemma3

    model, tok = tiny_gemma3()
    scope = sw.Scope(model, tok, saes=[random_sae(model, "resid_post", 1, d_sae=24, threshold=0.3, seed=2)])
    texts = ["The cat sat on the mat.\nThe dog sat on the log."] * 6
    dashes = scope.dashboards(None, corpus=texts, seq_len=24, cache=False, progress=False)
    path = dashes[4].save_html(tmp_path / "dash.html")
    page = offline_page.page
    page.goto(path.as_uri())
    page.wait_for_selector(TITLE)
    assert title_of(page).startswith("Feature #4")
    check_axes_and_one_line_examples(page, dashes[4])
    target = page.locator(SIMILAR).first.get_attribute("data-feature")
    page.locator(SIMILAR).first.click()
    page.wait_for_function(
        f"() => document.querySelector('{TITLE}').textContent.startsWith('Feature #{target}')"
    )
    strips = page.locator("[data-testid=top-examples] .sw-strip").count()
    assert strips == len(dashes[int(target)].examples)
    page.locator("[data-testid=back]").click()
    page.wait_for_function(f"() => document.querySelector('{TITLE}').textContent.startsWith('Feature #4')")
    page.locator("[data-testid=quantile-group] summary").first.click()
    assert page.locator("[data-testid=quantile-group]").first.get_attribute("open") is not None
    assert offline_page.non_local_requests() == [] and offline_page.page_errors == []


def _reserved_dashboards():
    """A pass over half the features of an SAE whose reserved features 0 and 1 are the most similar to every
    other one; statistics registered for the SAE give the densities of the features outside the pass."""
    import torch

    import scopewidgets as sw
    from scopewidgets.features import FeatureStats, register_feature_stats
    from scopewidgets.testing import random_sae, tiny_gemma3

    model, tok = tiny_gemma3()
    sae = random_sae(model, "resid_post", 1, d_sae=24, threshold=0.3, seed=2)
    sae.cfg.extra["training"] = {"reserved_direction": True}
    with torch.no_grad():
        sae.W_dec[:2] = sae.W_dec[2:].sum(dim=0)
    sae.labels = {i: f"<i>label</i> {i}" for i in range(0, 24, 3)}
    density = torch.linspace(0.00002, 0.6, 24)
    register_feature_stats(sae, FeatureStats(density, torch.ones(24), torch.ones(24), 10_000, "test"))
    scope = sw.Scope(model, tok, saes=[sae])
    texts = ["The cat sat on the mat.\nThe dog sat on the log."] * 6
    return scope.dashboards(range(0, 24, 2), corpus=texts, seq_len=24, cache=False, progress=False)


def similar_rows(page) -> list[tuple[int, str, str]]:
    """(feature, label, density text) of every row of the similar list."""
    rows = page.locator("[data-testid=similar] .sw-feat")
    return [
        (
            int(rows.nth(i).get_attribute("data-feature")),
            rows.nth(i).locator(".sw-flabel").text_content(),
            rows.nth(i).locator("[data-testid=density]").text_content(),
        )
        for i in range(rows.count())
    ]


@pytest.mark.browser
def test_exported_similar_list_shows_each_density_and_no_reserved_feature(
    offline_page: Recorder, tmp_path
) -> None:
    dashes = _reserved_dashboards()
    view = dashes.widget(4)
    assert {0, 1} <= {f for f, _ in dashes[4].similar}  # the raw list holds them
    page = offline_page.page
    page.goto(view.save_html(tmp_path / "dash.html").as_uri())
    page.wait_for_selector("[data-testid=similar] [data-testid=density]")
    rows = similar_rows(page)
    table = dashes[4].similar_table(feature_stats(dashes.sae))
    assert [f for f, _, _ in rows] == table.feature.tolist() and rows
    assert not {0, 1} & {f for f, _, _ in rows}
    for (feature, label, text), expected in zip(rows, table.density, strict=True):
        assert text.endswith("%") and "NaN" not in text, rows
        assert float(text.removesuffix("%")) == pytest.approx(100 * expected, rel=0.01), (feature, text)
        assert label == (f"<i>label</i> {feature}" if feature % 3 == 0 else "")
    assert any(f % 2 for f, _, _ in rows) and any(f % 2 == 0 for f, _, _ in rows)  # pass and statistics
    for row in page.locator("[data-testid=similar] .sw-feat").all():  # one line: density beside the label
        box, cell = row.bounding_box(), row.locator("[data-testid=density]").bounding_box()
        assert cell["y"] >= box["y"] and cell["y"] + cell["height"] <= box["y"] + box["height"] + 1
        assert cell["x"] + cell["width"] <= box["x"] + box["width"] + 1
    assert page.locator("[data-testid=dashboard] i").count() == 0
    header = page.locator("[data-testid=top-logits] h4")  # says which measure it is, unlike the label's arrow
    assert header.text_content() == "Promoted tokens (direct logit effect)"
    assert "skips every layer after the SAE" in header.get_attribute("title")
    assert offline_page.non_local_requests() == [] and offline_page.page_errors == []


@pytest.mark.browser
def test_exported_dashboard_lists_the_tokens_steering_promotes_first(
    offline_page: Recorder, tmp_path, monkeypatch
) -> None:
    from scopewidgets.features import logit

    monkeypatch.setenv("SCOPEWIDGETS_CACHE", str(tmp_path / "cache"))
    dashes = _reserved_dashboards()
    logit.steering_jacobian(dashes.scope, dashes.sae, progress=False)  # known from now on
    view = dashes.widget(4)
    page = offline_page.page
    page.goto(view.save_html(tmp_path / "steer.html").as_uri())
    page.wait_for_selector("[data-testid=steer-top-logits] .sw-logit")
    headers = page.locator("[data-testid=dashboard] h4").all_text_contents()
    assert headers.index("Promoted by steering") < headers.index("Promoted tokens (direct logit effect)")
    shown = page.locator("[data-testid=steer-top-logits] .sw-logit-token").all_text_contents()
    assert len(shown) == len(view.logits["steer_top"]) == 10
    assert page.locator("[data-testid=steer-bottom-logits] .sw-logit").count() == 10
    note = page.locator("[data-testid=steer-top-logits] h4").get_attribute("title")
    assert "through every layer after the SAE" in note
    assert offline_page.non_local_requests() == [] and offline_page.page_errors == []


@pytest.mark.browser
def test_a_reserved_features_dashboard_lists_its_reserved_sibling(offline_page: Recorder, tmp_path) -> None:
    dashes = _reserved_dashboards()
    page = offline_page.page
    page.goto(dashes.widget(0).save_html(tmp_path / "dash0.html").as_uri())
    page.wait_for_selector("[data-testid=similar] [data-testid=density]")
    rows = similar_rows(page)
    assert 1 in {f for f, _, _ in rows} and all(text.endswith("%") for _, _, text in rows), rows
    assert offline_page.page_errors == []
