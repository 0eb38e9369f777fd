"""Train the demo SAE from activations cached by scripts/cache_activations.py, evaluate it, and ship it.

    python scripts/train_demo_sae.py --width 8192 --k 64 --out scopewidgets/data/demo_sae

Trains with the same loop as `scopewidgets.train_sae` (`fit`, then `to_jumprelu`), on batches drawn from the
fp16 cache in shuffled blocks; the last `--val-rows` cached tokens are kept out of training and give a quick
FVU / L0 / dead-feature check. With `--out`, it saves the SAE in bf16 (Gemma Scope 2 layout) with its
training record in `config.json`; `scripts/evaluate_demo_sae.py` then measures it on held-out text and
writes the model card. By default it trains in the model's output metric (`--metric output`,
`scopewidgets.training.metric`) with a density cap, and keeps a resumable checkpoint beside the cache:
stopped, the same command continues where it was.

A second stage continues a finished run on other text, with a second cache mixed into every batch:

    python scripts/train_demo_sae.py --continue-from ~/.cache/scopewidgets/demo_acts/train_ckpt.pt \
        --mix ~/.cache/scopewidgets/wiki_acts --mix-share 0.5 --tokens 1000000 --out scopewidgets/data/demo_sae

It keeps the first run's normalizer (output metric included) and reserved direction, trains `--tokens` more
(Adam restarted at `--lr`, default 0.3x the first run's) and records both stages in `config.json`. The
checkpoint holds no `--beta` / `--fisher-windows`: give the first run's, since they are recorded as given.

`--continue-from` also takes a finished SAE folder (the shipped demo SAE, say) when the first run's
checkpoint is gone: its weights are mapped back into a (Batch)TopK trainer (`training.convert.from_jumprelu`,
exact) in the normalized space of a normalizer fitted to this run's data (output metric included); `k`,
the method and the first stage's tokens and lr come from its `config.json`:

    python scripts/train_demo_sae.py --continue-from scopewidgets/data/demo_sae --acts ~/.cache/scopewidgets/demo_acts \
        --mix ~/.cache/scopewidgets/modern_acts --mix-share 0.5 --tokens 1000000 --out /tmp/demo_sae_next

`--mix` takes several caches, read as one in the order given (the shipped SAE's third stage: model-written
modern text and text on everyday subjects, `scripts/generate_modern_text.py --openings topics`). A folder
that was itself taken on keeps its record under `training["previous"]`, so the card lists every stage.
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


from scopewidgets import SAEConfig, __version__, load_sae, save_sae
from scopewidgets.demo import demo_model
from scopewidgets.training.convert import from_jumprelu, to_jumprelu
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


def mixed_batches(
    main: np.ndarray, n_main: int, extra: np.ndarray, n_extra: int, batch_size: int, share: float, seed: int
) -> Iterator[torch.Tensor]:
    """Batches of which `share` (rounded) comes from `extra`'s first `n_extra` rows and the rest from `main`'s
    first `n_main`, each stream shuffled in blocks and cycled, rows shuffled together."""
    from_extra = round(batch_size * share)
    streams = [
        cached_batches(main, n_main, batch_size - from_extra, 1 << 20, seed),
        cached_batches(extra, n_extra, from_extra, 1 << 20, seed + 1, block=1024),
    ]
    generator = torch.Generator().manual_seed(seed)
    for parts in zip(*streams, strict=False):
        rows = torch.cat(parts)
        yield rows[torch.randperm(len(rows), generator=generator)]


def cached_rows(folder: Path) -> tuple[np.ndarray, int, dict]:
    """A cache's activations (memmap), how many rows are filled, and its meta.json (empty if missing)."""
    progress = json.loads((folder / "progress.json").read_text())
    acts = np.load(folder / "acts.npy", mmap_mode="r")
    meta = json.loads((folder / "meta.json").read_text()) if (folder / "meta.json").exists() else {}
    return acts, progress["done"] * (acts.shape[0] // progress["n_windows"]), {**progress, **meta}


def mixed_caches(folders: list[Path]) -> tuple[np.ndarray, int, dict]:
    """Several caches as one (`cached_rows`): their filled rows concatenated in order (one cache: its
    memmap as is), the corpora joined with "; then ", their caching seconds summed."""
    parts = [cached_rows(folder) for folder in folders]
    if len(parts) == 1:
        return parts[0]
    acts = np.concatenate([rows[:n] for rows, n, _ in parts])
    meta = {**parts[0][2], "corpus": "; then ".join(str(m.get("corpus")) for _, _, m in parts),
            "seconds": sum(m.get("seconds", 0) for _, _, m in parts)}  # fmt: skip
    return acts, len(acts), meta


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
        help="resumable training state (default: <acts>/train_ckpt.pt; with --mix: <mix>/train_ckpt_mix<share>.pt;"
        " continuing: <mix or acts>/continue_<start>_<share>.pt)",
    )
    parser.add_argument(
        "--continue-from",
        type=Path,
        default=None,
        help="a finished run's checkpoint: train --tokens more on top of it",
    )
    parser.add_argument(
        "--matryoshka",
        default="",
        help="Matryoshka prefix sizes, comma-separated (e.g. 128,512,2048; default none: a flat SAE)",
    )
    parser.add_argument(
        "--mix",
        type=Path,
        nargs="+",
        default=None,
        help="second activation cache(s) mixed into batches (several: read as one, in the order given)",
    )
    parser.add_argument("--mix-share", type=float, default=0.5, help="share of each batch drawn from --mix")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not 0 < args.mix_share < 1:
        raise SystemExit(f"--mix-share must be in (0, 1), got {args.mix_share}")
    if args.continue_from is not None and not args.tokens:
        raise SystemExit("--continue-from needs --tokens: how many more tokens to train")

    prefixes = tuple(int(p) for p in args.matryoshka.split(",") if p.strip())
    acts, n_cached, meta = cached_rows(args.acts)
    continuing = args.continue_from is not None
    n_train = (
        n_cached - args.val_rows if continuing else min(n_cached - args.val_rows, args.tokens or n_cached)
    )
    val = torch.from_numpy(np.asarray(acts[n_cached - args.val_rows : n_cached])).float()
    rng = np.random.default_rng(1)
    sample = torch.from_numpy(np.asarray(acts[np.sort(rng.choice(n_train, 65_536, replace=False))])).float()
    if args.mix is not None:
        extra, n_extra, extra_meta = mixed_caches(args.mix)
        from_extra = round(65_536 * args.mix_share)
        rows = np.sort(rng.choice(n_extra, from_extra, replace=False))
        sample = torch.cat([sample[: 65_536 - from_extra], torch.from_numpy(np.asarray(extra[rows])).float()])
    metric, first, shipped = None, None, None
    if continuing and args.continue_from.is_dir():  # a finished SAE folder: its weights, a new normalizer
        shipped = load_sae(args.continue_from).to(torch.float32)
        record = json.loads((args.continue_from / "config.json").read_text()).get("training", {})
        first = {"seen": record.get("tokens", 0), "settings": {"lr": record.get("lr")}, "record": record}
        args.width, args.k = shipped.cfg.d_sae, record.get("k", args.k)
        args.method = record.get("method", args.method)
        prefixes = prefixes or tuple(record.get("matryoshka") or ())
        args.lr = args.lr if args.lr is not None else 0.3 * (record.get("lr") or 3e-4)
    if continuing and shipped is None:  # the first checkpoint: its normalizer, direction, weights; new Adam
        first = torch.load(args.continue_from, map_location="cpu", weights_only=True)
        settings = first["settings"]
        args.width, args.k, args.method = settings["width"], settings["k"], settings["method"]
        prefixes = prefixes or tuple(settings.get("prefixes", ()))
        norm = Normalizer(first["norm_mean"], first["norm_scale"], first.get("norm_metric"))
        metric = first.get("norm_metric")
        dominant = first["trainer"].get("dominant")
        args.lr = args.lr if args.lr is not None else 0.3 * settings["lr"]
    else:  # a first run, or a finished SAE taken on: normalizer (and reserved direction) from this data
        if args.metric == "output":
            fisher = cached_fisher(args.acts, args.fisher_windows, layer=meta.get("layer", 6))
            typical = typical_rows(sample)
            metric = metric_factor(metric_matrix(fisher, covariance(typical), args.beta))
            norm = Normalizer.fit(typical, metric=metric)
        else:
            norm = Normalizer.fit(sample)
        # a finished SAE brings its reserved pair (from_jumprelu below)
        dominant = dominant_direction(norm(sample)) if shipped is None else None
    total = args.tokens if continuing else n_train * args.epochs
    print(f"cached {n_cached:,} tokens; training {total:,} tokens over {n_train:,}; val {args.val_rows:,}")

    started = time.time()
    if args.mix is not None:
        batches = mixed_batches(acts, n_train, extra, n_extra, args.batch_size, args.mix_share, args.seed)
    else:
        batches = cached_batches(acts, n_train, args.batch_size, args.epochs, args.seed)
    if shipped is not None:  # `to_jumprelu` inverted in this run's normalized space
        start = from_jumprelu(shipped, norm, args.k, method=args.method, seed=args.seed, prefixes=prefixes)
    else:
        start = TopKTrainer(
            acts.shape[1], args.width, args.k, method=args.method, seed=args.seed, prefixes=prefixes
        )
    if args.cap is not None:
        start.max_per_token = args.cap or None
    start.max_density = args.max_density or None
    if dominant is not None and not args.no_reserve:
        start.reserve(dominant)
    if first is not None and shipped is None:
        start.load_state_dict(first["trainer"])
    reserved = start.dominant
    print("reserved direction:", None if reserved is None else reserved.abs().topk(3).indices.tolist())
    # a continuation's checkpoint is named by what fit() cannot check itself (where it starts, the mix share)
    if continuing:
        name = f"continue_{args.continue_from.name}_{args.mix_share:g}.pt"
    else:  # a fresh run mixing a second cache: the share names it too
        name = f"train_ckpt_mix{args.mix_share:g}.pt" if args.mix is not None else "train_ckpt.pt"
    default_checkpoint = (args.mix[0] if args.mix else args.acts) / name
    trainer, norm, stats = fit(batches, acts.shape[1], args.width, k=args.k, tokens=total, method=args.method,
                               lr=args.lr, seed=args.seed, norm=norm, trainer=start,
                               checkpoint=args.checkpoint or default_checkpoint)  # fmt: skip
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

    corpus = (
        meta.get("corpus", "scopewidgets.core.corpus.training_mix() (seed 0), from its start") + "; no BOS"
    )
    training = {
        "tokens": stats["tokens"], "epochs": args.epochs, "unique_tokens": n_train, "k": args.k,
        "method": args.method, "batch_size": args.batch_size, "lr": stats["lr"], "seed": args.seed,
        "seq_len": meta.get("seq_len", 128), "seconds_training": seconds,
        "seconds_activations": round(meta["seconds"], 1), "val_cached": val_metrics, "val_rows": args.val_rows,
        "reserved_direction": start.n_reserved > 0, "metric": "output" if metric is not None else "mse",
        "beta": args.beta if metric is not None else None,
        "fisher_tokens": args.fisher_windows * (meta.get("seq_len", 128) - 1) if metric is not None else 0,
        "max_density": args.max_density, "matryoshka": list(prefixes) or None, "corpus": corpus,
        "trainer": f"scopewidgets {__version__} (fit + to_jumprelu)", "date": date.today().isoformat(),
    }  # fmt: skip
    if args.mix is not None:
        training["mix"] = {"share": args.mix_share, "unique_tokens": n_extra, "corpus": extra_meta.get("corpus"),
                           "seconds_activations": round(extra_meta["seconds"], 1)}  # fmt: skip
    if first is not None:  # two stages: the first run as its checkpoint recorded it, then this one
        training["first_stage"] = {"tokens": int(first["seen"]), "lr": first["settings"]["lr"],
                                   "checkpoint": args.continue_from.name}  # fmt: skip
        training["tokens"] = int(first["seen"]) + stats["tokens"]
        training["continued_tokens"] = stats["tokens"]
    if shipped is not None:  # the first stage was a whole run of its own: its data and time, then this one's
        record = first["record"]
        if "first_stage" in record:  # taken on itself: its record (stages and measured figures) comes along
            training["previous"] = record
        training["first_stage"]["unique_tokens"] = record.get("unique_tokens")
        training["first_stage"]["from"] = "finished SAE folder (training.convert.from_jumprelu)"
        training["replayed_tokens"] = n_train  # activations of the first mix drawn beside the second cache
        training["unique_tokens"], training["epochs"] = (
            record.get("unique_tokens", n_train),
            record.get("epochs", 1),
        )
        training["seconds_activations"] = round(record.get("seconds_activations", 0) + meta["seconds"], 1)
        training["seconds_training"] = round(record.get("seconds_training", 0) + seconds, 1)
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
