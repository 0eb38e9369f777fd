"""Pictures of every widget, in the light and the dark theme, for the README and the docs.

Each widget is saved as its offline page (`save_html`), opened from disk in Chromium with the network off,
and photographed: `<out>/<widget>-light.png` and `<out>/<widget>-dark.png` for the token view, a feature
dashboard, a steering result, search results and the explorer. Run it again after a change to a widget's
look, so the pictures stay current:

    python scripts/screenshots.py                    # the offline demo (real Gemma 3 270M), into docs/images
    python scripts/screenshots.py --tiny --out /tmp/shots   # a tiny random model: seconds, for a quick look

Chromium: $SCOPEWIDGETS_CHROMIUM, else /usr/bin/chromium (`apt-get install -y chromium`).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
THEMES = ("light", "dark")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
TEXT = "The Eiffel Tower is in Paris.\nIt was finished in 1889."
WIDGETS = ("tokens", "dashboard", "steering", "search", "explorer")


def demo_scope() -> tuple[Any, Any]:
    """The offline demo and a corpus slice (a few dozen windows: the dashboards take seconds)."""
    import scopewidgets as sw

    scope = sw.demo()
    return scope, sw.corpus.token_windows(scope.tokenizer, sw.corpus.default(), 64, 48)[:48]


def tiny_scope() -> tuple[Any, Any]:
    """A tiny random Gemma 3 with a random SAE and a small corpus (for tests and quick looks)."""
    import scopewidgets as sw
    from scopewidgets.testing import random_sae, tiny_gemma3

    model, tokenizer = tiny_gemma3()
    scope = sw.Scope(model, tokenizer, saes=[random_sae(model, "resid_post", 1, d_sae=64, threshold=0.3)])
    return scope, ["The cat sat on the mat.\nThe dog sat on the log."] * 8


def save_pages(scope: Any, corpus: Any, folder: Path, names: Sequence[str] = WIDGETS) -> dict[str, Path]:
    """`{widget: page}`: the offline page of each widget in `names`, written into `folder`."""
    acts = scope.activations(TEXT)
    features = [int(f) for f in acts.top_features(k=4)["feature"]]
    texts = isinstance(corpus, list)  # the tiny setting; the demo's corpus is a token tensor
    seq_len = 24 if texts else 64

    def dashboard(path: Path) -> Path:
        dashes = scope.dashboards(features, corpus=corpus, seq_len=seq_len, cache=False, progress=False)
        return dashes[features[0]].save_html(path)

    def explorer(path: Path) -> Path:
        view = scope.explorer(
            TEXT, corpus=corpus if texts else None, max_windows=8, seq_len=seq_len, cache=False
        )
        view.selected_feature = features[0]
        try:
            return view.save_html(path)
        finally:
            view.close()

    makers: dict[str, Callable[[Path], Path]] = {
        "tokens": acts.save_html,
        "dashboard": dashboard,
        "steering": lambda path: scope.steer(
            "I think that", {features[0]: 200.0}, max_new_tokens=12
        ).save_html(path),
        "search": lambda path: scope.search(TEXT, k=8).save_html(path),
        "explorer": explorer,
    }
    return {name: Path(makers[name](folder / f"{name}.html")) for name in names}


def shoot(pages: dict[str, Path], out: Path, chromium: str, width: int = 1100) -> list[Path]:
    """Photograph each page in both themes into `out`; returns the files written."""
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    written = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=ARGS, headless=True)
        try:
            for theme in THEMES:
                page = browser.new_page(viewport={"width": width, "height": 100}, color_scheme=theme)
                page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(("file:", "data:", "blob:")) else route.abort())  # fmt: skip
                for name, path in pages.items():
                    page.goto(path.as_uri())
                    page.wait_for_selector(".scopewidgets")
                    page.wait_for_timeout(300)  # fonts and layout settle
                    target = out / f"{name}-{theme}.png"
                    page.screenshot(path=str(target), full_page=True)  # as tall as the widget
                    written.append(target)
                page.close()
        finally:
            browser.close()
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images", help="folder for the PNGs")
    parser.add_argument("--tiny", action="store_true", help="a tiny random model instead of the demo")
    args = parser.parse_args(argv)
    chromium = os.environ.get("SCOPEWIDGETS_CHROMIUM", "/usr/bin/chromium")
    scope, corpus = tiny_scope() if args.tiny else demo_scope()
    with tempfile.TemporaryDirectory() as folder:
        written = shoot(save_pages(scope, corpus, Path(folder)), args.out, chromium)
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
