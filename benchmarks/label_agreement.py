"""How often a label's two halves agree: the share of labels (`fired · words → promoted · words`) whose
promoted words share a 4-letter stem (case-insensitive) with one of their fired words. A crude check that the
promoted half says something about the feature; the two halves are measured independently (examples vs
the decoder direction's effect on the logits).

    python benchmarks/label_agreement.py scopewidgets/data/demo_sae/auto_labels.json [OTHER.json ...]
    git show 6516eae:scopewidgets/data/demo_sae/auto_labels.json > /tmp/direct.json   # the direct labels
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ARROW, SEP = " → ", " · "


def agrees(label: str) -> bool | None:
    """Whether a promoted word shares a 4-letter stem with a fired word (None: no promoted half)."""
    if ARROW not in label:
        return None
    fired, promoted = (
        {w.lower()[:4] for w in half.split(SEP) if len(w) >= 3} for half in label.split(ARROW, 1)
    )
    return bool(fired & promoted)


def main() -> None:
    for path in sys.argv[1:]:
        labels = json.loads(Path(path).read_text(encoding="utf-8"))
        verdicts = [v for v in map(agrees, labels.values()) if v is not None]
        share = sum(verdicts) / max(len(verdicts), 1)
        print(
            f"{path}: {sum(verdicts)} of {len(verdicts)} labels ({share:.1%}) share a stem across the arrow"
        )


if __name__ == "__main__":
    main()
