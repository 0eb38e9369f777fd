"""What checking for in-place weight edits costs before a dashboard pass, against one forward, in one run.

Prints, for the real Gemma 3 270M and the demo SAE: the memo check (signatures + content probe, paid on every
`scope.dashboards(...)` call), a full SHA-256 of what the pass reads (paid once, and again after an edit),
and one forward stopped after the SAE's layer (1 window and a default CPU batch of 8), as ratios of CPU
time (best of 5; on a shared machine wall time is mostly other processes).

    python benchmarks/fingerprint_cost.py
"""

from __future__ import annotations

import platform
import time

import torch

from scopewidgets.core import fingerprint as fp
from scopewidgets.core.hooks import run_truncated


def _timed(fn, repeats: int = 5) -> float:
    """Best CPU time (all threads) of `repeats` calls: on a shared machine it varies far less than wall time."""
    fn()  # warm-up (and, for the memo, its first fill)
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def main() -> None:
    import scopewidgets as sw

    scope = sw.demo()
    model, sae = scope.model, scope.saes[0]
    layer = sae.cfg.layer
    named = fp.pass_tensors(model, layer)
    n_read = sum(t.numel() for _, t in named)
    n_all = sum(p.numel() for p in model.parameters())
    one = torch.randint(3, 1000, (1, 128))
    batch = torch.randint(3, 1000, (8, 128))
    site = [(sae.cfg.site, layer)]
    times = {
        "memo check (every call)": _timed(lambda: fp.pass_fingerprint(model, sae)),
        "full SHA-256 (first call / after an edit)": _timed(lambda: fp._content_hash("", named), 3),
        "forward 1 x 128": _timed(lambda: run_truncated(model, one, site)),
        "forward 8 x 128": _timed(lambda: run_truncated(model, batch, site)),
    }
    print(f"{platform.processor() or platform.machine()}, torch threads {torch.get_num_threads()}")
    print(f"pass reads {n_read / 1e6:.0f}M of {n_all / 1e6:.0f}M parameters (layer {layer})")
    base = times["forward 1 x 128"]
    for name, seconds in times.items():
        print(f"{name:45s} {seconds * 1e3:8.1f} ms CPU  {seconds / base:6.2f} x forward 1 x 128")


if __name__ == "__main__":
    main()
