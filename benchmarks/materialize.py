"""Every dashboard of the demo SAE vs the floor for logit tables, in one run, same machine and threads.

    python benchmarks/materialize.py                  # real Gemma 3 270M + demo SAE, 32 x 128 random tokens
    python benchmarks/materialize.py --repeats 3 --seqs 64

Alternates, `--repeats` times:
  floor: one plain-torch chunked `W_dec @ W_U^T` with a running top-k (1,024 features x 16,384 vocabulary
         rows a block), nothing else: what any logit table costs on this machine;
  ours:  `DashboardSet.materialize()` on a fresh set over one finished pass (disk cache in a fresh folder,
         so nothing is reused): logit effects through the final norm (top and bottom), similar features,
         examples, quantile groups and histograms of every feature.
and prints both, their ratio (target <= 2) and the machine, load and date to copy into RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import scopewidgets as sw
from scopewidgets.core import sites
from scopewidgets.core.effects import _running_topk
from scopewidgets.dashboards import DashboardSet


@torch.inference_mode()
def floor(w_dec: torch.Tensor, w_u: torch.Tensor, k: int = 10, chunk: int = 16384, rows: int = 1024) -> None:
    """Top-k of `w_dec @ w_u.T` per row, in blocks: the least any logit table can cost."""
    for start in range(0, w_dec.shape[0], rows):
        block_rows = w_dec[start : start + rows]
        n = block_rows.shape[0]
        best = (torch.full((n, 0), -torch.inf), torch.zeros((n, 0), dtype=torch.long))
        for v in range(0, w_u.shape[0], chunk):
            block = block_rows @ w_u[v : v + chunk].T
            best = _running_topk(best, block, torch.arange(v, v + block.shape[1]).expand(n, -1), k, True)


def ours(scope: sw.Scope, dashes: DashboardSet) -> int:
    fresh = DashboardSet(dashes.rows.__class__(dashes.state), scope, dashes.sae, dashes.n_bins)
    with tempfile.TemporaryDirectory() as folder:
        os.environ["SCOPEWIDGETS_CACHE"] = folder
        fresh.materialize(progress=False)
    return len(fresh._memo)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seqs", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    scope = sw.demo()
    sae = scope.saes[0]
    tokens = torch.randint(3, sites.vocab_size(scope.model), (args.seqs, args.seq_len),
                           generator=torch.Generator().manual_seed(0))  # fmt: skip
    tokens[:, 0] = 2
    started = time.perf_counter()
    dashes = scope.dashboards(None, corpus=tokens, cache=False, progress=False)
    pass_s = time.perf_counter() - started
    print(f"pass: {pass_s:.1f} s", flush=True)
    w_dec, w_u = sae.W_dec.detach().float(), sites.unembedding(scope.model).detach().float()
    times: dict[str, list[float]] = {"floor": [], "ours": []}
    for _ in range(args.repeats):
        for name, run in (("floor", lambda: floor(w_dec, w_u)), ("ours", lambda: ours(scope, dashes))):
            started = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - started)
            print(f"{name}: {times[name][-1]:.1f} s", flush=True)
    best = {name: min(values) for name, values in times.items()}
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads; load {os.getloadavg()}; "
          f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC")  # fmt: skip
    print(
        f"d_sae {sae.cfg.d_sae}, vocab {w_u.shape[0]}, corpus {args.seqs} x {args.seq_len}, pass {pass_s:.1f} s"
    )
    for name, values in times.items():
        print(f"{name:>6}: " + ", ".join(f"{v:.1f}" for v in values) + f" s (best {best[name]:.1f})")
    print(f"ratio ours / floor (best of each): {best['ours'] / best['floor']:.2f}  (target <= 2)")
    print(f"ratio of medians: {statistics.median(times['ours']) / statistics.median(times['floor']):.2f}")


if __name__ == "__main__":
    main()
