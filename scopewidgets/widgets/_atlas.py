"""The feature atlas: every dashboard of a pass as one folder that a browser opens from disk.

    atlas/index.html              the page: a Content Security Policy (no network; only the page's own
                                  loader, by hash, and the folder's scripts run), the loader
    atlas/data/index.js           window.SW_ATLAS_INDEX: per feature id, label, density, max, top promoted
                                  token (by steering when the model's steering Jacobian is known, else the
                                  direct logit effect; `top_title` says which); the token strings the
                                  dashboards use (`vocab`)
    atlas/data/app.js             window.SW_ATLAS_APP: the bundled js/atlas.js (list + the dashboard's own
                                  drawing code) and its CSS, imported by the loader through a Blob URL
    atlas/data/features/<c>.js    window.SW_ATLAS_CHUNK(c, {feature: dashboard traits}) for `CHUNK` features,
                                  loaded when one of them is first opened

Data files are classic scripts, not JSON fetched or ES modules imported, because `file://` pages may not
fetch or import from disk. Text is escaped by `script_json`, so no token can end a script.
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from ..core.display import presents
from ..dashboards.materialize import ensure_table
from ..dashboards.result import DashboardSet
from ..features.columns import known_stats
from ..features.logit import steered_logits_many, stored_steering_jacobian
from ..features.stats import FeatureStats
from ._bundle import bundle_text
from ._dashboard_view import dashboard_state
from ._export import _PAGE_CSS, _encode, csp, script_json
from ._tokens import display_text

CHUNK = 64  # features per lazily loaded data file
_LOADER = """
const app = window.SW_ATLAS_APP;
const style = document.createElement("style");
style.textContent = app.css;
document.head.appendChild(style);
const url = URL.createObjectURL(new Blob([app.module], { type: "text/javascript" }));
const atlas = await import(url);
atlas.mount(document.getElementById("sw-atlas"), window.SW_ATLAS_INDEX);
"""


def _csp() -> str:
    return csp(_LOADER, "'self' file:")  # the atlas's data and app scripts are files beside it


def _page(title: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_csp()}">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_PAGE_CSS}</style>\n"
        '<script src="data/index.js"></script>\n<script src="data/app.js"></script>\n</head>\n<body>\n'
        f'<div id="sw-atlas"></div>\n<script type="module">{_LOADER}</script>\n</body>\n</html>\n'
    )


class _Vocabulary:
    """Token strings numbered as first seen: dashboards send local ids, the index holds each string once."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}

    def __call__(self, token: str) -> int:
        return self.ids.setdefault(token, len(self.ids))


def _feature_state(
    dashes: DashboardSet, feature: int, vocab: _Vocabulary, stats: FeatureStats | None, steered: Any = None
) -> dict[str, Any]:
    bos = dashes.scope.tokenizer.bos_token_id
    state = dashboard_state(dashes[feature], dashes.__contains__, bos, stats, steered)
    state["examples"]["tokens"] = [vocab(t) for t in state["examples"]["tokens"]]
    return _encode(state)


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


@presents(DashboardSet, role="atlas")
def save_atlas(dashes: DashboardSet, path: str | Path, progress: bool = True) -> Path:
    """Write the atlas of every feature of `dashes` to the folder `path`; returns `path / "index.html"`."""
    out = Path(path)
    (out / "data" / "features").mkdir(parents=True, exist_ok=True)
    table = ensure_table(dashes, progress)
    warm = getattr(dashes.rows, "warm", None)
    if warm is not None:
        warm(dashes.text)
    features, vocab = dashes.features, _Vocabulary()
    bar = tqdm(total=len(features), desc="Atlas", unit="feature", disable=not progress)
    kept, known = set(dashes._memo), known_stats(dashes.sae, dashes.scope)
    jacobian = stored_steering_jacobian(dashes.scope, dashes.sae)  # the widget's steering lists, when known
    first_steered: list[str] = []
    for chunk, start in enumerate(range(0, len(features), CHUNK)):
        some = features[start : start + CHUNK]
        steered = [None] * len(some)
        if jacobian is not None:
            steered = steered_logits_many(dashes.scope, dashes.sae, some, jacobian)
            first_steered += [top[0][0] for top, _ in steered]
        states = {
            f: _feature_state(dashes, f, vocab, known, lists) for f, lists in zip(some, steered, strict=True)
        }
        text = f"window.SW_ATLAS_CHUNK({chunk}, {script_json(states)});\n"
        (out / "data" / "features" / f"{chunk}.js").write_text(text, encoding="utf-8")
        for col in set(dashes._memo) - kept:  # memory stays one chunk of dashboards
            del dashes._memo[col]
        bar.update(len(states))
    bar.close()
    stats = dashes.rows.stats()
    index = {
        "title": f"Feature atlas: {dashes.sae.cfg.site} layer {dashes.sae.cfg.layer}, {len(features):,} features",
        "features": features,
        "label": [dashes.sae.label(f) or "" for f in features],
        "density": [_finite(v) for v in stats["density"].tolist()],
        "max": [_finite(v) for v in stats["max_activation"].tolist()],
        "top": [display_text(t) for t in first_steered or dashes.text(table.top_ids[:, 0])],
        "top_title": "top token by steering" if first_steered else "top promoted token (direct)",
        "chunk": CHUNK,
        "vocab": list(vocab.ids),
    }
    (out / "data" / "index.js").write_text(
        f"window.SW_ATLAS_INDEX = {script_json(index)};\n", encoding="utf-8"
    )
    app = {"module": bundle_text("atlas.js"), "css": bundle_text("atlas.css")}
    (out / "data" / "app.js").write_text(f"window.SW_ATLAS_APP = {script_json(app)};\n", encoding="utf-8")
    page = out / "index.html"
    page.write_text(_page(index["title"]), encoding="utf-8")
    return page
