"""Reusable browser fixtures (mark tests `@pytest.mark.browser`).

- `chromium`: one Debian Chromium per session, launched by Playwright with the offline-safe flags. A missing
  Chromium FAILS the test with the install command; it never skips.
- `browser_page`: a fresh page in its own context, as a `sw_browser.Recorder` (`.page`, `.requests`,
  `.dialogs`, `.console_errors`, `.page_errors`, `.non_local_requests()`).
- `offline_page`: the same, but every request that is not file:/data:/blob:/about: is aborted (and
  recorded), so a page that needs the network shows it.
- `lab`: one JupyterLab server per session (`sw_browser.LabServer`), started on first use.
- `lab_notebook`: `open(cells, wait_for=css)` writes a notebook, opens it in `browser_page`, runs all cells,
  waits for `wait_for`, and returns a `sw_browser.Kernel` (`.eval(expr)`, `.run(code)`,
  `.wait_for(expr, repr)`).
  The page is `lab_notebook.page`. Kernels are shut down after the test.
- `sw_browser.run_js_test(page, tests/js/<widget>.test.js, name)`: fake-model tests (see test_js.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import sync_playwright
from sw_browser import CHROMIUM_ARGS, LOCAL_SCHEMES, Kernel, LabServer, Recorder, chromium_path


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    try:
        executable = chromium_path()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def browser_page(chromium: Any) -> Iterator[Recorder]:
    context = chromium.new_context()
    yield Recorder(context.new_page())
    context.close()


@pytest.fixture
def offline_page(chromium: Any) -> Iterator[Recorder]:
    context = chromium.new_context()

    def route(route: Any) -> None:
        if route.request.url.startswith(LOCAL_SCHEMES):
            route.continue_()
        else:
            route.abort()

    context.route("**/*", route)
    yield Recorder(context.new_page())
    context.close()


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    server = LabServer(tmp_path_factory.mktemp("lab"))
    yield server
    server.stop()


class NotebookOpener:
    """`lab_notebook.open(cells, wait_for)` -> Kernel; `lab_notebook.page` is the Playwright page."""

    def __init__(self, lab: LabServer, recorder: Recorder, name: str) -> None:
        self.lab, self.recorder, self.page, self.name = lab, recorder, recorder.page, name
        self.kernels: list[Kernel] = []

    def open(self, cells: list[str], wait_for: str, timeout: float = 90.0) -> Kernel:
        kernel = self.lab.open_notebook(
            self.page, f"{self.name}-{len(self.kernels)}.ipynb", cells, wait_for, timeout
        )
        self.kernels.append(kernel)
        return kernel

    def close(self) -> None:
        for kernel in self.kernels:
            kernel.close()
        self.lab.shutdown_kernels()


@pytest.fixture
def lab_notebook(
    lab: LabServer, browser_page: Recorder, request: pytest.FixtureRequest
) -> Iterator[NotebookOpener]:
    opener = NotebookOpener(lab, browser_page, request.node.name.replace("[", "-").strip("]"))
    yield opener
    opener.close()
