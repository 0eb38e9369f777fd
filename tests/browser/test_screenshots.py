"""`scripts/screenshots.py`, which keeps the README's and the docs' pictures current, photographs widgets in
both themes (here the fast ones, on a tiny random model)."""

from __future__ import annotations

import importlib.util
import struct
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sw_browser import REPO, chromium_path


def load_script():
    spec = importlib.util.spec_from_file_location("screenshots", REPO / "scripts" / "screenshots.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">II", header[16:24])


@pytest.mark.browser
def test_the_script_photographs_each_widget_in_the_light_and_the_dark_theme(tmp_path: Path) -> None:
    script = load_script()
    scope, corpus = script.tiny_scope()
    pages = script.save_pages(scope, corpus, tmp_path, names=["tokens", "dashboard", "steering"])
    # In a thread of its own: the session's Playwright (the `chromium` fixture of other browser tests) keeps
    # an event loop running in this one, and the script's sync Playwright refuses to start inside it.
    with ThreadPoolExecutor(1) as pool:
        written = pool.submit(script.shoot, pages, tmp_path / "png", chromium_path(), width=900).result()
    assert sorted(p.name for p in written) == sorted(
        f"{name}-{theme}.png" for name in pages for theme in ("light", "dark")
    )
    for name in pages:
        light, dark = (tmp_path / "png" / f"{name}-{theme}.png" for theme in ("light", "dark"))
        width, height = png_size(light)
        assert width == 900 and 60 < height < 3000, (name, width, height)  # as tall as the widget
        assert light.read_bytes() != dark.read_bytes(), name  # the theme changes the picture
