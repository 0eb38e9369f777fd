"""The token-activations view in a real browser: exported HTML from file:// with no network, and the live
widget in JupyterLab talking to its kernel."""

from __future__ import annotations

import numpy as np
import pytest
from sw_browser import Recorder

from scopewidgets.testing import fake_activations

EVIL = ["<bos>", "<img src=x onerror=alert(1)>", "</script>", "<b>bold</b>", " ", "\n", "&amp;"]
TOKEN = "[data-testid=token-view] .sw-tok"
WATCH_CSP = (
    "window.__violations = [];"
    "document.addEventListener('securitypolicyviolation',"
    " e => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));"
)


def exported_acts():
    """Tokens with HTML in them; with k=1, feature 2 on token 3 is outside that token's top-k."""
    values = np.zeros((len(EVIL), 4), dtype=np.float32)
    values[1, 2], values[3, 2], values[3, 1], values[5, 0] = 3.0, 1.5, 2.0, 0.5
    return fake_activations(EVIL, values, labels={2: "<i>tags</i>"})


def assert_nothing_ran(recorder: Recorder) -> None:
    page = recorder.page
    assert recorder.dialogs == [], recorder.dialogs
    assert (
        page.locator(
            "[data-testid=token-view] img, [data-testid=token-view] b, [data-testid=token-view] i"
        ).count()
        == 0
    )
    texts = page.locator(TOKEN).all_text_contents()
    assert texts[:4] == ["<bos>", "<img src=x onerror=alert(1)>", "</script>", "<b>bold</b>"]
    assert texts[4:] == ["·", "↵\n", "&amp;"]


@pytest.mark.browser
def test_export_renders_offline_reacts_and_runs_nothing(offline_page: Recorder, tmp_path) -> None:
    path = exported_acts().widget(k=1).save_html(tmp_path / "acts.html")
    page = offline_page.page
    page.add_init_script(WATCH_CSP)
    page.goto(path.as_uri())
    page.wait_for_selector(TOKEN)
    assert_nothing_ran(offline_page)

    page.hover(f"{TOKEN}[data-i='3']")
    detail = page.locator("[data-testid=token-detail] .sw-feat")
    assert [detail.nth(i).get_attribute("data-feature") for i in range(detail.count())] == ["1"]
    assert "“<b>bold</b>”" in page.locator("[data-testid=token-title]").text_content()

    page.click("[data-testid=feature-list] [data-feature='2']")
    status = page.locator("[data-testid=status]").text_content()
    assert "#2 <i>tags</i>" in status and "top-k" not in status, status  # the exact column, offline
    colours = [
        page.locator(f"{TOKEN}[data-i='{i}']").evaluate("e => e.style.backgroundColor") for i in (1, 3, 5)
    ]
    assert (
        colours[0] == "rgba(234, 88, 12, 0.9)" and colours[1] == "rgba(234, 88, 12, 0.51)"
    )  # 3.0 and 1.5 of 3.0
    assert colours[2] == "transparent"

    assert offline_page.requests and offline_page.non_local_requests() == []
    assert page.evaluate("window.__violations") == []
    assert offline_page.page_errors == [] and offline_page.dialogs == []


LAB_CELLS = [
    "import scopewidgets as sw\n"
    "from scopewidgets.testing import tiny_gemma3, random_sae\n"
    "model, tok = tiny_gemma3()\n"
    "sae = random_sae(model, d_sae=64, threshold=0.5)\n"
    "sae.labels = {i: f'label {i}' for i in range(64)}\n"
    "scope = sw.Scope(model, tok, saes=[sae])\n"
    "acts = scope.activations('The cat sat on the mat.')\n"
    "w = acts.widget(n_features=8)\n"
    "w",
]


@pytest.mark.browser
def test_lab_selection_goes_both_ways(lab_notebook) -> None:
    kernel = lab_notebook.open(LAB_CELLS, wait_for=TOKEN)
    page = lab_notebook.page
    assert page.locator(TOKEN).count() == int(kernel.eval("len(acts.tokens)"))

    page.hover(f"{TOKEN}[data-i='3']")
    detail = page.locator("[data-testid=token-detail] .sw-feat")
    first = detail.first.get_attribute("data-feature")
    assert first == kernel.eval("int(acts.values[3].argmax())")
    last = detail.last.get_attribute("data-feature")  # 16th strongest: outside the side list's 8
    assert kernel.eval(f"{last} in [f['feature'] for f in w.top_features]") == "False"
    page.wait_for_function(  # its label came from the kernel on request
        f"() => document.querySelector(\"[data-testid=token-detail] [data-feature='{last}'] .sw-flabel\")"
        f"?.textContent === 'label {last}'"
    )

    button = page.locator("[data-testid=feature-list] .sw-feat").nth(1)
    feature = button.get_attribute("data-feature")
    button.click()
    kernel.wait_for("w.selected_feature", feature)
    page.wait_for_function(
        f"() => {{ const s = document.querySelector('[data-testid=status]').textContent;"
        f" return s.includes('#{feature}') && !s.includes('top-k'); }}"
    )  # the kernel's exact column arrived

    other = kernel.eval("w.top_features[3]['feature']")
    kernel.run(f"w.selected_feature = {other}")
    page.wait_for_selector(f"[data-testid=feature-list] [data-feature='{other}'][aria-pressed=true]")

    kernel.run("w.selected_feature = 10**6")
    banner = page.wait_for_selector("[data-testid=error]:not([hidden])")
    assert "Feature 1000000 is out of range" in banner.text_content()
    page.locator("[data-testid=feature-list] .sw-feat").first.click()  # still works
    kernel.wait_for("w.error", "''")
    page.wait_for_selector("[data-testid=error]", state="hidden")


@pytest.mark.browser
def test_lab_shows_html_in_tokens_as_text(lab_notebook) -> None:
    cells = [
        "import numpy as np\nfrom scopewidgets.testing import fake_activations\n"
        f"values = np.zeros(({len(EVIL)}, 4), dtype=np.float32); values[1, 2] = 3.0\n"
        f"fake_activations({EVIL!r}, values, labels={{2: '<i>tags</i>'}})"
    ]
    lab_notebook.open(cells, wait_for=TOKEN)
    assert_nothing_ran(lab_notebook.recorder)
    page = lab_notebook.page
    assert page.locator(".scopewidgets-static").count() == 0  # the widget, not the static fallback
    page.hover(f"{TOKEN}[data-i='1']")
    assert "<i>tags</i>" in page.locator("[data-testid=token-detail]").text_content()
    assert page.locator("[data-testid=token-view] i").count() == 0 and lab_notebook.recorder.dialogs == []


@pytest.mark.browser
def test_saved_notebook_shows_the_widget_or_a_static_fallback(lab, browser_page: Recorder) -> None:
    """A notebook saved with widget state, opened where its kernel does not exist: trusted, JupyterLab
    draws the widget from the saved state (hover works); untrusted (someone else's notebook), it shows the
    escaped static preview. (With a kernel starting, JupyterLab 4.6 sometimes drops the saved state
    before the output renders: "model not found"; see docs/widgets.md.)"""
    cells = [
        "from scopewidgets.testing import fake_activations\n"
        "values = [[0, 0], [1.0, 0], [0, 0], [0, 2.0]]\n"
        "fake_activations(['<bos>', '<b>x</b>', ' ', 'y'], values, labels={1: 'one'})"
    ]
    notebook = lab.execute("saved.ipynb", cells)
    assert notebook.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    notebook.metadata["kernelspec"]["name"] = "not-installed-here"
    lab.save(notebook, "saved-trusted.ipynb", trusted=True)
    notebook.metadata["copied_from"] = "someone else"  # other content: the signature no longer matches
    lab.save(notebook, "saved-untrusted.ipynb", trusted=False)
    page = browser_page.page

    lab.open(page, "saved-trusted.ipynb", wait_for=TOKEN)
    assert page.locator(TOKEN).all_text_contents() == ["<bos>", "<b>x</b>", "·", "y"]
    page.hover(f"{TOKEN}[data-i='3']")
    assert page.locator("[data-testid=token-detail] .sw-flabel").first.text_content() == "one"

    other = Recorder(page.context.new_page())  # leaving the first page would raise a beforeunload dialog
    output = ".jp-OutputArea-output:has-text('Static preview')"  # the sanitizer may drop our class names
    lab.open(other.page, "saved-untrusted.ipynb", wait_for=output)
    assert other.page.locator("[data-testid=token-view]").count() == 0
    assert "<b>x</b>·y" in other.page.locator(output).text_content()
    assert other.page.locator(f"{output} b").count() == 0 and other.dialogs == []
