"""Next-token loss an SAE adds on modern everyday text, against in-domain text, on the offline demo model.

For each SAE folder (default: the demo SAE) prints the loss increase (nats, SAE spliced in at every non-BOS
position) on:

- `short_modern_texts()`: the 80 texts the model card reports (issue 11's target, <= 0.2);
- `benchmarks/data/fresh_modern_texts.txt`: 40 more modern texts on other topics (deliveries, reviews, text
  messages, apps, bills...), written for this check and read by nothing else: a training stage that only
  fitted the 80 card texts would not move these;
- 16 held-out default-corpus windows (`held_out_windows(tokenizer, 16)`), with their L0.

    python benchmarks/modern_text_loss.py                          # the demo SAE
    python benchmarks/modern_text_loss.py /tmp/candidate_a /tmp/candidate_b
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

import scopewidgets as sw
from scopewidgets.demo import demo_model, held_out_windows
from scopewidgets.demo.probe_text import short_modern_texts, spliced_loss_increase

FRESH = Path(__file__).parent / "data" / "fresh_modern_texts.txt"


def main() -> None:
    torch.set_num_threads(2)
    model, tokenizer = demo_model()
    fresh = [line.strip() for line in FRESH.read_text().splitlines() if line.strip()]
    for folder in sys.argv[1:] or [None]:
        sae = sw.demo_sae() if folder is None else sw.load_sae(folder)
        scope = sw.Scope(model, tokenizer, saes=[sae])
        row = scope.evaluate(held_out_windows(tokenizer, 16)).iloc[0]
        out = {
            "sae": folder or "demo SAE",
            "short_modern": round(spliced_loss_increase(scope, short_modern_texts())["increase"], 4),
            "fresh_modern": round(spliced_loss_increase(scope, fresh)["increase"], 4),
            "held_out_16": round(float(row["ce_spliced"] - row["ce_clean"]), 4),
            "l0_16": round(float(row["l0"]), 1),
        }
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
