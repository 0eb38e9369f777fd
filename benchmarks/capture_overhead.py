"""Capture overhead vs the model's own forward, measured side by side in one run.

Prints, for a batch of token windows: a plain full forward, the same forward with `capture` hooks that do not
stop (pure hook overhead), and `capture` stopping after layer L (what SAE analysis uses), as ratios.

    python benchmarks/capture_overhead.py                  # the real Gemma 3 270M (demo model), layer 6
    python benchmarks/capture_overhead.py --model tiny     # tiny random Gemma 3
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from scopewidgets.core.hooks import capture


def _timed(fn, repeats: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", choices=["demo", "tiny"], default="demo")
    parser.add_argument("--layer", type=int, default=6)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if args.model == "demo":
        from scopewidgets.demo import demo_model

        model, _ = demo_model()
    else:
        from scopewidgets.testing import tiny_gemma3

        model, _ = tiny_gemma3()
        args.layer = min(args.layer, 2)
    vocab = model.config.vocab_size
    ids = torch.randint(3, vocab, (args.batch, args.seq))
    ids[:, 0] = 2
    site = [("resid_post", args.layer)]

    @torch.inference_mode()
    def plain() -> None:
        model(input_ids=ids, use_cache=False, logits_to_keep=1)

    @torch.inference_mode()
    def hooked() -> None:
        with capture(model, site, stop=False):
            model(input_ids=ids, use_cache=False, logits_to_keep=1)

    @torch.inference_mode()
    def truncated() -> None:
        with capture(model, site):
            model(input_ids=ids, use_cache=False)

    times = {
        name: _timed(fn, args.repeats)
        for name, fn in (("plain", plain), ("hooked", hooked), ("truncated", truncated))
    }
    tokens = args.batch * args.seq
    print(
        f"{platform.node()} {args.model} batch {args.batch}x{args.seq}, layer {args.layer}, torch {torch.__version__}"
    )
    for name, seconds in times.items():
        print(
            f"{name:>10}: {tokens / seconds:9.0f} tok/s   ratio to plain {times['plain'] / seconds:5.2f}x speed"
        )


if __name__ == "__main__":
    main()
