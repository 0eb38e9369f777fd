"""Runs the fake-model front-end tests `tests/js/<widget>.test.js` in Chromium, one pytest test per
exported `test_*` function. A widget's tests need no Python: add `tests/js/<widget>.test.js`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sw_browser import Recorder, run_js_test

JS_TESTS = Path(__file__).resolve().parents[1] / "js"
CASES = [
    pytest.param(path, name, id=f"{path.name.removesuffix('.test.js')}::{name}")
    for path in sorted(JS_TESTS.glob("*.test.js"))
    for name in re.findall(
        r"^export\s+(?:async\s+)?function\s+(test_\w+)", path.read_text(encoding="utf-8"), re.M
    )
]


@pytest.mark.browser
@pytest.mark.parametrize(("path", "name"), CASES)
def test_front_end(browser_page: Recorder, path: Path, name: str) -> None:
    run_js_test(browser_page.page, path, name)
    assert not browser_page.page_errors, browser_page.page_errors
