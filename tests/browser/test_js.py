"""Runs the fake-model front-end tests `tests/js/<widget>.test.js` in Chromium, one pytest test per
exported `test_*` function. A widget's tests need no Python: add `tests/js/<widget>.test.js`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
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


@pytest.mark.browser
def test_a_missing_chromium_fails_the_run() -> None:
    """Browser tests must fail, not skip, when Chromium is missing (here: pointed at a missing file)."""
    first = f"{__file__}::test_front_end[{CASES[0].id}]"
    env = {**os.environ, "SCOPEWIDGETS_CHROMIUM": "/nonexistent/chromium"}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", first]
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stdout[-2000:]
    assert (
        "1 error" in run.stdout
        and "apt-get install -y chromium" in run.stdout
        and "skipped" not in run.stdout
    )
