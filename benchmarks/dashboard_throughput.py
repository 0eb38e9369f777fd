"""Dashboard pass throughput vs the truncated forward alone, in one run, same batches and device.

    python benchmarks/dashboard_throughput.py                                  # CPU, real Gemma 3 270M
    python benchmarks/dashboard_throughput.py --device cuda --model gemma2-2b-shapes --batches 40 --repeats 5
    python benchmarks/dashboard_throughput.py --model gemma3-270m-shapes --width 65536 --l0 300 --floor encoder

Measures, alternating A/B `--repeats` times on the same pre-tokenized batches:
  A: the floor: the forward stopped right after the SAE's layer (`hooks.capture`), nothing else; with
     `--floor encoder`, that forward plus the encoder's GEMM `x @ W_enc` (what any pass must compute: the
     fair floor for wide SAEs, whose GEMM is a large share of the work);
  B: `scope.dashboards(all features, corpus=<the same token tensor>)`, i.e. forward + sparse encode + the
     running-state update for every feature of the SAE (cache off, progress bar off).
and prints tokens/s of each and their ratio (B / A; goal >= 0.8). The SAE is random with per-feature
thresholds calibrated on the corpus so that its L0 is `--l0` (a Gemma Scope "medium" SAE has 30-60).
Then, unless `--no-memory`, the peak memory of a pass at two corpus sizes (CPU: each in its own process,
its peak RSS; CUDA: `torch.cuda.max_memory_allocated`), which must not grow with the corpus.

Models: `gemma3-270m` (the real demo model, offline), `gemma3-270m-shapes`, `gemma2-2b-shapes` (random
weights built from a config with the real shapes).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import scopewidgets as sw
from scopewidgets.core import sites
from scopewidgets.dashboards import kernels
from scopewidgets.dashboards.batch_update import update_from_scores
from scopewidgets.dashboards.encode import encode_scores, scores_scratch, site_activations
from scopewidgets.testing import random_sae

SHAPES = {
    "gemma3-270m-shapes": dict(
        vocab_size=262144, hidden_size=640, intermediate_size=2048, num_hidden_layers=18,
        num_attention_heads=4, num_key_value_heads=1, head_dim=256, sliding_window=512,
        max_position_embeddings=32768,
    ),
    "gemma2-2b-shapes": dict(
        vocab_size=256000, hidden_size=2304, intermediate_size=9216, num_hidden_layers=26,
        num_attention_heads=8, num_key_value_heads=4, head_dim=256, sliding_window=4096,
        max_position_embeddings=8192,
    ),
}  # fmt: skip
DEFAULTS = {"gemma3-270m": (6, 4096), "gemma3-270m-shapes": (6, 4096), "gemma2-2b-shapes": (12, 16384)}


def build_model(name: str, device: str, dtype: torch.dtype) -> tuple[Any, Any]:
    if name == "gemma3-270m":
        from scopewidgets.demo import demo_model

        model, tokenizer = demo_model(dtype)
        return model.to(device), tokenizer
    from transformers import Gemma2Config, Gemma2ForCausalLM, Gemma3ForCausalLM, Gemma3TextConfig

    config_cls, model_cls = (
        (Gemma2Config, Gemma2ForCausalLM) if "gemma2" in name else (Gemma3TextConfig, Gemma3ForCausalLM)
    )
    attention = "eager" if device == "cpu" and "gemma2" in name else "sdpa"
    config = config_cls(
        **SHAPES[name], attn_implementation=attention, bos_token_id=2, eos_token_id=1, pad_token_id=0
    )
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = model_cls(config).eval()
    finally:
        torch.set_default_dtype(previous)
    return model, _StubTokenizer(config.vocab_size)


class _StubTokenizer:
    """Enough of a tokenizer for token-tensor corpora (random-weight models have no real vocabulary)."""

    bos_token_id, eos_token_id = 2, 1

    def __init__(self, size: int) -> None:
        self.size = size

    def __len__(self) -> int:
        return self.size

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict[str, list[int]]:
        return {"input_ids": [3 + b for b in text.encode()]}

    def decode(self, ids: list[int], skip_special_tokens: bool = False) -> str:
        return f"<{ids[0]}>"


def corpus_tokens(tokenizer: Any, n_seq: int, seq_len: int, vocab: int, real: bool) -> torch.Tensor:
    """`[n_seq, seq_len]` windows: Python standard library text for a real tokenizer, random ids otherwise."""
    if real:
        import sysconfig

        from scopewidgets.core.corpus import token_windows

        files = sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))
        texts = (p.read_text(errors="ignore") for p in files)
        return token_windows(tokenizer, texts, seq_len, max_windows=n_seq)
    tokens = torch.randint(3, vocab, (n_seq, seq_len), generator=torch.Generator().manual_seed(0))
    tokens[:, 0] = 2
    return tokens


def calibrated_sae(scope: sw.Scope, layer: int, width: int, l0: float, sample: torch.Tensor) -> sw.SAE:
    """A random JumpReLU SAE whose per-feature thresholds make each feature fire on l0/width of tokens."""
    dtype = next(
        scope.model.parameters()
    ).dtype  # the SAE in the model's dtype (bf16 on GPU, as REFERENCE.md)
    sae = random_sae(scope.model, "resid_post", layer, d_sae=width, seed=0).to(scope.device, dtype)
    x = site_activations(scope.model, sae, sample.to(scope.device))
    x = x[sample.reshape(-1).to(scope.device) != 2]
    pre = sae.pre_activations(x).float()
    rank = max(1, min(len(pre), round((1 - l0 / width) * len(pre))))
    with torch.no_grad():
        sae.threshold.copy_(pre.kthvalue(rank, dim=0).values.clamp(min=1e-6).to(sae.dtype))
    return sae


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def floor_step(scope: sw.Scope, sae: sw.SAE, ids: torch.Tensor, encoder: bool) -> None:
    """The floor's work on one batch: the truncated forward, and with `encoder` the encoder's GEMM (in
    the SAE's dtype, as the pass computes it)."""
    x = site_activations(scope.model, sae, ids)
    if encoder:
        x = x.to(sae.dtype)
        if sae.cfg.apply_b_dec_to_input:
            x = x - sae.b_dec
        x @ sae.W_enc


def time_forward(scope: sw.Scope, sae: sw.SAE, batches: list[torch.Tensor], encoder: bool) -> float:
    sync(scope.device.type)
    start = time.perf_counter()
    for ids in batches:
        floor_step(scope, sae, ids, encoder)
    sync(scope.device.type)
    return time.perf_counter() - start


def time_pass(scope: sw.Scope, sae: sw.SAE, tokens: torch.Tensor, batch: int) -> float:
    sync(scope.device.type)
    start = time.perf_counter()
    scope.dashboards(None, corpus=tokens, sae=sae, batch_size=batch, cache=False, progress=False)
    sync(scope.device.type)
    return time.perf_counter() - start


def breakdown(scope: sw.Scope, sae: sw.SAE, batches: list[torch.Tensor], encoder: bool) -> dict[str, float]:
    """Seconds spent over `batches` in one pass, by stage (forward / encode / state update), with the
    floor alone timed on the same batch just before each (`alone`): interleaving batch by batch keeps
    a changing machine load out of the ratio `alone / (forward + encode + update)`."""
    from scopewidgets.dashboards.state import DashboardState, PassSettings

    state = DashboardState.empty(
        torch.arange(sae.cfg.d_sae), PassSettings(seq_len=batches[0].shape[1]), scope.device
    )
    spent = {"alone": 0.0, "forward": 0.0, "encode": 0.0, "update": 0.0}
    scratch = scores_scratch(sae, batches[0].numel(), scope.device)  # as the pass reuses it
    for i, ids in enumerate(batches):
        marks = [time.perf_counter()]
        floor_step(scope, sae, ids, encoder)
        sync(scope.device.type)
        marks.append(time.perf_counter())
        x = site_activations(scope.model, sae, ids)
        sync(scope.device.type)
        marks.append(time.perf_counter())
        seq = torch.arange(i * len(ids), (i + 1) * len(ids), device=scope.device)
        scores, bias, threshold = encode_scores(sae, x, None, scratch)
        sync(scope.device.type)
        marks.append(time.perf_counter())
        update_from_scores(state, ids, seq, scores, threshold, 2, bias)
        sync(scope.device.type)
        marks.append(time.perf_counter())
        for key, a, b in zip(spent, marks[:-1], marks[1:], strict=True):
            spent[key] += b - a
    l0 = float(state.hist.sum(dtype=torch.float64)) / max(state.n_tokens, 1)
    print(f"measured L0 (active pairs per non-BOS token): {l0:.1f}")
    return spent


def peak_memory(args: argparse.Namespace, n_seq: int) -> float:
    """Peak memory (MiB) of one pass over `n_seq` sequences, measured in a fresh process on CPU."""
    if args.device == "cuda":
        raise AssertionError
    command = [sys.executable, __file__, *sys.argv[1:], "--memory-child", str(n_seq)]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["peak_mib"]


def setup(args: argparse.Namespace) -> tuple[sw.Scope, sw.SAE, torch.Tensor]:
    layer, width = DEFAULTS[args.model]
    layer, width = args.layer or layer, args.width or width
    dtype = getattr(torch, args.dtype or ("bfloat16" if args.device == "cuda" else "float32"))
    model, tokenizer = build_model(args.model, args.device, dtype)
    scope = sw.Scope(model, tokenizer)
    vocab = sites.vocab_size(model)
    n_seq = args.memory_child or args.batch_size * args.batches
    tokens = corpus_tokens(
        tokenizer, max(n_seq, args.batch_size * 4), args.seq_len, vocab, args.model == "gemma3-270m"
    )
    sae = calibrated_sae(scope, layer, width, args.l0, tokens[: args.batch_size * 4])
    return scope, sae, tokens[:n_seq]


def memory_child(args: argparse.Namespace) -> None:
    scope, sae, tokens = setup(args)
    if args.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    scope.dashboards(None, corpus=tokens, sae=sae, batch_size=args.batch_size, cache=False, progress=False)
    print(json.dumps({"peak_mib": peak_rss_mib()}))


def peak_rss_mib() -> float:
    """This process's peak resident memory. On Linux from `VmHWM`, which belongs to the process's own
    address space: `ru_maxrss` also carries the parent's resident size at fork time across the exec (a child
    of this benchmark reported 5.8-6.8 GB where its own peak was 2.7 GB)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--model", default="gemma3-270m", choices=list(DEFAULTS))
    parser.add_argument("--layer", type=int)
    parser.add_argument("--width", type=int)
    parser.add_argument("--dtype")
    parser.add_argument("--l0", type=float, default=64.0)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--batches", type=int, default=6, help="batches per timed run")
    parser.add_argument("--repeats", type=int, default=3, help="A/B alternations")
    parser.add_argument("--memory-sizes", type=int, nargs=2, default=[16, 128], help="sequences")
    parser.add_argument(
        "--floor",
        default="forward",
        choices=["forward", "encoder"],
        help="what the pass is compared with: the truncated forward, or it plus the encoder GEMM",
    )
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument(
        "--warmup-passes",
        type=int,
        default=2,
        help="untimed whole passes first: on a VM the first passes of a process touch memory the host has not "
        "backed yet (measured: the state's allocation 2.7 s instead of 0.5 s, the pass 0.45 of the floor "
        "instead of 0.8-0.9); later passes reuse the pages the earlier ones freed",
    )
    parser.add_argument(
        "--torch-only", action="store_true", help="keep the pass off the compiled kernels (kernels.py)"
    )
    parser.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.batch_size = args.batch_size or (32 if args.device == "cuda" else 8)
    torch.set_grad_enabled(False)
    if args.torch_only:
        kernels.MIN_ENTRIES = 1 << 62
    if args.memory_child:
        return memory_child(args)
    report(args, *setup(args))


def report(args: argparse.Namespace, scope: sw.Scope, sae: sw.SAE, tokens: torch.Tensor) -> None:
    batches = [b.to(scope.device) for b in tokens.split(args.batch_size)]
    n_tokens = tokens.numel()
    encoder = args.floor == "encoder"
    time_forward(scope, sae, batches[:1], encoder)  # warm up both paths
    time_pass(scope, sae, tokens[: args.batch_size], args.batch_size)
    for _ in range(args.warmup_passes):
        time_pass(scope, sae, tokens, args.batch_size)
    forward, full = [], []
    for _ in range(args.repeats):
        forward.append(n_tokens / time_forward(scope, sae, batches, encoder))
        full.append(n_tokens / time_pass(scope, sae, tokens, args.batch_size))
    ratios = [b / a for a, b in zip(forward, full, strict=True)]
    device = torch.cuda.get_device_name() if args.device == "cuda" else f"{platform.processor() or 'cpu'}"
    print(
        f"machine: {platform.node()} {device}, torch {torch.__version__}, threads {torch.get_num_threads()}"
    )
    print(
        f"model {args.model}, SAE width {sae.cfg.d_sae} at resid_post layer {sae.cfg.layer}, L0 target {args.l0}, "
        f"compiled kernels {'off' if args.torch_only else 'on' if kernels.AVAILABLE else 'unavailable'}, "
        f"batch {args.batch_size} x {args.seq_len}, {n_tokens} tokens per run, {args.repeats} alternations"
    )
    floor = "forward + encoder GEMM" if encoder else "forward alone"
    print(f"{floor:22s}: {statistics.median(forward):10.0f} tok/s  {[round(v) for v in forward]}")
    print(f"{'dashboard pass':22s}: {statistics.median(full):10.0f} tok/s  {[round(v) for v in full]}")
    print(
        f"ratio (pass / floor): median {statistics.median(ratios):.3f}  per pair {[round(r, 3) for r in ratios]}"
    )
    spent = breakdown(scope, sae, batches, encoder)
    alone = spent.pop("alone")
    total = sum(spent.values())
    print(
        f"one pass, batch-interleaved with the floor ({floor}): "
        + ", ".join(f"{k} {v / total:.1%}" for k, v in spent.items())
        + f"; ratio {alone / total:.3f}"
    )
    if args.no_memory:
        return
    for n_seq in args.memory_sizes:
        if args.device == "cuda":
            torch.cuda.reset_peak_memory_stats()
            scope.dashboards(
                None,
                corpus=corpus_tokens(
                    scope.tokenizer, n_seq, args.seq_len, sites.vocab_size(scope.model), False
                ),
                sae=sae,
                batch_size=args.batch_size,
                cache=False,
                progress=False,
            )
            peak = torch.cuda.max_memory_allocated() / 2**20
        else:
            peak = peak_memory(args, n_seq)
        print(f"peak memory, {n_seq:6d} sequences ({n_seq * args.seq_len} tokens): {peak:9.1f} MiB")


if __name__ == "__main__":
    main()
