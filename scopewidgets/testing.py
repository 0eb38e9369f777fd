"""Tiny random Gemma models and SAEs, built offline from configs, for tests, docs and quick experiments.

Each builder returns `(model, tokenizer)`. The tokenizer is byte-level (one token per byte, plus
`<pad>`=0, `<eos>`=1, `<bos>`=2, `<unk>`=3) and, like Gemma's, prepends `<bos>` when asked to add
special tokens.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import torch

from .activations import Activations
from .core.sae import SAE, SAEConfig
from .core.sites import site_width

SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>"]


@lru_cache(maxsize=1)
def _tokenizer_object() -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from tokenizers.pre_tokenizers import ByteLevel

    alphabet = ByteLevel.alphabet()
    vocab = {tok: i for i, tok in enumerate(SPECIALS)}
    for symbol in sorted(alphabet):
        vocab[symbol] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.TemplateProcessing(
        single="<bos> $A", pair="<bos> $A $B", special_tokens=[("<bos>", 2)]
    )
    return tok


def tiny_tokenizer() -> Any:
    """A byte-level fast tokenizer with 260 ids that prepends `<bos>` like Gemma's.

    Example:
        >>> tok = tiny_tokenizer()
        >>> tok("hi").input_ids
        [2, 75, 76]
    """
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=_tokenizer_object(),
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
    )


VOCAB = len(SPECIALS) + 256


def _text_kwargs(layers: int, hidden: int, heads: int, head_dim: int) -> dict[str, Any]:
    return {
        "vocab_size": VOCAB,
        "hidden_size": hidden,
        "intermediate_size": 2 * hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": 1,
        "head_dim": head_dim,
        "max_position_embeddings": 256,
        "sliding_window": 16,
        "pad_token_id": 0,
        "eos_token_id": 1,
        "bos_token_id": 2,
    }


def _finish(model: Any, seed: int) -> tuple[Any, Any]:
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "norm" in name:
                param.normal_(0.0, 0.1)  # Gemma norms scale by (1 + w): keep them near 1 but not exactly
    model.eval()
    return model, tiny_tokenizer()


def tiny_gemma2(layers: int = 4, hidden: int = 64, seed: int = 0) -> tuple[Any, Any]:
    """A random Gemma 2 causal LM (eager attention, soft-capping on) and its tokenizer.

    Example:
        >>> model, tok = tiny_gemma2()
        >>> type(model).__name__
        'Gemma2ForCausalLM'
    """
    from transformers import Gemma2Config, Gemma2ForCausalLM

    torch.manual_seed(seed)
    config = Gemma2Config(**_text_kwargs(layers, hidden, 2, 32), attn_implementation="eager")
    return _finish(Gemma2ForCausalLM(config), seed)


def tiny_gemma3(layers: int = 4, hidden: int = 64, seed: int = 0) -> tuple[Any, Any]:
    """A random Gemma 3 text causal LM and its tokenizer.

    Example:
        >>> model, tok = tiny_gemma3()
        >>> model.config.hidden_size
        64
    """
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    torch.manual_seed(seed)
    config = Gemma3TextConfig(**_text_kwargs(layers, hidden, 2, 32))
    return _finish(Gemma3ForCausalLM(config), seed)


def tiny_gemma3_multimodal(layers: int = 4, hidden: int = 64, seed: int = 0) -> tuple[Any, Any]:
    """A random `Gemma3ForConditionalGeneration` (text layers under `model.language_model`).

    Example:
        >>> model, tok = tiny_gemma3_multimodal()
        >>> type(model).__name__
        'Gemma3ForConditionalGeneration'
    """
    from transformers import (
        Gemma3Config,
        Gemma3ForConditionalGeneration,
        Gemma3TextConfig,
        SiglipVisionConfig,
    )

    torch.manual_seed(seed)
    vision = SiglipVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        image_size=28,
        patch_size=14,
    )
    config = Gemma3Config(
        text_config=Gemma3TextConfig(**_text_kwargs(layers, hidden, 2, 32)),
        vision_config=vision,
        mm_tokens_per_image=4,
    )
    return _finish(Gemma3ForConditionalGeneration(config), seed)


#: The configs of real Gemma checkpoints, for `real_shape_gemma`: every width, head count, head_dim, vocabulary,
#: norm and soft-capping as published (only the number of layers is cut).
REAL_SHAPES: dict[str, dict[str, Any]] = {
    "gemma-2-2b": {
        "vocab_size": 256000, "hidden_size": 2304, "intermediate_size": 9216, "num_hidden_layers": 26,
        "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 256, "max_position_embeddings": 8192,
        "sliding_window": 4096, "query_pre_attn_scalar": 256, "attn_logit_softcapping": 50.0,
        "final_logit_softcapping": 30.0, "rms_norm_eps": 1e-6, "attn_implementation": "eager",
    },
    "gemma-3-270m": {
        "vocab_size": 262144, "hidden_size": 640, "intermediate_size": 2048, "num_hidden_layers": 18,
        "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 256, "max_position_embeddings": 32768,
        "sliding_window": 512, "query_pre_attn_scalar": 256, "rms_norm_eps": 1e-6,
    },
    "gemma-3-1b": {
        "vocab_size": 262144, "hidden_size": 1152, "intermediate_size": 6912, "num_hidden_layers": 26,
        "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 256, "max_position_embeddings": 32768,
        "sliding_window": 512, "query_pre_attn_scalar": 256, "rms_norm_eps": 1e-6,
    },
}  # fmt: skip


def real_shape_gemma(name: str, layers: int = 2, seed: int = 0) -> tuple[Any, Any]:
    """A random-weight model with the exact config of `name` (a key of `REAL_SHAPES`) but only `layers`
    layers, and the byte-level tokenizer. It has the shapes tiny models hide (attention width heads x head_dim
    != hidden, a 256k vocabulary). Built on the meta device and filled directly (the embedding tiles a random
    block of rows), so even the 2B's 590M-entry embedding takes about a second.

    Example:
        >>> model, tok = real_shape_gemma("gemma-3-270m", layers=1)              # doctest: +SKIP
        >>> model.model.layers[0].self_attn.o_proj.in_features, model.config.hidden_size  # doctest: +SKIP
        (1024, 640)
    """
    from transformers import Gemma2Config, Gemma2ForCausalLM, Gemma3ForCausalLM, Gemma3TextConfig

    gemma2 = name.startswith("gemma-2")
    config_class, model_class = (
        (Gemma2Config, Gemma2ForCausalLM) if gemma2 else (Gemma3TextConfig, Gemma3ForCausalLM)
    )
    config = config_class(
        **{**REAL_SHAPES[name], "num_hidden_layers": layers}, bos_token_id=2, eos_token_id=1
    )
    with torch.device("meta"):
        model = model_class(config)
    model = model.to_empty(device="cpu")
    model.tie_weights()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param_name, param in model.named_parameters():
            if "norm" in param_name:
                param.normal_(0.0, 0.1, generator=gen)
            elif param_name.endswith("embed_tokens.weight"):
                rows = math.gcd(param.shape[0], 4096)
                block = torch.randn(rows, param.shape[1], generator=gen)
                param.view(-1, rows, param.shape[1]).copy_(block.expand(param.shape[0] // rows, -1, -1))
            else:
                param.normal_(0.0, 0.02, generator=gen)
        for module in model.modules():  # buffers the meta device left empty
            if "Rotary" in type(module).__name__:
                model._init_weights(module)
            if isinstance(getattr(module, "embed_scale", None), torch.Tensor):
                module.embed_scale.fill_(module.scalar_embed_scale)
    return model.eval(), tiny_tokenizer()


def random_sae(
    model: Any,
    site: str = "resid_post",
    layer: int = 1,
    d_sae: int = 128,
    architecture: str = "jumprelu",
    seed: int = 0,
    k: int | None = None,
    threshold: float = 0.0,
) -> SAE:
    """A random SAE placed at (site, layer) of `model`: unit decoder rows, tied encoder, given threshold.

    Example:
        >>> model, _ = tiny_gemma3()
        >>> random_sae(model, d_sae=32).cfg.d_in
        64
    """
    d_in = site_width(model, site)
    gen = torch.Generator().manual_seed(seed)
    cfg = SAEConfig(
        d_in=d_in,
        d_sae=d_sae,
        architecture=architecture,
        site=site,
        layer=layer,
        model_name=type(model).__name__,
        source="random",
        k=k if architecture != "topk" else (k or max(1, d_sae // 8)),
    )
    w_dec = torch.randn(d_sae, d_in, generator=gen)
    w_dec /= w_dec.norm(dim=-1, keepdim=True)
    tensors = {
        "W_enc": w_dec.T.clone(),
        "W_dec": w_dec,
        "b_enc": torch.zeros(d_sae),
        "b_dec": torch.zeros(d_in),
        "threshold": torch.full((d_sae,), float(threshold)),
    }
    return SAE.from_tensors(cfg, tensors)


def fake_activations(
    tokens: list[str], values: Any, labels: dict[int, str] | None = None, bos: bool = True
) -> Activations:
    """An `Activations` from given token strings and a `[n_tokens, d_sae]` array, with no model (for
    widget tests and docs). With `bos=True` the first token is marked BOS.

    Example:
        >>> acts = fake_activations(["<bos>", "Hi"], [[0.0, 0.0], [1.5, 0.0]], labels={0: "greeting"})
        >>> acts.top_features(1).loc[0, "label"]
        'greeting'
    """
    values = torch.as_tensor(values, dtype=torch.float32)
    if values.ndim != 2 or values.shape[0] != len(tokens):
        raise ValueError(f"values must be [n_tokens={len(tokens)}, d_sae], got shape {tuple(values.shape)}")
    sae = SAE(SAEConfig(d_in=1, d_sae=values.shape[1], source="fake"), labels=labels)
    bos_mask = torch.zeros(len(tokens), dtype=torch.bool)
    bos_mask[0] = bos
    return Activations(
        tokens=list(tokens),
        token_ids=torch.arange(len(tokens)),
        values=values,
        sae=sae,
        text="".join(tokens[1:] if bos else tokens),
        bos_mask=bos_mask,
    )


def tiny_scope(d_sae: int = 64, layer: int = 1, labels: dict[int, str] | None = None) -> Any:
    """A `Scope` over a tiny random Gemma 3 with one random SAE at `resid_post` of `layer`.

    Example:
        >>> scope = tiny_scope(labels={3: "a label"})
        >>> scope.saes[0].cfg.d_sae, scope.saes[0].label(3)
        (64, 'a label')
    """
    from .scope import Scope

    model, tokenizer = tiny_gemma3()
    sae = random_sae(model, "resid_post", layer, d_sae=d_sae)
    sae.labels.update(labels or {})
    return Scope(model, tokenizer, saes=[sae])
