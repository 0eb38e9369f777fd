"""`scopewidgets atlas`: one corpus pass for every feature of an SAE, written as an offline atlas folder.

    scopewidgets atlas --sae demo --out atlas                         # the demo SAE over the default corpus
    scopewidgets atlas --sae path/to/sae --model google/gemma-2-2b --corpus texts.txt --out atlas
    scopewidgets atlas --sae demo --corpus tokens.pt --features 1024 --save dashes.safetensors --out atlas

`--corpus`: `default` (the package's corpus), a `.txt` file (texts separated by blank lines), a `.jsonl` file
(a "text" field per line), a folder of `.txt` files, or a `.pt` file holding a `[n_seq, seq_len]` token tensor.
Progress bars follow the pass, the logit table and the writing of the atlas.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def add_parser(commands: Any) -> None:
    """The `atlas` subcommand's arguments."""
    atlas = commands.add_parser("atlas", help="write an offline atlas of every feature of an SAE")
    atlas.add_argument("--sae", required=True, help="an SAE folder (any supported format), or 'demo'")
    atlas.add_argument(
        "--model", default=None, help="hub id or folder of the model (default: the demo model)"
    )
    atlas.add_argument(
        "--corpus", default="default", help="default | .txt | .jsonl | folder of .txt | .pt tokens"
    )
    atlas.add_argument(
        "--out", type=Path, required=True, help="the atlas folder to write (index.html inside)"
    )
    atlas.add_argument("--features", type=int, default=None, help="only the first N features (default: all)")
    atlas.add_argument("--seq-len", type=int, default=128, help="tokens per window of a text corpus")
    atlas.add_argument("--device", default=None, help="cpu, cuda, ... (default: CUDA when available)")
    atlas.add_argument("--save", type=Path, default=None, help="also save the pass (DashboardSet.save) here")


def read_corpus(spec: str) -> Any:
    """The corpus named on the command line (see the module docstring)."""
    import torch

    from .core import corpus

    if spec == "default":
        return corpus.default()
    path = Path(spec).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"--corpus {spec!r}: no such file or folder (or use 'default')")
    if path.is_dir():
        return [text for file in sorted(path.glob("*.txt")) for text in _paragraphs(file)]
    if path.suffix == ".pt":
        return torch.load(path, weights_only=True)
    if path.suffix == ".jsonl":
        return [
            json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
        ]
    return _paragraphs(path)


def _paragraphs(path: Path) -> list[str]:
    return [part.strip() for part in path.read_text(encoding="utf-8").split("\n\n") if part.strip()]


def _scope(args: argparse.Namespace) -> Any:
    import scopewidgets as sw

    if args.sae == "demo" and args.model is None:
        return sw.demo()
    from .demo import demo_model, demo_sae

    sae = demo_sae() if args.sae == "demo" else sw.load_sae(args.sae, device=args.device)
    if args.model is None:
        model, tokenizer = demo_model()
        return sw.Scope(model, tokenizer, saes=[sae])
    return sw.Scope.from_pretrained(args.model, saes=[sae], device=args.device)


def run_atlas(args: argparse.Namespace) -> int:
    """Run the pass, write the atlas (and the saved pass with `--save`); print where it is."""
    scope = _scope(args)
    d_sae = scope.saes[0].cfg.d_sae
    features = range(min(args.features, d_sae)) if args.features else None
    dashes = scope.dashboards(features, corpus=read_corpus(args.corpus), seq_len=args.seq_len)
    if args.save is not None:
        print(f"Saved the pass to {dashes.save(args.save)}")
    index = dashes.save_atlas(args.out)
    size = sum(f.stat().st_size for f in Path(args.out).rglob("*") if f.is_file())
    print(f"Atlas of {len(dashes):,} features: {index} ({size / 1e6:.1f} MB); open it in a browser")
    return 0
