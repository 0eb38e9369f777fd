"""Token-activations view: bytes sent per token, and Chromium's time to render 2,000 tokens.

    python benchmarks/token_view.py            # print the figures
    python benchmarks/token_view.py --write    # also append them to benchmarks/RESULTS.md

Data: one synthetic text of 2,000 tokens (a newline every ~15 tokens) over a 16,384-feature SAE with ~60
active features per token (Gemma Scope's L0 range), so every token fills its top-k. Bytes: what the
widget's state costs on the comm, the JSON of the data traits plus the binary buffers; the bundled module
(sent once per widget, whatever the text) is reported apart. Render time: `render({model, el})` with the
export's stand-in model in headless Chromium on about:blank, then a forced style + layout pass; median of
15 runs. The machine's load average is printed: on a shared 2-core VM it moves the times a lot.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "browser")]

from sw_browser import CHROMIUM_ARGS, chromium_path  # noqa: E402

from scopewidgets.testing import fake_activations  # noqa: E402
from scopewidgets.widgets._base import bundle_text  # noqa: E402
from scopewidgets.widgets._export import _MACHINERY, _encode  # noqa: E402

N_TOKENS, D_SAE, L0 = 2000, 16384, 60
WORDS = [
    " the",
    " cat",
    " sat",
    " on",
    " mat",
    ".",
    ",",
    " Paris",
    " Eiffel",
    " Tower",
    " is",
    " in",
    "\n",
    " ",
    "ing",
]

MEASURE = """async ({ runtime, module, state, responses, feature, runs }) => {
  const load = async (source) => import(URL.createObjectURL(new Blob([source], { type: "text/javascript" })));
  const rt = await load(runtime);
  const widget = (await load(module)).default;
  const [data, replies] = [rt.revive(state), rt.revive(responses)];
  const times = { render: [], layout: [], select: [], hover: [] };
  for (let r = 0; r < runs; r++) {
    const el = document.createElement("div");
    document.body.appendChild(el);
    const model = rt.createModel(data, replies);
    const t0 = performance.now();
    const cleanup = widget.render({ model, el });
    const t1 = performance.now();
    void el.getBoundingClientRect().height;  // style + layout of the new DOM
    const t2 = performance.now();
    model.set("selected_feature", feature);
    model.save_changes();  // the stand-in answers with the exact column, as the kernel would
    void el.getBoundingClientRect().height;
    const t3 = performance.now();
    el.querySelectorAll(".sw-tok")[1234].dispatchEvent(new MouseEvent("mouseover", { bubbles: true }));
    void el.getBoundingClientRect().height;
    const t4 = performance.now();
    times.render.push(t1 - t0);
    times.layout.push(t2 - t0);
    times.select.push(t3 - t2);
    times.hover.push(t4 - t3);
    cleanup();
    el.remove();
  }
  return times;
}"""


def synthetic_acts(seed: int = 0, labelled: bool = False) -> Any:
    """2,000 tokens, ~60 active features each; a ~22-character label on every feature if asked."""
    rng = np.random.default_rng(seed)
    values = np.zeros((N_TOKENS, D_SAE), dtype=np.float32)
    rows = np.repeat(np.arange(1, N_TOKENS), L0)
    values[rows, rng.integers(0, D_SAE, rows.size)] = rng.exponential(1.0, rows.size).astype(np.float32)
    tokens = ["<bos>", *rng.choice(WORDS, N_TOKENS - 1).tolist()]
    labels = {i: f"label of feature {i}" for i in range(D_SAE)} if labelled else None
    return fake_activations(tokens, values, labels=labels)


def state_bytes(widget: Any) -> tuple[int, int, dict[str, Any]]:
    """(JSON bytes, binary bytes, state) of the widget's data traits as the comm carries them."""
    state = {k: v for k, v in widget.get_state().items() if k not in _MACHINERY}
    binary = 0

    def strip(node: Any) -> Any:
        nonlocal binary
        if isinstance(node, bytes | memoryview):
            binary += len(node)
            return None
        if isinstance(node, dict):
            return {key: strip(value) for key, value in node.items()}
        if isinstance(node, list):
            return [strip(value) for value in node]
        return node

    text = json.dumps(strip(state), separators=(",", ":"))
    return len(text.encode()), binary, state


def measure_bytes(acts: Any, labelled: Any) -> list[str]:
    lines = []
    for k in (4, 6, 8, 16):
        json_bytes, binary, _ = state_bytes(acts.widget(k=k))
        total, text, data = (json_bytes + binary) / N_TOKENS, json_bytes / N_TOKENS, binary / N_TOKENS
        lines.append(f"k={k:2d}: {total:6.1f} bytes/token ({text:.1f} JSON + {data:.1f} binary)")
    with_labels, _, _ = state_bytes(labelled.widget())
    without, _, _ = state_bytes(acts.widget())
    lines.append(
        f"labels on every feature (~22 chars): +{(with_labels - without) / N_TOKENS:.1f} bytes/token at k=16"
    )
    view = acts.widget()
    view.selected_feature = view.top_features[0]["feature"]
    column = len(view.selected_column["buffer"]) / N_TOKENS
    lines.append(f"selecting a feature sends {column:.1f} bytes/token (its exact float32 column)")
    lines.append(f"bundled module + css, once per widget: {len(view._esm) + len(view._css):,} bytes")
    return lines


def measure_render(acts: Any, runs: int = 15) -> tuple[list[str], str]:
    from playwright.sync_api import sync_playwright

    view = acts.widget()
    _, _, state = state_bytes(view)
    feature = view.top_features[0]["feature"]
    reply = {"selected_feature": {str(feature): {"selected_column": view._column(feature)}}}
    args = {
        "runtime": bundle_text("standalone.js"),
        "module": view._esm,
        "state": _encode(state),
        "responses": _encode(reply),
        "feature": feature,
        "runs": runs,
    }
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True
        )
        page = browser.new_page()
        page.add_style_tag(content=view._css)
        times = page.evaluate(MEASURE, args)
        version = browser.version
        browser.close()
    median = {name: statistics.median(values) for name, values in times.items()}
    return [
        f"render() of {N_TOKENS} tokens: {median['render']:.1f} ms",
        f"render() + first style/layout: {median['layout']:.1f} ms",
        f"select a feature (exact column, recolour {N_TOKENS} tokens, layout): {median['select']:.1f} ms",
        f"hover a token (detail list + layout): {median['hover']:.1f} ms",
    ], version


def machine() -> str:
    info = Path("/proc/cpuinfo")
    names = [
        line.split(":", 1)[1].strip()
        for line in info.read_text().splitlines()
        if line.startswith("model name")
    ]
    cpu = names[0] if names else platform.processor()
    load = os.getloadavg()[0]
    return f"{platform.node()} · {cpu} × {os.cpu_count()} · load average {load:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="append the results to benchmarks/RESULTS.md")
    options = parser.parse_args()
    acts = synthetic_acts()
    lines = measure_bytes(acts, synthetic_acts(labelled=True))
    render_lines, version = measure_render(acts)
    lines += render_lines
    python = platform.python_version()
    header = f"{datetime.date.today()} · {machine()} · Chromium {version} headless · Python {python}"
    print(header, *lines, sep="\n")
    if options.write:
        results = ROOT / "benchmarks" / "RESULTS.md"
        if not results.exists():
            results.write_text(
                "# Benchmark results\n\nOne section per benchmark: command, machine and date, figures.\n"
            )
        with results.open("a", encoding="utf-8") as out:
            out.write(f"\n## Token-activations view (`python benchmarks/token_view.py`)\n\n{header}\n\n")
            out.write("".join(f"- {line}\n" for line in lines))


if __name__ == "__main__":
    main()
