"""The SAEDashboard side of `benchmarks/saedashboard_compare.py`; runs in its throwaway venv, not ours.

    <venv>/bin/python benchmarks/_saedashboard_worker.py --work DIR --model-dir DIR --sae-dir DIR

Reads from `--work`: `tokens.pt` (the `[n_seq, seq_len]` corpus), `features.pt` (the features to build, in
`--feature-batch` batches) and `reference.pt` (a few sequences' layer-L resid_post and SAE activations from
our transformers model, for the agreement checks). Loads the same weights into TransformerLens 2.x
(`HookedSAETransformer`, no weight processing) and a SAELens `JumpReLUSAE`, checks them against the
reference, then builds the dashboards as SAEDashboard's Neuronpedia runner does (one `SaeVisRunner` per
feature batch, model activations cached on disk after the first batch, its layout, BOS/pad/EOS ignored),
timing each batch. Writes `saedashboard.json` into `--work`. Imports nothing from scopewidgets.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch

PACKAGES = ("sae-dashboard", "sae-lens", "transformer-lens", "transformers", "torch")


def load_model(model_dir: Path, name: str) -> object:
    """Our cached Gemma 3 270M copy as a TransformerLens model, without touching the hub."""
    from sae_lens import HookedSAETransformer
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    hf_model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    model = HookedSAETransformer.from_pretrained_no_processing(
        name, hf_model=hf_model, tokenizer=tokenizer, device="cpu", dtype=torch.float32
    )
    del hf_model
    return model.eval()


def load_sae(sae_dir: Path, layer: int) -> object:
    """The Gemma Scope 2 layout (`params.safetensors`, lowercase keys) as a SAELens `JumpReLUSAE`."""
    from sae_lens.saes.jumprelu_sae import JumpReLUSAE, JumpReLUSAEConfig
    from sae_lens.saes.sae import SAEMetadata
    from safetensors.torch import load_file

    params = {key: value.float() for key, value in load_file(sae_dir / "params.safetensors").items()}
    d_in, d_sae = params["w_enc"].shape
    metadata = SAEMetadata(
        model_name="google/gemma-3-270m", hook_name=f"blocks.{layer}.hook_resid_post", prepend_bos=True
    )
    cfg = JumpReLUSAEConfig(
        d_in=d_in, d_sae=d_sae, dtype="float32", device="cpu", apply_b_dec_to_input=False, metadata=metadata
    )
    sae = JumpReLUSAE(cfg)
    names = {"W_enc": "w_enc", "W_dec": "w_dec", "b_enc": "b_enc", "b_dec": "b_dec", "threshold": "threshold"}
    sae.load_state_dict({ours: params[theirs] for ours, theirs in names.items()})
    return sae.eval()


@torch.inference_mode()
def agreement(model: object, sae: object, reference: dict, hook: str, layer: int) -> dict:
    """TransformerLens resid_post and SAELens activations against our model's, on the reference tokens."""
    tokens = reference["tokens"]
    _, cache = model.run_with_cache(tokens, stop_at_layer=layer + 1, names_filter=[hook])
    resid = cache[hook]
    ours = reference["resid"]
    theirs_acts = sae.encode(resid)
    ours_acts = reference["acts"].float()
    body = (slice(None), slice(1, None))  # BOS excluded, as both tools do for their statistics
    active_theirs, active_ours = theirs_acts[body] > 0, ours_acts[body] > 0
    return {
        "tokens": list(tokens.shape),
        "resid_max_abs_diff": float((resid - ours).abs().max()),
        "resid_max_abs_diff_no_bos": float((resid[body] - ours[body]).abs().max()),
        "resid_max_abs_no_bos": float(ours[body].abs().max()),
        "resid_max_abs_bos": float(ours[:, 0].abs().max()),
        "active_pairs_theirs": int(active_theirs.sum()),
        "active_pairs_ours": int(active_ours.sum()),
        "active_pairs_disagreeing": int((active_theirs != active_ours).sum()),
        "acts_max_abs_diff": float((theirs_acts[body] - ours_acts[body]).abs().max()),
        "acts_max": float(ours_acts[body].max()),
    }


def layout() -> object:
    """The Neuronpedia runner's layout: top examples + quantile groups, both histograms, logit table and
    the feature tables (correlated neurons / features), with its defaults (5 quantiles, 20 top, 5 a group)."""
    from sae_dashboard.components_config import (
        ActsHistogramConfig,
        Column,
        FeatureTablesConfig,
        LogitsHistogramConfig,
        LogitsTableConfig,
        SequencesConfig,
    )
    from sae_dashboard.layout import SaeVisLayoutConfig

    sequences = SequencesConfig(
        stack_mode="stack-all", buffer=None, compute_buffer=True, n_quantiles=5,
        top_acts_group_size=20, quantile_group_size=5,
    )  # fmt: skip
    columns = [
        Column(
            sequences, ActsHistogramConfig(), LogitsHistogramConfig(), LogitsTableConfig(),
            FeatureTablesConfig(n_rows=3),
        )
    ]  # fmt: skip
    return SaeVisLayoutConfig(columns=columns)


def summary(data: object) -> dict:
    """What the comparison checks per feature: the strongest example's value and place, the top logits."""
    out = {}
    for feature, item in data.feature_data_dict.items():
        groups = item.sequence_data.seq_group_data
        top = groups[0].seq_data[0] if groups and groups[0].seq_data else None
        best = max(top.feat_acts) if top is not None and top.feat_acts else 0.0
        out[int(feature)] = {
            "max": float(best),
            "top_seq": int(top.original_index) if top is not None else -1,
            "top_logit_ids": [int(i) for i in item.logits_table_data.top_token_ids],
            "bottom_logit_ids": [int(i) for i in item.logits_table_data.bottom_token_ids],
        }
    return out


def run(args: argparse.Namespace) -> dict:
    work = Path(args.work)
    started = time.perf_counter()
    from sae_dashboard.sae_vis_data import SaeVisConfig
    from sae_dashboard.sae_vis_runner import SaeVisRunner

    imports_s = time.perf_counter() - started
    started = time.perf_counter()
    model = load_model(Path(args.model_dir), args.model_name)
    sae = load_sae(Path(args.sae_dir), args.layer)
    load_s = time.perf_counter() - started
    hook = f"blocks.{args.layer}.hook_resid_post"
    checks = agreement(model, sae, torch.load(work / "reference.pt", weights_only=True), hook, args.layer)

    tokens = torch.load(work / "tokens.pt", weights_only=True)
    features = [int(f) for f in torch.load(work / "features.pt", weights_only=True)]
    tokenizer = model.tokenizer
    ignore = {tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id} - {None}
    batches = [features[i : i + args.feature_batch] for i in range(0, len(features), args.feature_batch)]
    times, built = [], {}
    with tempfile.TemporaryDirectory(prefix="saedash-acts-") as cache_dir:
        for batch in batches:
            cfg = SaeVisConfig(
                hook_point=hook, features=batch, minibatch_size_features=args.feature_batch,
                minibatch_size_tokens=args.prompts_per_forward, quantile_feature_batch_size=64,
                device="cpu", dtype="float32", feature_centric_layout=layout(), perform_ablation_experiments=False,
                cache_dir=None if args.no_activation_cache else Path(cache_dir), ignore_tokens=ignore,
                verbose=False,
            )  # fmt: skip
            started = time.perf_counter()
            data = SaeVisRunner(cfg).run(encoder=sae, model=model, tokens=tokens)
            times.append(time.perf_counter() - started)
            print(f"  SAEDashboard batch {len(times)}/{len(batches)}: {len(batch)} features, "
                  f"{times[-1]:.1f} s", flush=True)  # fmt: skip
            built.update(summary(data))
            del data
    return {
        "versions": {name: version(name) for name in PACKAGES},
        "threads": torch.get_num_threads(),
        "imports_s": imports_s,
        "load_s": load_s,
        "agreement": checks,
        "batch_times_s": times,
        "batch_sizes": [len(b) for b in batches],
        "activation_cache": not args.no_activation_cache,
        "features": built,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--work", required=True, help="folder with tokens.pt, features.pt, reference.pt")
    parser.add_argument("--model-dir", required=True, help="the HF-format Gemma 3 270M folder")
    parser.add_argument("--model-name", default="google/gemma-3-270m", help="TransformerLens' name for it")
    parser.add_argument("--sae-dir", required=True, help="a Gemma Scope 2 style SAE folder")
    parser.add_argument("--layer", type=int, default=6)
    parser.add_argument("--feature-batch", type=int, default=128)
    parser.add_argument("--prompts-per-forward", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-activation-cache", action="store_true", help="one forward per feature batch")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    result = run(args)
    (Path(args.work) / "saedashboard.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main()
