"""Placeholder: Gemma Scope 2 evidence files (filled in below)."""

from __future__ import annotations

from typing import Any


def has_evidence(sae: Any) -> bool:
    return False


def evidence_dashboards(scope: Any, sae: Any, ids: Any, **kwargs: Any) -> Any:
    return None
