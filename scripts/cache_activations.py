"""Cache the demo SAE's training activations to disk: Gemma 3 270M, resid_post of one layer, BOS excluded.

Runs the real model over the start of `scopewidgets.core.corpus.training_mix()` (fixed shuffle), stopped after
the layer, and writes the non-BOS activations as an fp16 memmap `[n_tokens, d_model]` plus the token
windows, so that SAE hyperparameters can be retried without re-running the model (CPU: ~2,000 tok/s).

    python scripts/cache_activations.py --tokens 4600000 --out ~/.cache/scopewidgets/demo_acts
    python scripts/cache_activations.py --source wikipedia --tokens 500000 --out ~/.cache/scopewidgets/wiki_acts
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scopewidgets.core.corpus import SOURCES, iter_token_windows, training_mix
from scopewidgets.core.hooks import run_truncated
from scopewidgets.demo import demo_model

FP16_MAX = 65504.0


def extend(out: Path, previous: dict, n_windows: int, body: int, d_model: int, seq_len: int) -> None:
    """Grow a finished or partial cache to `n_windows` in place of starting again: the mix and its windows are
    deterministic, so the cached rows are the first rows of the larger cache (copied in chunks, then swapped)."""
    done = previous["done"]
    for name, shape, dtype in (
        ("acts.npy", (n_windows * body, d_model), np.float16),
        ("tokens.npy", (n_windows, seq_len), np.int32),
    ):
        old = np.load(out / name, mmap_mode="r")
        new = np.lib.format.open_memmap(out / f"{name}.grow", mode="w+", dtype=dtype, shape=shape)
        rows = done * body if name == "acts.npy" else done
        for start in range(0, rows, 1 << 18):
            stop = min(rows, start + (1 << 18))
            new[start:stop] = old[start:stop]
        new.flush()
        del old, new
        (out / f"{name}.grow").replace(out / name)
    print(f"extended the cache from {previous['n_windows']} to {n_windows} windows ({done} already done)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=4_600_000, help="non-BOS tokens to cache")
    parser.add_argument("--layer", type=int, default=6)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 copes best with a busy CPU)")
    parser.add_argument("--out", type=Path, default=Path("~/.cache/scopewidgets/demo_acts").expanduser())
    parser.add_argument(
        "--source", action="append", choices=SOURCES, help="only these training-mix sources (repeatable)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, tokenizer = demo_model()
    body = args.seq_len - 1
    n_windows = -(-args.tokens // body)
    args.out.mkdir(parents=True, exist_ok=True)
    d_model = model.config.hidden_size
    progress_file = args.out / "progress.json"
    previous = json.loads(progress_file.read_text()) if progress_file.is_file() else None
    if previous is not None and previous["n_windows"] < n_windows:
        extend(args.out, previous, n_windows, body, d_model, args.seq_len)
        previous["n_windows"] = n_windows
        progress_file.write_text(json.dumps(previous))
    resume = previous is not None and previous["n_windows"] == n_windows
    mode = "r+" if resume else "w+"
    acts = np.lib.format.open_memmap(
        args.out / "acts.npy", mode=mode, dtype=np.float16, shape=(n_windows * body, d_model)
    )
    tokens = np.lib.format.open_memmap(
        args.out / "tokens.npy", mode=mode, dtype=np.int32, shape=(n_windows, args.seq_len)
    )
    state = (
        json.loads(progress_file.read_text())
        if resume
        else {"n_windows": n_windows, "done": 0, "seconds": 0.0, "clipped": 0}
    )
    windows = iter_token_windows(tokenizer, training_mix(args.source), args.seq_len)
    last = None
    for _ in range(state["done"]):
        last = next(windows)  # the mix and its windows are deterministic: skip what is already cached
    if last is not None and not np.array_equal(last.numpy(), tokens[state["done"] - 1]):
        raise ValueError(
            f"{args.out} was cached from a different training mix (window {state['done'] - 1} differs): "
            "install the same sources (see training_mix) or cache into a new folder"
        )
    start, done, clipped = time.time() - state["seconds"], state["done"], state["clipped"]
    bar = tqdm(
        total=n_windows * body,
        initial=done * body,
        unit="tok",
        desc=f"resid_post@{args.layer}",
        mininterval=10,
    )
    while done < n_windows:
        rows = [next(windows) for _ in range(min(args.batch, n_windows - done))]
        ids = torch.stack(rows)
        out = run_truncated(model, ids, [("resid_post", args.layer)])["resid_post", args.layer][:, 1:]
        clipped += int((out.abs() > FP16_MAX).sum())
        flat = out.reshape(-1, d_model).clamp(-FP16_MAX, FP16_MAX).numpy().astype(np.float16)
        acts[done * body : done * body + len(flat)] = flat
        tokens[done : done + len(rows)] = ids.numpy()
        done += len(rows)
        bar.update(len(flat))
        if done - state["done"] >= 256 or done == n_windows:  # not `done % 256`: a resumed count may be odd
            acts.flush()
            tokens.flush()
            state.update(done=done, seconds=time.time() - start, clipped=clipped)
            progress_file.write_text(json.dumps(state))
    bar.close()
    acts.flush()
    tokens.flush()
    meta = {
        "layer": args.layer,
        "site": "resid_post",
        "seq_len": args.seq_len,
        "n_windows": n_windows,
        "n_tokens": n_windows * body,
        "d_model": d_model,
        "seconds": round(time.time() - start, 1),
        "clipped_values": clipped,
        "corpus": f"scopewidgets.core.corpus.training_mix({args.source or ''}) (seed 0), from its start",
    }
    (args.out / "meta.json").write_text(json.dumps(meta, indent=2))
    print(json.dumps(meta))


if __name__ == "__main__":
    main()
