"""Train the demo SAE from activations cached by scripts/cache_activations.py, evaluate it, and ship it.

    python scripts/train_demo_sae.py --width 8192 --k 64 --out scopewidgets/data/demo_sae

Trains with the same loop as `scopewidgets.train_sae` (`fit`, then `to_jumprelu`), on batches drawn from the
fp16 cache in shuffled blocks; the last `--val-rows` cached tokens are kept out of training and give a quick
FVU / L0 / dead-feature check. With `--out`, it saves the SAE in bf16 (Gemma Scope 2 layout) with its
training record in `config.json`; `scripts/evaluate_demo_sae.py` then measures it on held-out text and
writes the model card. By default it trains in the model's output metric (`--metric output`,
`scopewidgets.training.metric`) with a density cap, and keeps a resumable checkpoint beside the cache:
stopped, the same command continues where it was.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


from scopewidgets import SAEConfig, __version__, save_sae
from scopewidgets.demo import demo_model
from scopewidgets.training.convert import to_jumprelu
from scopewidgets.training.metric import covariance, metric_factor, metric_matrix, output_fisher, typical_rows
from scopewidgets.training.train import fit
from scopewidgets.training.trainer import Normalizer, TopKTrainer, dominant_direction


def cached_batches(
    acts: np.ndarray, n_rows: int, batch_size: int, epochs: int, seed: int, block: int = 4096, group: int = 48
) -> Iterator[torch.Tensor]:
    """Shuffled `[batch_size, d]` float32 batches: random groups of contiguous blocks, rows shuffled within."""
    rng = np.random.default_rng(seed)
    n_blocks = n_rows // block
    for _ in range(epochs):
        order = rng.permutation(n_blocks)
        for start in range(0, n_blocks, group):
            rows = np.concatenate(
                [acts[b * block : (b + 1) * block] for b in np.sort(order[start : start + group])]
            )
            data = torch.from_numpy(rows).float()[torch.from_numpy(rng.permutation(len(rows)))]
            for first in range(0, len(data) - batch_size + 1, batch_size):
                yield data[first : first + batch_size]


def cached_fisher(acts_dir: Path, n_windows: int, layer: int, batch: int = 4) -> torch.Tensor:
    """The output metric's Fisher matrix on the first `n_windows` cached training windows (kept on disk)."""
    path = acts_dir / f"fisher_{n_windows}.pt"
    if path.is_file():
        return torch.load(path, weights_only=True)
    model, _ = demo_model()
    windows = torch.from_numpy(np.load(acts_dir / "tokens.npy", mmap_mode="r")[:n_windows].astype(np.int64))
    fisher = output_fisher(model, windows.split(batch), "resid_post", layer)
    torch.save(fisher, path)
    return fisher


def cached_metrics(sae, x: torch.Tensor) -> dict[str, float]:
    """FVU, L0 and never-firing fraction of `sae` on raw activations `x` (chunked)."""
    sse, fired, l0 = 0.0, torch.zeros(sae.cfg.d_sae, dtype=torch.bool), 0.0
    for chunk in x.split(8192):
        f = sae.encode(chunk)
        sse += float((chunk - sae.decode(f)).double().pow(2).sum())
        fired |= (f > 0).any(0)
        l0 += float((f > 0).sum())
    variance = float((x.double() - x.double().mean(0)).pow(2).sum())
    return {
        "fvu": round(sse / variance, 4),
        "l0": round(l0 / len(x), 2),
        "dead": round(1 - fired.float().mean().item(), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--acts", type=Path, default=Path("~/.cache/scopewidgets/demo_acts").expanduser())
    parser.add_argument("--width", type=int, default=8192)
    parser.add_argument("--k", type=int, default=64)
    parser.add_argument("--method", default="batchtopk")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument(
        "--tokens", type=int, default=None, help="cap on the cached tokens used (default all)"
    )
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--val-rows", type=int, default=131_072)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--eval-windows", type=int, default=128)
    parser.add_argument("--quick-windows", type=int, default=16)
    parser.add_argument("--out", type=Path, default=None, help="save, evaluate and write the model card here")
    parser.add_argument(
        "--cap", type=int, default=None, help="BatchTopK features per token at most (0: none)"
    )
    parser.add_argument(
        "--no-reserve", action="store_true", help="no features reserved for massive activations"
    )
    parser.add_argument(
        "--dump", type=Path, default=None, help="save trainer + normalizer tensors (for study)"
    )
    parser.add_argument(
        "--metric",
        choices=("mse", "output"),
        default="output",
        help="train in plain MSE or the output metric",
    )
    parser.add_argument("--beta", type=float, default=0.1, help="output metric: share left to plain MSE")
    parser.add_argument(
        "--fisher-windows",
        type=int,
        default=96,
        help="cached training windows the output metric is estimated on",
    )
    parser.add_argument(
        "--max-density",
        type=float,
        default=0.05,
        help="BatchTopK: largest share of a batch one feature fires on",
    )
    parser.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        help="resumable training state (default: <acts>/train_ckpt.pt)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    meta = json.loads((args.acts / "progress.json").read_text())
    cache_meta = (
        json.loads((args.acts / "meta.json").read_text()) if (args.acts / "meta.json").exists() else {}
    )
    acts = np.load(args.acts / "acts.npy", mmap_mode="r")
    n_cached = meta["done"] * (acts.shape[0] // meta["n_windows"])
    n_train = min(n_cached - args.val_rows, args.tokens or n_cached)
    val = torch.from_numpy(np.asarray(acts[n_cached - args.val_rows : n_cached])).float()
    sample_idx = np.sort(np.random.default_rng(1).choice(n_train, 65_536, replace=False))
    sample = torch.from_numpy(np.asarray(acts[sample_idx])).float()
    metric = None
    if args.metric == "output":
        fisher = cached_fisher(args.acts, args.fisher_windows, layer=cache_meta.get("layer", 6))
        typical = typical_rows(sample)
        metric = metric_factor(metric_matrix(fisher, covariance(typical), args.beta))
        norm = Normalizer.fit(typical, metric=metric)
    else:
        norm = Normalizer.fit(sample)
    dominant = dominant_direction(norm(sample))
    print("reserved direction:", None if dominant is None else dominant.abs().topk(3).indices.tolist())
    total = n_train * args.epochs
    print(
        f"cached {n_cached:,} tokens; training on {n_train:,} x {args.epochs} epoch(s); val {args.val_rows:,}"
    )

    started = time.time()
    batches = cached_batches(acts, n_train, args.batch_size, args.epochs, args.seed)
    start = TopKTrainer(acts.shape[1], args.width, args.k, method=args.method, seed=args.seed)
    if args.cap is not None:
        start.max_per_token = args.cap or None
    start.max_density = args.max_density or None
    if dominant is not None and not args.no_reserve:
        start.reserve(dominant)
    trainer, norm, stats = fit(batches, acts.shape[1], args.width, k=args.k, tokens=total, method=args.method,
                               lr=args.lr, seed=args.seed, norm=norm, trainer=start,
                               checkpoint=args.checkpoint or args.acts / "train_ckpt.pt")  # fmt: skip
    seconds = round(time.time() - started, 1)
    cfg = SAEConfig(d_in=acts.shape[1], d_sae=args.width, architecture="jumprelu", site="resid_post", layer=6,
                    model_name="google/gemma-3-270m (Q4_K_M GGUF, dequantized)", source="scopewidgets demo SAE")  # fmt: skip
    if args.dump is not None:
        state = {f"trainer.{k}": v for k, v in trainer.state_dict().items()}
        torch.save({**state, "norm.mean": norm.mean, "norm.scale": torch.tensor(norm.scale)}, args.dump)
    sae = to_jumprelu(trainer, norm, sample.split(4096), cfg)
    val_metrics = cached_metrics(sae, val)
    print(json.dumps({"train": stats, "val_cached": val_metrics, "seconds": seconds}))
    if args.out is None:
        return

    training = {
        "tokens": stats["tokens"], "epochs": args.epochs, "unique_tokens": n_train, "k": args.k,
        "method": args.method, "batch_size": args.batch_size, "lr": stats["lr"], "seed": args.seed,
        "seq_len": cache_meta.get("seq_len", 128), "seconds_training": seconds,
        "seconds_activations": round(meta["seconds"], 1), "val_cached": val_metrics, "val_rows": args.val_rows,
        "reserved_direction": start.n_reserved > 0, "metric": args.metric,
        "beta": args.beta if args.metric == "output" else None,
        "fisher_tokens": args.fisher_windows * (cache_meta.get("seq_len", 128) - 1) if metric is not None else 0,
        "max_density": args.max_density,
        "corpus": "scopewidgets.core.corpus.training_mix() (seed 0), first windows; BOS excluded",
        "trainer": f"scopewidgets {__version__} (fit + to_jumprelu)", "date": date.today().isoformat(),
    }  # fmt: skip
    sae.cfg.extra["training"] = training
    save_sae(sae, args.out, dtype=torch.bfloat16)
    config = json.loads((args.out / "config.json").read_text())
    config["training"] = training
    (args.out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    print(json.dumps(training, indent=2))
    print(
        f"Next: python scripts/build_demo_evidence.py --out {args.out}; python scripts/evaluate_demo_sae.py {args.out}"
    )


if __name__ == "__main__":
    main()
