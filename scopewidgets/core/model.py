"""Loading Gemma models from the hub or a local folder, with sensible device/dtype defaults."""

from __future__ import annotations

from typing import Any

import torch


def default_device_dtype(
    device: str | torch.device | None, dtype: str | torch.dtype | None
) -> tuple[torch.device, torch.dtype]:
    """CUDA + bfloat16 when a GPU is available, else CPU + float32; explicit values win.

    Example:
        >>> default_device_dtype("cpu", None)
        (device(type='cpu'), torch.float32)
    """
    device = (
        torch.device(device)
        if device is not None
        else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    )
    if isinstance(dtype, str):
        if not isinstance(getattr(torch, dtype, None), torch.dtype):
            raise ValueError(f"Unknown dtype {dtype!r}; use e.g. 'float32', 'bfloat16' or 'float16'")
        dtype = getattr(torch, dtype)
    if dtype is None:
        dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    return device, dtype


def load_model(
    model_id_or_path: str,
    *,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    **kwargs: Any,
) -> tuple[Any, Any]:
    """`(model, tokenizer)` for a Gemma 2 / Gemma 3 checkpoint (hub id or folder), in eval mode.

    Never passes `trust_remote_code`. Gated repos raise a `PermissionError` explaining how to get access.

    Example:
        >>> model, tokenizer = load_model("google/gemma-3-270m")             # doctest: +SKIP
    """
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from .hub import call_with_hub_errors

    if kwargs.pop("trust_remote_code", False):
        raise ValueError("scopewidgets never runs remote code: trust_remote_code is not allowed")
    device, dtype = default_device_dtype(device, dtype)
    config = call_with_hub_errors(model_id_or_path, AutoConfig.from_pretrained, model_id_or_path)
    model_type = getattr(config, "model_type", "")
    if model_type == "gemma2":
        kwargs.setdefault("attn_implementation", "eager")
    loader = AutoModelForCausalLM
    if model_type == "gemma3" and hasattr(config, "vision_config"):
        from transformers import Gemma3ForConditionalGeneration

        loader = Gemma3ForConditionalGeneration
    model = call_with_hub_errors(
        model_id_or_path, loader.from_pretrained, model_id_or_path, dtype=dtype, **kwargs
    )
    tokenizer = call_with_hub_errors(model_id_or_path, AutoTokenizer.from_pretrained, model_id_or_path)
    return model.to(device).eval(), tokenizer
