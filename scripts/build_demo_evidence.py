"""Build the demo SAE's shipped evidence: every feature's dashboard, statistics and automatic label.

One dashboard pass of the SAE in `--out` (default `scopewidgets/data/demo_sae`; all 8,192 features) on the
offline demo model, over the package's default corpus (`scopewidgets.core.corpus.default()`, cut into
128-token windows, BOS first; all of its windows unless `--windows N` asks for the first N), then writes into
that folder:

- `examples.safetensors`: every feature's dashboard in the Gemma Scope 2 layout plus this package's keys
  (`scopewidgets.dashboards.shipped`): 20 top examples (token windows of +-20, activations within
  `--act-context` tokens), 10 quantile groups of 5 samples, the histogram, exact statistics and the logit and
  similar-feature table. Its metadata holds the corpus fingerprint and the fingerprints of the SAE and of the
  model up to its layer: `scope.dashboard(f)` and `scope.dashboards(None)` then open from it instantly, and
  fall back to a real pass when the weights or the default corpus change;
- `feature_stats.safetensors`: float32 `density` (fraction of non-BOS tokens where the feature is > 0),
  `max` and `mean` (over the tokens where it fires) `[d_sae]`, and the same two at a text's first token
  (`start_density`, `start_mean`: over the sentence and line starts of the default corpus,
  `scopewidgets.features.starts`); metadata `n_tokens`, `n_starts`, `corpus` and `sae` (the SAE's
  fingerprint);
- `steering_jacobian.safetensors`: the demo model's steering Jacobian at the SAE's site
  (`features.logit.steering_jacobian`, ~4 minutes; reused when one is already stored under the same key,
  e.g. for another SAE on the same model), keyed by the model's fingerprint, site, layer and windows, so
  labels (and anyone calling it) on the unedited demo skip computing it;
- `auto_labels.json`: `{"feature": "label"}` for every feature, from `scopewidgets.label_features`.

`--labels-only` skips the pass: it rewrites the Jacobian and the labels from the evidence already in
`--out` (what `scope.dashboards(None)` opens), e.g. after the labels' definition changed. `--starts-only`
adds (or recomputes) the statistics at text starts in the `feature_stats.safetensors` already there
(seconds).

The pass is split into `--shards` shards (`scope.dashboards(..., shard=(rank, world))`) that are saved in
`--work` as they finish, so an interrupted build resumes where it stopped (run the same command again); the
merged state equals one pass over all the windows (`DashboardState.merge` is exact). Each shard file holds
a whole pass state (~0.4 GB for 8,192 features).

    python scripts/build_demo_evidence.py                                 # whole corpus, resumable
    python scripts/build_demo_evidence.py --windows 32 --out /tmp/sae     # a quick trial on a copy
    python scripts/build_demo_evidence.py --labels-only                   # Jacobian and labels only
    python scripts/build_demo_evidence.py --starts-only                   # statistics at text starts only
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the repository's scopewidgets, installed or not

import scopewidgets as sw  # noqa: E402
from scopewidgets.core.fingerprint import sae_fingerprint  # noqa: E402
from scopewidgets.dashboards import DashboardSet  # noqa: E402
from scopewidgets.dashboards.cache import corpus_fingerprint  # noqa: E402
from scopewidgets.dashboards.evidence import EVIDENCE_FILE  # noqa: E402
from scopewidgets.dashboards.rows import StateRows  # noqa: E402
from scopewidgets.dashboards.shipped import write_evidence  # noqa: E402
from scopewidgets.dashboards.state import DashboardState, PassSettings  # noqa: E402
from scopewidgets.features.logit import (  # noqa: E402
    JACOBIAN_FILE,
    context_windows,
    jacobian_key,
    save_jacobian,
    steering_jacobian,
)
from scopewidgets.features.starts import start_stats  # noqa: E402

DEMO_SAE = ROOT / "scopewidgets" / "data" / "demo_sae"
SEQ_LEN, N_BINS = 128, 50
PASS = {"n_examples": 20, "context": 5, "n_quantile_groups": 10, "per_group": 5}  # a default dashboard


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--windows", type=int, default=None, help="read the first N 128-token windows (default: all)"
    )
    parser.add_argument("--shards", type=int, default=8, help="pieces the pass is saved in (resumable)")
    parser.add_argument(
        "--use-shards", type=int, default=None, help="merge only the first N shards (a smaller, even sample)"
    )
    parser.add_argument("--work", type=Path, default=Path("/tmp/sw_evidence"), help="where shards are kept")
    parser.add_argument("--out", type=Path, default=DEMO_SAE, help="SAE folder the files are written to")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument(
        "--act-context", type=int, default=5, help="context activations kept each side of a top example"
    )
    parser.add_argument(
        "--labels-only", action="store_true", help="rewrite the Jacobian and labels from the shipped evidence"
    )
    parser.add_argument(
        "--starts-only", action="store_true", help="add the statistics at text starts to feature_stats only"
    )
    return parser.parse_args()


def corpus_windows(scope: sw.Scope, n_windows: int | None) -> tuple[torch.Tensor, int, str]:
    """The first `n_windows` windows of the default corpus (None: all), how many it has, a description."""
    texts = sw.corpus.default()
    every = sw.corpus.token_windows(scope.tokenizer, texts, SEQ_LEN)
    windows, total = every[:n_windows], every.shape[0]
    part = "all" if windows.shape[0] == total else f"the first {windows.shape[0]}"
    described = f"scopewidgets.core.corpus.default(): {part} of its {total} windows of {SEQ_LEN} tokens"
    return windows, total, described


def run_shards(scope: sw.Scope, windows: torch.Tensor, args: argparse.Namespace) -> DashboardState:
    """Every shard's state (from `--work` when already there), merged."""
    tag = f"w{windows.shape[0]}_q{PASS['n_quantile_groups']}x{PASS['per_group']}"
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
        "n_groups": PASS["n_quantile_groups"],
        "per_group": PASS["per_group"],
    }
    if "top_context" in {f.name for f in dataclasses.fields(PassSettings)}:
        settings["top_context"] = (int(tensors["top.ids"].shape[1]) - 1) // 2
    return PassSettings(**settings)


def write_stats(dashes: DashboardSet, corpus: str, out: Path) -> Path:
    """`feature_stats.safetensors`: density, max, mean (float32 [d_sae]) with n_tokens, corpus and the
    SAE's fingerprint (the statistics are not used for edited weights), then the statistics at text starts
    (`add_starts`)."""
    stats = dashes.rows.stats()
    tensors = {
        "density": torch.from_numpy(stats["density"]).float(),
        "max": torch.from_numpy(stats["max_activation"]).float(),
        "mean": torch.from_numpy(stats["mean_activation"]).float(),
    }
    for name, values in tensors.items():
        if not torch.isfinite(values).all():
            raise ValueError(f"{name} holds non-finite values")
    metadata = {"n_tokens": str(dashes.rows.n_tokens), "corpus": corpus, "sae": sae_fingerprint(dashes.sae)}
    return write_with_starts(dashes.scope, out / "feature_stats.safetensors", tensors, metadata)


def write_with_starts(scope: sw.Scope, path: Path, tensors: dict, metadata: dict) -> Path:
    """Write the statistics file at `path`: `tensors` and `metadata` with `start_density`, `start_mean` and
    `n_starts` added, the SAE's statistics at the first token of a text over the default corpus's sentence
    and line starts (`scopewidgets.features.starts.start_stats`)."""
    density, mean, n_starts = start_stats(scope, scope.saes[0], progress=False)
    tensors = {**tensors, "start_density": density.contiguous(), "start_mean": mean.contiguous()}
    save_file(tensors, path, metadata={**metadata, "n_starts": str(n_starts)})
    return path


def write_jacobian(scope: sw.Scope, out: Path) -> Path:
    """`steering_jacobian.safetensors`: the steering Jacobian at the SAE's site, over the default windows
    (taken from the cache or the shipped file when one is stored under the same key: the same model, site,
    layer and windows, so the same numbers; computed otherwise)."""
    sae = scope.saes[0]
    windows = context_windows(scope.tokenizer)
    key = jacobian_key(scope.model, sae.cfg.site_out or sae.cfg.site, sae.cfg.layer, windows)
    path = out / JACOBIAN_FILE
    save_jacobian(path, key, steering_jacobian(scope, sae, windows))
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
    model, tokenizer = sw.demo_model()
    scope = sw.Scope(model, tokenizer, saes=[sw.load_sae(args.out, dtype=torch.float32)])  # as sw.demo()
    if args.starts_only:
        start = time.perf_counter()
        path = args.out / "feature_stats.safetensors"
        with safe_open(str(path), framework="pt") as handle:  # kept as it is, the start statistics replaced
            metadata = handle.metadata() or {}
            tensors = {k: handle.get_tensor(k) for k in ("density", "max", "mean")}
        write_with_starts(scope, path, tensors, metadata)
        print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KB) in {time.perf_counter() - start:.1f} s")
        return
    if args.labels_only:
        for write in (
            lambda: write_jacobian(scope, args.out),
            lambda: write_labels(scope.dashboards(None), args.out),
        ):
            start = time.perf_counter()
            path = write()
            print(
                f"wrote {path} ({path.stat().st_size / 1024:.0f} KB) in {time.perf_counter() - start:.1f} s"
            )
        return
    windows, total, corpus = corpus_windows(scope, args.windows)
    if args.use_shards and args.use_shards < args.shards:
        corpus += f", those whose index modulo {args.shards} is below {args.use_shards} (an even sample)"
    print(f"{corpus}: {windows.numel():,} tokens", flush=True)
    start = time.perf_counter()
    state = run_shards(scope, windows, args)
    print(
        f"pass: {state.n_tokens:,} non-BOS tokens, {time.perf_counter() - start:.0f} s this run", flush=True
    )
    key = corpus_fingerprint(sw.corpus.default(), scope.tokenizer)
    whole = windows.shape[0] == total and not (args.use_shards and args.use_shards < args.shards)
    dashes = DashboardSet(StateRows(state), scope, scope.saes[0], N_BINS, key if whole else None)
    read = windows if state.n_sequences == windows.shape[0] else None
    writes = [
        lambda: write_stats(dashes, corpus, args.out),
        lambda: write_jacobian(scope, args.out),
        lambda: write_labels(dashes, args.out),
    ]
    if read is not None:  # an even sample of shards is not a run of windows: no evidence file
        writes.append(lambda: write_evidence(dashes, read, args.out / EVIDENCE_FILE, corpus=corpus,
                                             corpus_key=key, total_windows=total, act_context=args.act_context))  # fmt: skip
    for write in writes:
        start = time.perf_counter()
        path = write()
        print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KB) in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
