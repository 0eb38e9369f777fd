"""Links from official Gemma Scope SAEs to their pages on Neuronpedia (shown by dashboards; never fetched)."""

from __future__ import annotations

import re

from .sae import SAE

NEURONPEDIA = "https://www.neuronpedia.org"
_SITE_CODE = {"resid_post": "res", "mlp_out": "mlp", "attn_out": "att"}
_GS1 = re.compile(r"gemma-scope-(\d+b)-(pt|it)-(res|mlp|att)")
_GS2 = re.compile(r"gemma-scope-2-(\d+[mb])-(pt|it)")


def _width(d_sae: int) -> str:
    """Gemma Scope's width labels: 16384 -> 16k, 65536 -> 65k, 131072 -> 131k, 1048576 -> 1m."""
    return f"{d_sae // 10**6}m" if d_sae >= 10**6 else f"{d_sae // 1000}k"


def neuronpedia_source(sae: SAE) -> tuple[str, str] | None:
    """`(model_id, source_id)` on Neuronpedia for an official Gemma Scope SAE, else None.

    SAELens files that carry a `neuronpedia_id` use it as is.

    Example:
        >>> from scopewidgets import SAE, SAEConfig
        >>> sae = SAE(SAEConfig(d_in=2304, d_sae=16384, site="resid_post", layer=20,
        ...                     source="google/gemma-scope-2b-pt-res/layer_20/width_16k/average_l0_71"))
        >>> neuronpedia_source(sae)
        ('gemma-2-2b', '20-gemmascope-res-16k')
    """
    cfg = sae.cfg
    given = cfg.extra.get("neuronpedia_id")
    if isinstance(given, str) and given.count("/") == 1:
        model_id, source_id = given.split("/")
        return model_id, source_id
    source = cfg.source or ""
    code = _SITE_CODE.get(cfg.site or "")
    if code is None or cfg.layer is None:
        return None
    if match := _GS1.search(source):
        size, kind = match.group(1), match.group(2)
        return f"gemma-2-{size}" + (
            "-it" if kind == "it" else ""
        ), f"{cfg.layer}-gemmascope-{code}-{_width(cfg.d_sae)}"
    if match := _GS2.search(source):
        size, kind = match.group(1), match.group(2)
        return f"gemma-3-{size}" + (
            "-it" if kind == "it" else ""
        ), f"{cfg.layer}-gemmascope-2-{code}-{_width(cfg.d_sae)}"
    return None


def neuronpedia_url(sae: SAE, feature: int) -> str | None:
    """The Neuronpedia page of one feature of an official Gemma Scope SAE, or None for other SAEs.

    Example:
        >>> neuronpedia_url(sae, 1234)                                           # doctest: +SKIP
        'https://www.neuronpedia.org/gemma-2-2b/20-gemmascope-res-16k/1234'
    """
    found = neuronpedia_source(sae)
    if found is None:
        return None
    return f"{NEURONPEDIA}/{found[0]}/{found[1]}/{sae.check_feature(feature)}"
