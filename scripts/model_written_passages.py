"""Turn windows the demo model wrote into passages of the default corpus's `gemma_written` source.

`scripts/generate_modern_text.py` samples 128-token windows (BOS, one of its openings, then what the model
writes) into a cache folder (`tokens.npy`; `progress.json` says how many are finished, so a cache still being
written, or stopped early, can be read). This script drops BOS and the opening from each window (the
openings are short and repeat; only what the model wrote is kept), decodes the rest, joins windows into
passages of about 3,000 characters and writes them as JSON lines (`title`, `index`, `text`) to `--out`, where
`scopewidgets.core.corpus_sources` reads the source (`<sources_dir>/gemma_written.jsonl`). Then run
`python scripts/build_corpus.py`.

The text is fresh: generate it with seeds not used for the demo SAE's training caches (its stages used
`--seed 0` modern text and `--seed 1` topic text), so the default corpus stays held out of training.

    python scripts/generate_modern_text.py --openings topics --seed 7 --tokens 120000 --out /tmp/gen/topics
    python scripts/generate_modern_text.py --openings modern --seed 7 --tokens 120000 --out /tmp/gen/modern
    python scripts/model_written_passages.py /tmp/gen/topics /tmp/gen/modern
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the repository's scopewidgets, installed or not
sys.path.insert(0, str(ROOT / "scripts"))

from generate_modern_text import OPENING_SETS  # noqa: E402

from scopewidgets.core import corpus_sources as cs  # noqa: E402
from scopewidgets.demo import prepare_demo_model  # noqa: E402


def opening_ids(tokenizer) -> list[tuple[str, list[int]]]:
    """Every opening of every set as `(set name, token ids)`, longest first (a longer opening that starts
    like a shorter one is matched first)."""
    found = [
        (name, tokenizer(text, add_special_tokens=False)["input_ids"])
        for name, texts in OPENING_SETS.items()
        for text in texts
    ]
    return sorted(found, key=lambda item: -len(item[1]))


def written_part(window: list[int], openings: list[tuple[str, list[int]]]) -> tuple[str, list[int]]:
    """`(opening set, the ids the model wrote)`: `window` without BOS and its opening."""
    body = window[1:]
    for name, ids in openings:
        if body[: len(ids)] == ids:
            return name, body[len(ids) :]
    raise ValueError(f"window {window[:12]}... starts with none of the openings")


def passages(folders: list[Path], tokenizer, size: int = cs.PASSAGE_CHARS) -> list[dict]:
    """Records `{title, index, text}`: each folder's windows, opening dropped, joined into passages of about
    `size` characters (the title names the folder's opening set and seed)."""
    openings = opening_ids(tokenizer)
    records = []
    for folder in folders:
        done = json.loads((folder / "progress.json").read_text())["done"]  # finished windows, even mid-run
        windows = np.load(folder / "tokens.npy", mmap_mode="r")[:done].tolist()
        parts = [written_part(w, openings) for w in windows]
        kinds = {name for name, _ in parts}
        title = f"{'/'.join(sorted(kinds))} openings, {folder.name}"
        texts = [tokenizer.decode(ids, skip_special_tokens=True).strip() for _, ids in parts]
        pieces, length, first = [], 0, len(records)
        for text in filter(None, texts):
            pieces.append(text)
            length += len(text)
            if length >= size:
                records.append({"title": title, "index": len(records) - first, "text": "\n\n".join(pieces)})
                pieces, length = [], 0
        if pieces:
            records.append({"title": title, "index": len(records) - first, "text": "\n\n".join(pieces)})
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", type=Path, nargs="+", help="caches of scripts/generate_modern_text.py")
    parser.add_argument("--out", type=Path, default=cs.sources_dir() / cs.GEMMA_WRITTEN_FILE)
    args = parser.parse_args()
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(prepare_demo_model())  # the demo model's; no weights loaded
    records = passages(args.folders, tokenizer)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    print(f"wrote {len(records)} passages, {sum(len(r['text']) for r in records):,} characters to {args.out}")


if __name__ == "__main__":
    main()
