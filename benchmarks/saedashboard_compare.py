"""End to end against SAEDashboard 0.8.0: one corpus pass + every feature's dashboard, same weights and tokens.

    python benchmarks/saedashboard_compare.py                      # 64 x 128 held-out tokens, 512-feature subset
    python benchmarks/saedashboard_compare.py --subset 256 --random-tokens
    python benchmarks/saedashboard_compare.py --no-activation-cache   # SaeVisRunner's default: a forward a batch

Both sides get the real Gemma 3 270M of the demo (our cached HF-format copy) and the demo SAE (JumpReLU,
resid_post of layer 6, 8,192 features), the same `[seqs, seq_len]` token tensor and 2 CPU threads:
  ours:  `scope.dashboards(features, corpus=tokens)` then `DashboardSet.materialize()` (fresh disk cache):
         top examples, quantile groups, histograms, top/bottom logits through the final norm, similar
         features; on all features, and on the subset for a like-for-like row;
  SAEDashboard: in its own throwaway venv (created under `~/.cache/scopewidgets/bench/` if missing, with
         torch pinned to this machine's CPU build; never in our dependencies), `benchmarks/_saedashboard_worker.py`
         loads the same weights into TransformerLens 2.x + a SAELens `JumpReLUSAE`, checks them against
         ours, and runs `SaeVisRunner` as its Neuronpedia runner does (128 features a batch, model
         activations cached on disk after the first batch, top examples, quantiles, both histograms,
         logit table, feature tables). It is too slow for all 8,192 features here, so it builds `--subset`
         evenly spaced features and its time is extrapolated to all of them: the first batch (which runs
         the forward) plus the mean of the later batches for each remaining batch.
Venv creation and model loading are timed apart and excluded from both sides. Prints the ratio
(SAEDashboard / ours; target >= 10), the agreement checks, versions and load, and writes a RESULTS.md
section to `--section` when given.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import scopewidgets as sw
from scopewidgets.core import sites
from scopewidgets.core.hooks import run_truncated
from scopewidgets.core.paths import cache_dir
from scopewidgets.demo import DEMO_SAE_DIR, demo_model_dir, held_out_windows

WORKER = Path(__file__).resolve().parent / "_saedashboard_worker.py"
SAE_DASHBOARD = "sae-dashboard==0.8.0"
# Its requirements, less `decode-clt` (only imported for cross-layer transcoders, and it pulls unpinned
# torchvision / torchaudio, i.e. CUDA builds of torch); installed with torch pinned by the constraints.
SAE_DASHBOARD_DEPS = (
    "dataclasses-json>=0.6.4,<0.7", "datasets>=3,<4", "eindex-callum>=0.1,<0.2", "einops>=0.7",
    "hf-transfer>=0.1.9,<0.2", "jaxtyping>=0.2.28,<0.3", "matplotlib>=3.8.4,<4", "rich>=13.7.1,<14",
    "sae-lens>=6.8,<7", "safetensors>=0.4.3,<0.5", "transformer-lens>=2.2,<3", "transformers<4.57",
    "typer>=0.12.3,<0.13",
)  # fmt: skip
# torch: this machine's CPU build, never a CUDA one; pyarrow: >= 22 needs numpy 2, TransformerLens 2 numpy < 2.
CONSTRAINTS = f"torch=={torch.__version__.split('+')[0]}\npyarrow<22\n"


def pip(venv: Path, *args: str) -> None:
    command = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", *args]
    print("  $ " + shlex.join(command[2:]), flush=True)
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        print(done.stdout[-5000:] + done.stderr[-5000:])
        raise SystemExit(f"pip failed ({done.returncode}) in {venv}")


def ensure_venv(venv: Path) -> float:
    """Create and fill SAEDashboard's venv once (reused when its marker file is there); seconds taken."""
    marker = venv / "scopewidgets-bench-ready"
    if marker.is_file():
        return 0.0
    started = time.perf_counter()
    print(f"creating {venv} (once: installs SAEDashboard and its dependencies, ~2 GB)", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    constraints = venv / "constraints.txt"
    constraints.write_text(CONSTRAINTS)
    pip(venv, "-c", str(constraints), CONSTRAINTS.splitlines()[0])  # first: pip takes the local CPU wheel
    probe = [str(venv / "bin" / "python"), "-c", "import torch; print(torch.version.cuda)"]
    if subprocess.run(probe, capture_output=True, text=True).stdout.strip() != "None":
        raise SystemExit(f"{venv}: pip installed a CUDA build of torch; put a CPU wheel where pip finds it")
    pip(venv, "-c", str(constraints), *SAE_DASHBOARD_DEPS)
    pip(venv, "-c", str(constraints), "--no-deps", SAE_DASHBOARD)
    marker.write_text(CONSTRAINTS)
    return time.perf_counter() - started


def prepare(scope: sw.Scope, args: argparse.Namespace, work: Path) -> tuple[torch.Tensor, list[int]]:
    """The shared inputs: the token tensor, the feature subset, and our reference activations."""
    sae = scope.saes[0]
    if args.random_tokens:
        vocab = scope.model.config.vocab_size
        tokens = torch.randint(
            3, vocab, (args.seqs, args.seq_len), generator=torch.Generator().manual_seed(0)
        )
        tokens[:, 0] = scope.tokenizer.bos_token_id
    else:
        tokens = held_out_windows(scope.tokenizer, args.seqs, args.seq_len)
    step = sae.cfg.d_sae // args.subset
    subset = list(range(0, sae.cfg.d_sae, step))[: args.subset]
    sample = tokens[: args.check_seqs]
    site = (sae.cfg.site, sae.cfg.layer)
    resid = run_truncated(scope.model, sample, [site])[site].float()
    with torch.inference_mode():
        acts = sae.encode(resid)
    torch.save(tokens.clone(), work / "tokens.pt")
    torch.save(torch.tensor(subset), work / "features.pt")
    torch.save(
        {"tokens": sample.clone(), "resid": resid.clone(), "acts": acts.clone()}, work / "reference.pt"
    )
    return tokens, subset


def run_theirs(venv: Path, work: Path, args: argparse.Namespace, layer: int) -> dict:
    command = [
        str(venv / "bin" / "python"), str(WORKER), "--work", str(work), "--model-dir", str(demo_model_dir()),
        "--sae-dir", str(DEMO_SAE_DIR), "--layer", str(layer), "--feature-batch", str(args.feature_batch),
        "--threads", str(args.threads),
    ]  # fmt: skip
    if args.no_activation_cache:
        command.append("--no-activation-cache")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
    env.pop("SCOPEWIDGETS_CACHE", None)
    subprocess.run(command, check=True, env=env)
    return json.loads((work / "saedashboard.json").read_text())


def run_ours(scope: sw.Scope, tokens: torch.Tensor, features: list[int] | None) -> tuple[list[float], object]:
    """One pass + `materialize()` with a fresh disk cache: ([pass, effect table, the rest of the
    materialising] in seconds, the set). The effect table (logits and similar features of
    every feature, chunked GEMMs) is built first on its own only to time it apart; `materialize()` reuses it."""
    from scopewidgets.dashboards.materialize import ensure_table

    with tempfile.TemporaryDirectory(prefix="scopewidgets-bench-") as folder:
        previous = os.environ.get("SCOPEWIDGETS_CACHE")
        os.environ["SCOPEWIDGETS_CACHE"] = folder
        try:
            marks = [time.perf_counter()]
            dashes = scope.dashboards(features, corpus=tokens, cache=False, progress=False)
            marks.append(time.perf_counter())
            ensure_table(dashes)
            marks.append(time.perf_counter())
            dashes.materialize(progress=False)
            marks.append(time.perf_counter())
        finally:
            if previous is None:
                os.environ.pop("SCOPEWIDGETS_CACHE", None)
            else:
                os.environ["SCOPEWIDGETS_CACHE"] = previous
    assert len(dashes._memo) == len(dashes), "not every dashboard was built"
    return [b - a for a, b in itertools.pairwise(marks)], dashes


def extrapolate(times: list[float], sizes: list[int], d_sae: int, cached: bool) -> float:
    """SAEDashboard's time for all `d_sae` features, in batches of `sizes[0]`, from the measured batches."""
    n_batches = math.ceil(d_sae / sizes[0])
    if cached and len(times) > 1:  # the first batch runs the forward; later ones read it back from disk
        return times[0] + (n_batches - 1) * sum(times[1:]) / len(times[1:])
    return n_batches * sum(times) / len(times)


def agreement(dashes: object, theirs: dict, model: torch.nn.Module) -> dict:
    """Per feature of the subset: maxima within 0.5% (SAEDashboard folds decoder norms, ours are 1 +- 0.002),
    the same strongest sequence, the overlap of the top-10 logit tokens with ours (SAEDashboard's skip the
    final norm's gain) and their equality with the top 10 of `w_dec[f] @ W_U` (no gain)."""
    features = [int(f) for f in theirs["features"]]
    w_dec = dashes.sae.W_dec.detach().float()[features]
    plain = (w_dec @ sites.unembedding(model).detach().float().T).topk(10).indices
    text = dashes.text
    same_max = same_seq = same_plain = live = 0
    overlaps = []
    for feature, expected in zip(features, plain, strict=True):
        dash, row = dashes[feature], theirs["features"][str(feature)]
        same_plain += set(row["top_logit_ids"][:10]) == set(expected.tolist())
        if dash.max_activation <= 0 and row["max"] <= 0:
            continue
        live += 1
        same_max += abs(dash.max_activation - row["max"]) <= 5e-3 * max(dash.max_activation, row["max"])
        same_seq += bool(dash.examples) and dash.examples[0].seq_index == row["top_seq"]
        ours_top = {token for token, _ in dash.top_logits[:10]}
        overlaps.append(len(ours_top & set(text(row["top_logit_ids"][:10]))) / 10)
    mean_overlap = sum(overlaps) / max(len(overlaps), 1)
    return {
        "live": live, "same_max": same_max, "same_top_seq": same_seq, "top_logit_overlap": mean_overlap,
        "same_plain_logits": same_plain,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seqs", type=int, default=64)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument(
        "--subset", type=int, default=512, help="features SAEDashboard builds (evenly spaced)"
    )
    parser.add_argument("--feature-batch", type=int, default=128, help="SAEDashboard's features per batch")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--random-tokens", action="store_true", help="seeded random ids instead of held-out text"
    )
    parser.add_argument(
        "--check-seqs", type=int, default=2, help="sequences for the model/SAE agreement check"
    )
    parser.add_argument(
        "--no-activation-cache", action="store_true", help="SAEDashboard: a forward per batch"
    )
    parser.add_argument("--venv", type=Path, default=cache_dir() / "bench" / "saedashboard-venv")
    parser.add_argument("--section", type=Path, default=None, help="also write a RESULTS.md section here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    command = shlex.join(["python", "benchmarks/saedashboard_compare.py", *sys.argv[1:]])
    loads = {"start": os.getloadavg()}

    venv_s = ensure_venv(args.venv)
    started = time.perf_counter()
    scope = sw.demo()
    our_load_s = time.perf_counter() - started
    sae = scope.saes[0]
    d_sae = sae.cfg.d_sae
    with tempfile.TemporaryDirectory(prefix="saedash-work-") as folder:
        work = Path(folder)
        tokens, subset = prepare(scope, args, work)
        print(
            f"tokens {tuple(tokens.shape)}, SAEDashboard subset {len(subset)} of {d_sae} features", flush=True
        )
        theirs = run_theirs(args.venv, work, args, sae.cfg.layer)
    loads["after SAEDashboard"] = os.getloadavg()
    full, dashes = run_ours(scope, tokens, None)
    print(f"ours, all {d_sae}: pass {full[0]:.1f} s + materialise {full[1] + full[2]:.1f} s", flush=True)
    part, _ = run_ours(scope, tokens, subset)
    print(
        f"ours, subset {len(subset)}: pass {part[0]:.1f} s + materialise {part[1] + part[2]:.1f} s",
        flush=True,
    )
    loads["end"] = os.getloadavg()

    times, sizes = theirs["batch_times_s"], theirs["batch_sizes"]
    theirs_subset = sum(times)
    theirs_all = extrapolate(times, sizes, d_sae, theirs["activation_cache"])
    ours_all, ours_subset = sum(full), sum(part)
    checks, matched = theirs["agreement"], agreement(dashes, theirs, scope.model)
    gain = float(sites.final_norm_gain(scope.model).max())
    versions = ", ".join(f"{k} {v}" for k, v in theirs["versions"].items())
    when = f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC"
    load_text = "; ".join(f"{k} {' / '.join(f'{x:.1f}' for x in v)}" for k, v in loads.items())
    mode = "activations cached after batch 1" if theirs["activation_cache"] else "a forward per batch"
    lines = [
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, torch {torch.__version__}, "
        f"{args.threads} threads each; {when}; load average {load_text}",
        f"SAEDashboard side: {versions}",
        f"tokens: {tokens.shape[0]} x {tokens.shape[1]} ({'random ids' if args.random_tokens else 'held-out text'}), "
        f"{tokens.numel():,} tokens; features: {d_sae:,} (SAEDashboard measured on {len(subset)}, every "
        f"{d_sae // len(subset)}th, in batches of {args.feature_batch}, {mode})",
        f"setup, excluded: SAEDashboard venv {venv_s:.0f} s ({'reused' if venv_s == 0 else 'created'}), "
        f"its imports {theirs['imports_s']:.1f} s + TL/SAELens load {theirs['load_s']:.1f} s; ours load {our_load_s:.1f} s",
        f"agreement, {checks['tokens'][0]} x {checks['tokens'][1]} tokens: TL vs our layer-{sae.cfg.layer} resid_post "
        f"max |diff| {checks['resid_max_abs_diff_no_bos']:.3g} without BOS (|x| up to {checks['resid_max_abs_no_bos']:.0f}), "
        f"{checks['resid_max_abs_diff']:.3g} with BOS (|x| up to {checks['resid_max_abs_bos']:.0f}); SAELens vs our "
        f"encode: {checks['active_pairs_theirs']:,} vs {checks['active_pairs_ours']:,} active pairs "
        f"({checks['active_pairs_disagreeing']} differ), values within {checks['acts_max_abs_diff']:.3g} "
        f"(max {checks['acts_max']:.0f})",
        f"dashboards of the subset: {matched['live']} live features; maxima within 0.5% on {matched['same_max']}, "
        f"same strongest sequence on {matched['same_top_seq']}; top-10 logit tokens overlap "
        f"{matched['top_logit_overlap']:.0%} (SAEDashboard leaves out the final norm's gain, up to "
        f"{gain:.0f}x here: its top 10 equal those of w_dec[f] @ W_U without it on "
        f"{matched['same_plain_logits']}/{len(subset)})",
        f"SAEDashboard, {len(subset)} features measured: {theirs_subset:.1f} s (batches "
        + ", ".join(f"{t:.1f}" for t in times)
        + f"); all {d_sae:,} extrapolated: {theirs_all:.0f} s",
        f"ours, {len(subset)} features: {ours_subset:.1f} s (pass {part[0]:.1f} + materialise {part[1]:.1f} "
        f"effect table + {part[2]:.1f} the rest)",
        f"ours, all {d_sae:,} features measured: {ours_all:.1f} s (pass {full[0]:.1f} + materialise "
        f"{full[1]:.1f} effect table + {full[2]:.1f} the rest)",
        f"ratio SAEDashboard / ours, all features (theirs extrapolated): {theirs_all / ours_all:.1f}x (target >= 10)",
        f"ratio SAEDashboard / ours, same {len(subset)} features, both measured: {theirs_subset / ours_subset:.1f}x",
    ]
    print("\n".join(lines))
    section = [
        f"## End to end against SAEDashboard (`{command}`)",
        "",
        f"{when} · {lines[0].split(';')[0]} · load average {load_text}. Same weights (the demo's Gemma 3 270M, "
        f"the demo SAE, {d_sae:,} features), same {tokens.shape[0]} x {tokens.shape[1]} tokens; SAEDashboard in "
        "its own venv (" + versions + "). One corpus pass + every dashboard; venv creation and model loading "
        "excluded.",
        "",
        *(f"- {line}" for line in lines[2:]),
        "",
    ]
    if args.section is not None:
        args.section.parent.mkdir(parents=True, exist_ok=True)
        args.section.write_text("\n".join(section))
        print(f"section written to {args.section}")


if __name__ == "__main__":
    main()
