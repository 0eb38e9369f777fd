"""Steering latency: the default + steered pair in one batch against plain `model.generate`, same run.

Measures, as medians over interleaved repeats (so machine drift hits every variant alike):
  (a) the pair (`scope.steer`, one batch of 2) vs ONE plain greedy `model.generate` of the same length,
      and vs the alternative design: two sequential generations (plain + a batch-1 steered generate);
  (b) time to the first streamed token of the pair vs a plain generate's first streamed token;
  (c) tokens per second per completion of the pair vs plain generate.
Goal (issue 5): the pair costs <= 1.2x one plain generation.

    python benchmarks/steering_latency.py                                  # real Gemma 3 270M, CPU
    python benchmarks/steering_latency.py --threads 1                      # pin torch threads
    python benchmarks/steering_latency.py --device cuda --model gemma2-2b-shapes   # GPU session
"""

from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import scopewidgets as sw
from scopewidgets.core.hooks import patch
from scopewidgets.testing import random_sae

PROMPT = "The Eiffel Tower is in the city of"
MODELS = ("gemma3-270m", "gemma3-270m-shapes", "gemma2-2b-shapes")
DEFAULT_LAYER = {"gemma3-270m": 6, "gemma3-270m-shapes": 6, "gemma2-2b-shapes": 12}
DEFAULT_WIDTH = {"gemma3-270m": 4096, "gemma3-270m-shapes": 4096, "gemma2-2b-shapes": 16384}


class IdTokenizer:
    """Stand-in tokenizer for random-weight models: ids are shown as `<id>`; BOS 2, EOS 1 like Gemma."""

    bos_token_id, eos_token_id = 2, 1

    def decode(self, ids: Any, skip_special_tokens: bool = False) -> str:
        return "".join(f"<{int(i)}>" for i in ids if not (skip_special_tokens and int(i) in (1, 2)))


def shapes_model(name: str, device: str, dtype: torch.dtype) -> Any:
    """Random weights with the real shapes (REFERENCE.md), built directly on the device."""
    from transformers import Gemma2Config, Gemma2ForCausalLM, Gemma3ForCausalLM, Gemma3TextConfig

    common = {"pad_token_id": 0, "eos_token_id": 1, "bos_token_id": 2}
    if name == "gemma2-2b-shapes":
        config = Gemma2Config(
            vocab_size=256000,
            hidden_size=2304,
            intermediate_size=9216,
            num_hidden_layers=26,
            num_attention_heads=8,
            num_key_value_heads=4,
            head_dim=256,
            query_pre_attn_scalar=256,
            sliding_window=4096,
            **common,
            attn_implementation="sdpa" if device == "cuda" else "eager",
        )
        cls = Gemma2ForCausalLM
    else:
        config = Gemma3TextConfig(
            vocab_size=262144,
            hidden_size=640,
            intermediate_size=2048,
            num_hidden_layers=18,
            num_attention_heads=4,
            num_key_value_heads=1,
            head_dim=256,
            sliding_window=512,
            **common,
        )
        cls = Gemma3ForCausalLM
    torch.manual_seed(0)
    with torch.device(device):
        model = cls(config)
    return model.to(dtype).eval()


def build_scope(args: argparse.Namespace) -> sw.Scope:
    dtype = getattr(torch, args.dtype)
    if args.model == "gemma3-270m":
        from scopewidgets.demo import demo_model

        model, tokenizer = demo_model(dtype=dtype)
        model = model.to(args.device)
    else:
        model, tokenizer = shapes_model(args.model, args.device, dtype), IdTokenizer()
    layer = args.layer if args.layer is not None else DEFAULT_LAYER[args.model]
    width = args.sae_width or DEFAULT_WIDTH[args.model]
    return sw.Scope(model, tokenizer, saes=[random_sae(model, "resid_post", layer, d_sae=width)])


def prompt_ids(scope: sw.Scope) -> torch.Tensor:
    if isinstance(scope.tokenizer, IdTokenizer):
        return torch.tensor([2, *range(1000, 1009)])
    return scope.tokenize(PROMPT)


class FirstTokenClock:
    """A `model.generate` streamer noting when the first NEW token arrives (the first put is the prompt)."""

    def __init__(self, start: float) -> None:
        self.start, self.puts, self.first = start, 0, float("nan")

    def put(self, _value: torch.Tensor) -> None:
        self.puts += 1
        if self.puts == 2:
            self.first = now() - self.start

    def end(self) -> None:
        pass


def now() -> float:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter()


def plain_generate(
    scope: sw.Scope, ids: torch.Tensor, n: int, edit: Callable | None = None
) -> dict[str, float]:
    """One batch-1 greedy `model.generate` of exactly n tokens (optionally with a steering hook)."""
    batch = ids.to(scope.device)[None]
    start = now()
    clock = FirstTokenClock(start)
    kwargs = {
        "max_new_tokens": n,
        "min_new_tokens": n,
        "do_sample": False,
        "streamer": clock,
        "attention_mask": torch.ones_like(batch),
    }
    with torch.inference_mode():
        if edit is None:
            scope.model.generate(batch, **kwargs)
        else:
            sae = scope.sae()
            with patch(scope.model, sae.cfg.site, sae.cfg.layer, edit):
                scope.model.generate(batch, **kwargs)
    return {"total": now() - start, "first": clock.first, "tokens": n}


def steered_single_edit(scope: sw.Scope, feature: int, strength: float) -> Callable:
    """`add` for a batch-1 generate: every position but BOS (position 0 of the prefill)."""
    direction = strength * scope.sae().W_dec[feature]

    def edit(h: torch.Tensor) -> torch.Tensor:
        h = h.clone()
        first = 1 if h.shape[1] > 1 else 0
        h[:, first:] += direction.to(h.dtype)
        return h

    return edit


def pair(scope: sw.Scope, ids: torch.Tensor, n: int, feature: int, strength: float) -> dict[str, float]:
    start = now()
    seen: list[float] = []
    out = scope.steer(ids, {feature: strength}, max_new_tokens=n, on_token=lambda *_: seen.append(now()))
    total = now() - start
    return {
        "total": total,
        "first": seen[0] - start,
        "tokens": max(len(out.default_ids), len(out.steered_ids)),
        "differs": out.first_difference,
    }


def measure(scope: sw.Scope, args: argparse.Namespace) -> dict[str, list[dict[str, float]]]:
    ids, n = prompt_ids(scope), args.tokens
    edit = steered_single_edit(scope, args.feature, args.strength)
    variants = {
        "plain": lambda: plain_generate(scope, ids, n),
        "steered_single": lambda: plain_generate(scope, ids, n, edit),
        "pair": lambda: pair(scope, ids, n, args.feature, args.strength),
    }
    for run in variants.values():  # warm-up
        run()
    results: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, run in variants.items():
            results[name].append(run())
    return results


def summarize(results: dict[str, list[dict[str, float]]]) -> dict[str, float]:
    med = {
        name: {key: statistics.median(r[key] for r in runs) for key in ("total", "first", "tokens")}
        for name, runs in results.items()
    }
    plain, single, both = med["plain"], med["steered_single"], med["pair"]
    return {
        "plain_s": plain["total"],
        "steered_single_s": single["total"],
        "pair_s": both["total"],
        "pair_vs_plain": both["total"] / plain["total"],
        "pair_vs_two_sequential": both["total"] / (plain["total"] + single["total"]),
        "plain_first_s": plain["first"],
        "pair_first_s": both["first"],
        "first_token_vs_plain_first": both["first"] / plain["first"],
        "plain_tok_s": plain["tokens"] / plain["total"],
        "pair_tok_s": both["tokens"] / both["total"],
        "tok_s_vs_plain": (both["tokens"] / both["total"]) / (plain["tokens"] / plain["total"]),
    }


def report(args: argparse.Namespace, summary: dict[str, float], results: dict) -> str:
    machine = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads"
    if args.device == "cuda":
        machine = torch.cuda.get_device_name()
    lines = [
        f"### Steering latency: {args.model}, {args.device} ({machine}), {args.dtype}, "
        f"{datetime.date.today().isoformat()}",
        f"`python benchmarks/steering_latency.py {' '.join(args.argv)}`".replace("  ", " "),
        f"{args.tokens} greedy tokens, SAE width {args.sae_width or DEFAULT_WIDTH[args.model]} at layer "
        f"{args.layer if args.layer is not None else DEFAULT_LAYER[args.model]}, median of {args.repeats} "
        f"interleaved repeats (steered differs from default at step "
        f"{[r['differs'] for r in results['pair']]}).",
        "",
        "| measure | plain generate | pair (one batch) | ratio |",
        "|---|---|---|---|",
    ]
    two_sequential = summary["plain_s"] + summary["steered_single_s"]
    rows = [
        ("(a) total, s", summary["plain_s"], summary["pair_s"], summary["pair_vs_plain"], 3),
        (
            "(a') two sequential (plain + steered batch-1), s",
            two_sequential,
            summary["pair_s"],
            summary["pair_vs_two_sequential"],
            3,
        ),
        (
            "(b) time to first streamed token, s",
            summary["plain_first_s"],
            summary["pair_first_s"],
            summary["first_token_vs_plain_first"],
            3,
        ),
        (
            "(c) tokens/s per completion",
            summary["plain_tok_s"],
            summary["pair_tok_s"],
            summary["tok_s_vs_plain"],
            1,
        ),
    ]
    lines += [
        f"| {name} | {a:.{digits}f} | {b:.{digits}f} | {ratio:.2f}x |" for name, a, b, ratio, digits in rows
    ]
    return "\n".join(lines)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=MODELS, default="gemma3-270m")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default=None, help="float32 on CPU, bfloat16 on CUDA by default")
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--layer", type=int, default=None)
    parser.add_argument("--sae-width", type=int, default=None)
    parser.add_argument("--feature", type=int, default=0)
    parser.add_argument("--strength", type=float, default=100.0)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    args = parser.parse_args(argv)
    args.dtype = args.dtype or ("bfloat16" if args.device == "cuda" else "float32")
    args.argv = sys.argv[1:] if argv is None else argv
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    scope = build_scope(args)
    results = measure(scope, args)
    print(report(args, summarize(results), results))


if __name__ == "__main__":
    main()
