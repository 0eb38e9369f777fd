"""Build the demo SAE's shipped evidence: per-feature statistics and an automatic label for every feature.

One dashboard pass of the demo SAE (all 8,192 features) over the first `--windows` 128-token windows of the
package's default corpus (`scopewidgets.core.corpus.default()`, whose passages come interleaved across sources,
so any prefix mixes genres), then writes into the SAE folder (default `scopewidgets/data/demo_sae`):

- `feature_stats.safetensors`: float32 `density` (fraction of non-BOS tokens where the feature is > 0),
  `max` (largest activation) and `mean` (mean activation over the tokens where it fires), each `[d_sae]`;
  metadata `n_tokens` (non-BOS tokens seen) and `corpus` (what was read);
- `auto_labels.json`: `{"feature": "label"}` for every feature, from `scopewidgets.label_features`.

The pass is split into `--shards` shards (`scope.dashboards(..., shard=(rank, world))`) that are saved in
`--work` as they finish, so an interrupted build resumes where it stopped; the merged state equals one pass
over all the windows (`DashboardState.merge` is exact). On a 2-core shared CPU the pass reads ~250-300
tokens/s, so the whole corpus (~563 k tokens) would take over half an hour: the default reads a subset.

    python scripts/build_demo_evidence.py                 # pass (resumable), stats, labels
    python scripts/build_demo_evidence.py --windows 64    # a quick trial (writes to --out, so point it away)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the repository's scopewidgets, installed or not

import scopewidgets as sw  # noqa: E402
from scopewidgets.dashboards import DashboardSet  # noqa: E402
from scopewidgets.dashboards.rows import StateRows  # noqa: E402
from scopewidgets.dashboards.state import DashboardState, PassSettings  # noqa: E402

DEMO_SAE = ROOT / "scopewidgets" / "data" / "demo_sae"
SEQ_LEN = 128
PASS = {"n_examples": 20, "context": 5, "n_quantile_groups": 0}  # labels need top examples, not quantiles


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--windows", type=int, default=2400, help="128-token windows of the corpus to read")
    parser.add_argument("--shards", type=int, default=8, help="pieces the pass is saved in (resumable)")
    parser.add_argument(
        "--use-shards", type=int, default=None, help="merge only the first N shards (a smaller, even sample)"
    )
    parser.add_argument("--work", type=Path, default=Path("/tmp/sw_evidence"), help="where shards are kept")
    parser.add_argument("--out", type=Path, default=DEMO_SAE, help="SAE folder the files are written to")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    return parser.parse_args()


def corpus_windows(scope: sw.Scope, n_windows: int) -> tuple[torch.Tensor, str]:
    """The first `n_windows` windows of the default corpus, and a description of them."""
    texts = sw.corpus.default()
    every = sw.corpus.token_windows(scope.tokenizer, texts, SEQ_LEN)
    windows, total = every[:n_windows], every.shape[0]
    described = (
        f"scopewidgets.core.corpus.default(): the first {windows.shape[0]} of its {total} windows of {SEQ_LEN} "
        f"tokens (BOS first)"
    )
    return windows, described


def run_shards(scope: sw.Scope, windows: torch.Tensor, args: argparse.Namespace) -> DashboardState:
    """Every shard's state (from `--work` when already there), merged."""
    tag = f"w{windows.shape[0]}"
    args.work.mkdir(parents=True, exist_ok=True)
    merged = None
    for rank in range(args.use_shards or args.shards):
        path = args.work / f"state_{tag}_{rank}of{args.shards}.safetensors"
        if path.is_file():
            tensors = load_file(path)
            state = DashboardState.from_tensors(tensors, saved_settings(tensors))
            print(f"shard {rank + 1}/{args.shards}: read {path}", flush=True)
        else:
            start = time.perf_counter()
            dashes = scope.dashboards(None, corpus=windows, shard=(rank, args.shards), cache=False, **PASS)
            state = dashes.state
            save_file({k: v.contiguous().cpu() for k, v in state.tensors().items()}, path)
            seconds = time.perf_counter() - start
            print(f"shard {rank + 1}/{args.shards}: {state.n_tokens:,} tokens in {seconds:.0f} s "
                  f"({state.n_tokens / seconds:.0f} tokens/s)", flush=True)  # fmt: skip
        merged = state if merged is None else merged.merge(state)
    assert merged is not None
    return merged


def saved_settings(tensors: dict[str, torch.Tensor]) -> PassSettings:
    """The settings of a saved shard (its top examples' window may be narrower than today's default)."""
    settings = {
        "seq_len": SEQ_LEN,
        "n_examples": PASS["n_examples"],
        "context": PASS["context"],
        "n_groups": 0,
    }
    if "top_context" in {f.name for f in dataclasses.fields(PassSettings)}:
        settings["top_context"] = (int(tensors["top.ids"].shape[1]) - 1) // 2
    return PassSettings(**settings)


def write_stats(dashes: DashboardSet, corpus: str, out: Path) -> Path:
    """`feature_stats.safetensors`: density, max, mean (float32 [d_sae]) with n_tokens and corpus."""
    stats = dashes.rows.stats()
    tensors = {
        "density": torch.from_numpy(stats["density"]).float(),
        "max": torch.from_numpy(stats["max_activation"]).float(),
        "mean": torch.from_numpy(stats["mean_activation"]).float(),
    }
    for name, values in tensors.items():
        if not torch.isfinite(values).all():
            raise ValueError(f"{name} holds non-finite values")
    path = out / "feature_stats.safetensors"
    save_file(tensors, path, metadata={"n_tokens": str(dashes.rows.n_tokens), "corpus": corpus})
    return path


def write_labels(dashes: DashboardSet, out: Path) -> Path:
    """`auto_labels.json`: an automatic label for every feature."""
    labels = sw.label_features(dashes)
    path = out / "auto_labels.json"
    text = {str(f): labels[f] for f in sorted(labels)}
    path.write_text(json.dumps(text, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    scope = sw.demo()
    windows, corpus = corpus_windows(scope, args.windows)
    if args.use_shards and args.use_shards < args.shards:
        corpus += f", those whose index modulo {args.shards} is below {args.use_shards} (an even sample)"
    print(f"{corpus}: {windows.numel():,} tokens", flush=True)
    start = time.perf_counter()
    state = run_shards(scope, windows, args)
    print(
        f"pass: {state.n_tokens:,} non-BOS tokens, {time.perf_counter() - start:.0f} s this run", flush=True
    )
    dashes = DashboardSet(StateRows(state), scope, scope.saes[0])
    args.out.mkdir(parents=True, exist_ok=True)
    for write in (lambda: write_stats(dashes, corpus, args.out), lambda: write_labels(dashes, args.out)):
        start = time.perf_counter()
        path = write()
        print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KB) in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
