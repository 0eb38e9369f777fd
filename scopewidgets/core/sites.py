"""The one module that knows Gemma's module tree.

A *site* is a place in a decoder layer where an SAE reads (or writes) activations. Each maps to a real
module of the Hugging Face model and to that module's input or output:

| site             | module (under the decoder layer)     | side   |
|------------------|--------------------------------------|--------|
| `resid_post`     | the decoder layer itself             | output |
| `mlp_out`        | `post_feedforward_layernorm`         | output |
| `attn_out`       | `self_attn.o_proj`                   | input  |
| `transcoder_in`  | `pre_feedforward_layernorm`          | output |
| `transcoder_out` | `post_feedforward_layernorm`         | output |

Works for Gemma 2, Gemma 3 text (`Gemma3ForCausalLM`) and Gemma 3 multimodal
(`Gemma3ForConditionalGeneration`, text layers under `model.language_model`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from torch import nn

SITES: tuple[str, ...] = ("resid_post", "mlp_out", "attn_out", "transcoder_in", "transcoder_out")

# (path under the decoder layer, side, order of execution inside the layer)
_SITE_TABLE: dict[str, tuple[str, Literal["input", "output"], int]] = {
    "attn_out": ("self_attn.o_proj", "input", 0),
    "transcoder_in": ("pre_feedforward_layernorm", "output", 1),
    "mlp_out": ("post_feedforward_layernorm", "output", 2),
    "transcoder_out": ("post_feedforward_layernorm", "output", 2),
    "resid_post": ("", "output", 3),
}


@dataclass(frozen=True)
class SitePoint:
    """A resolved site: the module to hook and whether its input or its output is the activation."""

    site: str
    layer: int
    module: nn.Module
    side: Literal["input", "output"]

    @property
    def depth(self) -> tuple[int, int]:
        """Sort key in execution order: (layer, position inside the layer)."""
        return (self.layer, _SITE_TABLE[self.site][2])


def text_model(model: nn.Module) -> nn.Module:
    """The decoder stack (`embed_tokens`, `layers`, `norm`) of any supported Gemma model.

    Example:
        >>> from scopewidgets.testing import tiny_gemma3
        >>> model, _ = tiny_gemma3()
        >>> len(text_model(model).layers)
        4
    """
    inner = getattr(model, "model", model)
    if hasattr(inner, "language_model"):  # Gemma3ForConditionalGeneration / Gemma3Model
        inner = inner.language_model
    if not hasattr(inner, "layers") or not hasattr(inner, "norm"):
        raise ValueError(
            f"{type(model).__name__} is not a supported Gemma model: expected decoder layers under "
            "model.model.layers or model.model.language_model.layers"
        )
    return inner


def text_config(model: nn.Module) -> Any:
    """The text part of the model's config (Gemma 3 multimodal nests it under `text_config`)."""
    config = model.config
    return config.get_text_config() if hasattr(config, "get_text_config") else config


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The model's decoder layers, in order."""
    return text_model(model).layers


def n_layers(model: nn.Module) -> int:
    """Number of decoder layers."""
    return len(decoder_layers(model))


def d_model(model: nn.Module) -> int:
    """Width of the residual stream."""
    return int(text_config(model).hidden_size)


def vocab_size(model: nn.Module) -> int:
    """Rows of the unembedding (what token ids may be)."""
    return int(unembedding(model).shape[0])


def context_length(model: nn.Module) -> int:
    """The longest sequence the model accepts."""
    return int(text_config(model).max_position_embeddings)


def final_norm(model: nn.Module) -> nn.Module:
    """The RMSNorm before the unembedding."""
    return text_model(model).norm


def final_norm_gain(model: nn.Module) -> Any:
    """`[d_model]` effective gain of the final norm. Gemma's RMSNorm scales by `1 + weight`."""
    return 1.0 + final_norm(model).weight.detach().float()


def unembedding(model: nn.Module) -> Any:
    """`[vocab, d_model]` unembedding matrix (the LM head, tied to the embedding in Gemma)."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if head is None:
        head = model.lm_head
    return head.weight


def site_width(model: nn.Module, site: str) -> int:
    """Width of the activation at `site` (attn_out is heads x head_dim, the input of `o_proj`)."""
    check_site(site)
    if site == "attn_out":
        return int(decoder_layers(model)[0].self_attn.o_proj.in_features)
    return d_model(model)


def check_site(site: str) -> None:
    """Raise a `ValueError` naming the allowed sites when `site` is unknown."""
    if site not in _SITE_TABLE:
        raise ValueError(f"Unknown site {site!r}; allowed sites are {', '.join(SITES)}")


def check_layer(model: nn.Module, layer: int) -> None:
    """Raise a `ValueError` naming the allowed range when `layer` is not a layer of `model`."""
    count = n_layers(model)
    if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer < count:
        raise ValueError(f"Layer {layer!r} is out of range: this model has layers 0..{count - 1}")


def resolve(model: nn.Module, site: str, layer: int) -> SitePoint:
    """Map (site, layer) to the module to hook and its side.

    Example:
        >>> from scopewidgets.testing import tiny_gemma3
        >>> model, _ = tiny_gemma3()
        >>> resolve(model, "attn_out", 1).side
        'input'
    """
    check_site(site)
    check_layer(model, layer)
    path, side, _ = _SITE_TABLE[site]
    module = decoder_layers(model)[layer]
    if path:
        module = module.get_submodule(path)
    return SitePoint(site=site, layer=layer, module=module, side=side)


_HF_HOOK = re.compile(
    r"^(?:model\.)?(?:language_model\.)?(?:model\.)?layers\.(\d+)(?:\.(.+?))??(?:\.(input|output))?$"
)
_HF_SUFFIX: dict[tuple[str, str], str] = {
    ("", "output"): "resid_post",
    ("self_attn.o_proj", "input"): "attn_out",
    ("post_feedforward_layernorm", "output"): "mlp_out",
    ("pre_feedforward_layernorm", "output"): "transcoder_in",
}


def parse_hf_hook_point(hook_point: str) -> tuple[str, int]:
    """Parse a Gemma Scope 2 `hf_hook_point_in` string into (site, layer).

    Example:
        >>> parse_hf_hook_point("model.layers.13.self_attn.o_proj.input")
        ('attn_out', 13)
    """
    match = _HF_HOOK.match(hook_point.strip())
    if match:
        layer, path, side = int(match.group(1)), match.group(2) or "", match.group(3) or "output"
        site = _HF_SUFFIX.get((path, side))
        if site is not None:
            return site, layer
    raise ValueError(
        f"Unsupported hook point {hook_point!r}; expected one of model.layers.L.output, "
        "model.layers.L.self_attn.o_proj.input, model.layers.L.pre_feedforward_layernorm.output, "
        "model.layers.L.post_feedforward_layernorm.output"
    )


_TL_HOOK = re.compile(r"^blocks\.(\d+)\.(.+)$")
_TL_SUFFIX: dict[str, str] = {
    "hook_resid_post": "resid_post",
    "hook_mlp_out": "mlp_out",
    "attn.hook_z": "attn_out",
    "ln2.hook_normalized": "transcoder_in",
}


def parse_tl_hook_name(hook_name: str) -> tuple[str, int]:
    """Parse a SAELens / TransformerLens hook name into (site, layer).

    `blocks.L.hook_resid_pre` is read as `resid_post` of layer L-1 (the same tensor).

    Example:
        >>> parse_tl_hook_name("blocks.13.attn.hook_z")
        ('attn_out', 13)
    """
    match = _TL_HOOK.match(hook_name.strip())
    if match:
        layer, suffix = int(match.group(1)), match.group(2)
        if suffix == "hook_resid_pre" and layer > 0:
            return "resid_post", layer - 1
        if suffix in _TL_SUFFIX:
            return _TL_SUFFIX[suffix], layer
    raise ValueError(
        f"Unsupported hook name {hook_name!r}; expected blocks.L.hook_resid_post, blocks.L.hook_resid_pre (L>0), "
        "blocks.L.hook_mlp_out, blocks.L.attn.hook_z or blocks.L.ln2.hook_normalized"
    )


def parse_hook(hook: str) -> tuple[str, int]:
    """Parse either hook naming scheme (Hugging Face module path or TransformerLens name)."""
    return parse_tl_hook_name(hook) if hook.strip().startswith("blocks.") else parse_hf_hook_point(hook)


def hf_hook_point(site: str, layer: int) -> str:
    """The Gemma Scope 2 style hook string for (site, layer)."""
    check_site(site)
    path, side, _ = _SITE_TABLE[site]
    return f"model.layers.{layer}" + (f".{path}" if path else "") + f".{side}"
