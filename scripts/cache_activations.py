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
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from activation_cache import ActivationCache

from scopewidgets.core.corpus import SOURCES, iter_token_windows, training_mix
from scopewidgets.core.hooks import run_truncated
from scopewidgets.demo import demo_model


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
    cache = ActivationCache(args.out, -(-args.tokens // (args.seq_len - 1)), args.seq_len,
                            model.config.hidden_size, grow=True)  # fmt: skip
    windows = iter_token_windows(tokenizer, training_mix(args.source), args.seq_len)
    last = None
    for _ in range(cache.done):
        last = next(windows)  # the mix and its windows are deterministic: skip what is already cached
    if last is not None and not np.array_equal(last.numpy(), cache.tokens[cache.done - 1]):
        raise ValueError(
            f"{args.out} was cached from a different training mix (window {cache.done - 1} differs): "
            "install the same sources (see training_mix) or cache into a new folder"
        )
    n_windows, body = cache.n_windows, cache.body
    bar = tqdm(total=n_windows * body, initial=cache.done * body, unit="tok", desc=f"resid_post@{args.layer}",
               mininterval=10)  # fmt: skip
    saved = cache.done
    while cache.done < n_windows:
        ids = torch.stack([next(windows) for _ in range(min(args.batch, n_windows - cache.done))])
        out = run_truncated(model, ids, [("resid_post", args.layer)])["resid_post", args.layer][:, 1:]
        cache.append(ids, out)
        bar.update(out.shape[0] * body)
        if cache.done - saved >= 256 or cache.done == n_windows:
            cache.save_progress()
            saved = cache.done
    bar.close()
    corpus = f"scopewidgets.core.corpus.training_mix({args.source or ''}) (seed 0), from its start"
    print(json.dumps(cache.finish(args.layer, corpus)))


if __name__ == "__main__":
    main()
