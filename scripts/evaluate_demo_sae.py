"""Measure a demo SAE folder on held-out text for its model card, and write the card (issue 11's targets).

    python scripts/evaluate_demo_sae.py scopewidgets/data/demo_sae            # measure, store, rewrite card
    python scripts/evaluate_demo_sae.py /tmp/trial_sae --no-write             # just print the figures

Every figure uses text held out of the training mix, with the shipped (bf16) weights:
- `scope.evaluate` on `held_out_windows(tokenizer, 128)` (and its first 16 windows: the slow test's quick
  check): L0, plain FVU, next-token CE clean / spliced / zero-ablated, fraction of loss recovered;
- short modern texts (`scopewidgets.demo.probe_text.short_modern_texts`), each run on its own: CE increase;
- 800 held-out windows (101,600 tokens): per-feature density (how many non-reserved features fire on more
  than 30%, 10%, 1% of tokens; never firing = dead), and the FVU with the reserved direction projected out
  of both the activation and its reconstruction (the plain FVU is flattered by that one huge direction);
- the held-out concept probe (`benchmarks/concept_probe.py`): per word class, the best single feature (with
  a threshold) as a token classifier, F1 on sentences it was not chosen on; mean over classes, the same
  with the threshold at 0, and the raw dimensions' mean.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from concept_probe import probe_f1  # noqa: E402
from model_card import write_model_card  # noqa: E402

from scopewidgets import Scope, load_sae  # noqa: E402
from scopewidgets.core.hooks import run_truncated  # noqa: E402
from scopewidgets.demo import demo_model, held_out_windows  # noqa: E402
from scopewidgets.demo.probe_text import short_modern_texts, spliced_loss_increase  # noqa: E402

COLUMNS = ["l0", "fvu", "ce_clean", "ce_spliced", "ce_ablated", "frac_loss_recovered", "tokens"]


def _rounded(row: dict) -> dict:
    return {
        k: (int(v) if k in ("tokens", "predictions", "texts") else round(float(v), 4)) for k, v in row.items()
    }


def density_and_fvu(model, sae, windows: torch.Tensor, batch: int = 16) -> dict:
    """Densities over `windows` (non-BOS tokens) and the FVU plain and with the reserved direction removed."""
    d_sae, reserved = sae.cfg.d_sae, list(sae.reserved_features)
    counts = torch.zeros(d_sae, dtype=torch.float64)
    u = sae.W_dec[reserved[0]].detach().double() if reserved else None
    u = u / u.norm() if u is not None else None
    sums = {"n": 0, "sse": 0.0, "sse_perp": 0.0, "x": 0.0, "x_perp": 0.0, "xx": 0.0, "xx_perp": 0.0}
    with torch.no_grad():
        for ids in tqdm(windows.split(batch), desc="Density", unit="batch"):
            acts = run_truncated(model, ids, [("resid_post", sae.cfg.layer)])["resid_post", sae.cfg.layer][
                :, 1:
            ]
            x = acts.reshape(-1, acts.shape[-1]).float()
            f = sae.encode(x)
            counts += (f > 0).sum(0).double()
            err = (x - sae.decode(f)).double()
            xd = x.double()
            sums["n"] += len(x)
            sums["sse"] += float(err.pow(2).sum())
            sums["x"] = sums["x"] + xd.sum(0)
            sums["xx"] += float(xd.pow(2).sum())
            if u is not None:
                err_p, x_p = err - (err @ u)[:, None] * u, xd - (xd @ u)[:, None] * u
                sums["sse_perp"] += float(err_p.pow(2).sum())
                sums["x_perp"] = sums["x_perp"] + x_p.sum(0)
                sums["xx_perp"] += float(x_p.pow(2).sum())
    n = sums["n"]
    variance = sums["xx"] - float((sums["x"] / n).pow(2).sum()) * n
    density = counts / n
    learned = torch.ones(d_sae, dtype=torch.bool)
    learned[reserved] = False
    dens = density[learned]
    out = {
        "tokens": n,
        "fvu": sums["sse"] / variance,
        "over_30pct": int((dens > 0.30).sum()),
        "over_10pct": int((dens > 0.10).sum()),
        "over_1pct": int((dens > 0.01).sum()),
        "dead": float((dens == 0).double().mean()),
        "median_density": float(dens.median()),
        "max_density": float(dens.max()),
    }
    if u is not None:
        variance_perp = sums["xx_perp"] - float((sums["x_perp"] / n).pow(2).sum()) * n
        out["fvu_without_reserved_direction"] = sums["sse_perp"] / variance_perp
    table = torch.histc(dens[dens > 0].float().log10(), bins=6, min=-6, max=0)
    out["density_histogram_log10"] = {"never": int((dens == 0).sum())} | {
        f"1e{lo}..1e{lo + 1}": int(c) for lo, c in zip(range(-6, 0), table.tolist(), strict=True)
    }
    return out


def card_metrics(
    folder: Path, eval_windows: int = 128, quick_windows: int = 16, density_windows: int = 800
) -> dict:
    """Every figure of the model card for the SAE in `folder` (see the module docstring)."""
    model, tokenizer = demo_model()
    sae = load_sae(folder)
    scope = Scope(model, tokenizer, saes=[sae])
    started = time.time()
    windows = held_out_windows(tokenizer, eval_windows)
    full = _rounded(scope.evaluate(windows)[COLUMNS].iloc[0].to_dict())
    quick = _rounded(scope.evaluate(windows[:quick_windows])[COLUMNS].iloc[0].to_dict())
    modern = _rounded(spliced_loss_increase(scope, short_modern_texts()))
    density = density_and_fvu(model, sae, held_out_windows(tokenizer, density_windows))
    probe = probe_f1(scope)
    out = {
        "eval": full,
        "quick_check": quick,
        "eval_windows": eval_windows,
        "quick_windows": quick_windows,
        "loss_increase_held_out": round(full["ce_spliced"] - full["ce_clean"], 4),
        "short_modern_text": modern,
        "density": {k: (round(v, 6) if isinstance(v, float) else v) for k, v in density.items()},
        "concept_probe": {
            "mean_f1": round(float(probe["f1_2fold"].mean()), 4),
            "fires_mean_f1": round(float(probe["fires_f1_2fold"].mean()), 4),
            "raw_dimensions_mean_f1": round(float(probe["raw_f1_2fold"].mean()), 4),
            "per_class": {c: round(float(v), 3) for c, v in probe["f1_2fold"].items()},
        },
        "seconds": round(time.time() - started, 1),
    }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--no-write", action="store_true", help="print only; leave config.json and the card")
    parser.add_argument("--notes", type=Path, default=None, help="a paragraph for the card")
    parser.add_argument("--eval-windows", type=int, default=128)
    parser.add_argument("--quick-windows", type=int, default=16)
    parser.add_argument("--density-windows", type=int, default=800)
    args = parser.parse_args()
    torch.set_num_threads(2)
    metrics = card_metrics(args.folder, args.eval_windows, args.quick_windows, args.density_windows)
    print(json.dumps(metrics, indent=2))
    if args.no_write:
        return
    config = json.loads((args.folder / "config.json").read_text())
    config.setdefault("training", {}).update(metrics)
    (args.folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    write_model_card(args.folder / "MODEL_CARD.md", config, args.notes.read_text() if args.notes else "")


if __name__ == "__main__":
    main()
