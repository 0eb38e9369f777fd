"""Train a sparse autoencoder on activations streamed from a model, on a CPU budget.

    sae = sw.train_sae(model, tokenizer, "resid_post", 6, 4096, sw.corpus.training_mix(), tokens=4_000_000)

The forward stops right after the layer (`hooks.capture`), BOS positions are dropped, and activations are
shuffled through a buffer. The SAE is trained as TopK or BatchTopK with the AuxK loss against dead features,
then converted to JumpReLU with per-feature thresholds calibrated to reproduce the TopK codes, so `encode`
needs no top-k and the file is a plain Gemma Scope 2 style SAE (`params.safetensors` + `config.json`).
"""

from __future__ import annotations

import itertools
import math
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import torch

from ..core.corpus import token_windows
from ..core.paths import VERSION as __version__
from ..core.sae import SAE, SAEConfig
from ..core.sae_io import save_sae
from ..core.sites import check_layer, check_site, site_width
from .convert import to_jumprelu
from .metric import covariance, metric_factor, metric_matrix, output_fisher, typical_rows
from .streams import model_activations, shuffled_batches
from .trainer import METHODS, Normalizer, TopKTrainer, check_prefixes, dominant_direction


def train_sae(
    model: Any,
    tokenizer: Any,
    site: str,
    layer: int,
    width: int,
    corpus: Any,
    *,
    k: int = 32,
    tokens: int = 2_000_000,
    method: str = "batchtopk",
    seq_len: int = 128,
    batch_size: int = 4096,
    lr: float | None = None,
    seed: int = 0,
    buffer_size: int = 262_144,
    calibration_tokens: int = 65_536,
    dead_after: int | None = None,
    aux_k: int | None = None,
    metric: str = "mse",
    beta: float = 0.1,
    metric_windows: int = 32,
    max_density: float | None = None,
    matryoshka: Sequence[int] = (),
    checkpoint: str | os.PathLike[str] | None = None,
    save_to: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> SAE:
    """Train a JumpReLU SAE of `width` features on `tokens` activations at (site, layer) of `model`.

    Training is (Batch)TopK with `k` active features per token on average (`method`), Adam at `lr` (default
    `2e-4 * sqrt(16384 / width)`, decayed linearly over the last 20% of steps), and the AuxK loss (`aux_k`
    features, default `d_in // 2`) for features silent for `dead_after` tokens (default `tokens // 20`,
    at least 50,000). The result encodes RAW activations with a calibrated per-feature threshold; on the
    training data its codes match the BatchTopK codes on about 90% of the active (token, feature) pairs
    (~70% for per-token TopK). Where the model has massive activations (a few tokens with a huge value
    along one direction, e.g. Gemma's), features 0 and 1 are reserved for that direction and the other
    encoders ignore it, so such tokens do not light up thousands of features.

    `metric="output"` trains in the model's output metric instead of plain squared error: errors are
    weighed by how much they move the next-token predictions (the Fisher information at the site,
    estimated on the first `metric_windows` windows of the corpus with a full forward and backward each,
    mixed with a `beta` share of plain MSE; see `training.metric`), which lowers the loss increase when the
    SAE is spliced in at the same L0. `max_density` (BatchTopK) lets no feature fire on more than that
    share of a batch's tokens, against dense features. `matryoshka` (prefix sizes such as `(128, 512, 2048)`
    for 8,192 features) trains a Matryoshka SAE: the first 128 features must also reconstruct alone, then
    the first 512, and so on, which aims at general features first and less absorption of them by narrow
    ones (see `training.trainer`). The nested loss wants the first features dense: with `max_density` they
    all sit at the cap and the batch's L0 falls (on the demo SAE's data it lost to a flat SAE on every
    measure, `benchmarks/RESULTS.md`). `checkpoint` (a file path) makes the run
    resumable: the state is saved there as it goes, and a run started again with the same arguments
    continues from it (the corpus stream is replayed up to that point).
    `save_to` writes it with `save_sae`. Training settings and final metrics are in
    `sae.cfg.extra["training"]`.

    Example:
        >>> import scopewidgets as sw
        >>> from scopewidgets.testing import tiny_gemma3
        >>> model, tok = tiny_gemma3()
        >>> sae = sw.train_sae(model, tok, "resid_post", 1, 256, ["the cat sat on the mat. "] * 200,
        ...                    k=8, tokens=8192, batch_size=256, buffer_size=2048, progress=False)
        >>> sae.cfg.architecture, sae.cfg.d_sae
        ('jumprelu', 256)
    """
    check_site(site)
    check_layer(model, layer)
    _check_settings(width=width, k=k, tokens=tokens, method=method, batch_size=batch_size, seq_len=seq_len)
    matryoshka = check_prefixes(matryoshka, width)
    if metric not in ("mse", "output"):
        raise ValueError(f"metric must be 'mse' or 'output', got {metric!r}")
    if max_density is not None and not 0.0 < max_density <= 1.0:
        raise ValueError(f"max_density must be in (0, 1], got {max_density!r}")
    d_in = site_width(model, site)
    chunks = model_activations(model, tokenizer, site, layer, corpus, seq_len=seq_len)
    batches = shuffled_batches(chunks, batch_size, max(buffer_size, 2 * batch_size), seed=seed, limit=tokens)
    sample = _take(batches, calibration_tokens)  # trained on first; also sets the scale and calibrates
    if not sample:
        raise ValueError(f"The corpus holds fewer than batch_size={batch_size} tokens; give more text")
    rows = torch.cat(sample)
    if metric == "output":
        windows = token_windows(tokenizer, corpus, seq_len, max_windows=metric_windows)
        fisher = output_fisher(model, windows.split(4), site, layer, seed=seed, progress=progress)
        typical = typical_rows(rows)
        factor = metric_factor(metric_matrix(fisher, covariance(typical), beta))
        norm = Normalizer.fit(typical, metric=factor)
    else:
        norm = Normalizer.fit(rows)
    dominant = dominant_direction(norm(rows))
    started = time.time()
    trainer, norm, stats = fit(
        itertools.chain(sample, batches),
        d_in,
        width,
        k=k,
        tokens=tokens,
        method=method,
        lr=lr,
        seed=seed,
        dead_after=dead_after,
        aux_k=aux_k,
        norm=norm,
        dominant=dominant,
        max_density=max_density,
        prefixes=matryoshka,
        progress=progress,
        checkpoint=checkpoint,
    )
    info = {
        "tokens": stats["tokens"],
        "seconds": round(time.time() - started, 1),
        "k": k,
        "method": method,
        "batch_size": batch_size,
        "seq_len": seq_len,
        "lr": stats["lr"],
        "seed": seed,
        "final_fvu_topk": stats["fvu"],
        "dead_fraction": stats["dead"],
        "reserved_direction": dominant is not None,
        "metric": metric,
        "beta": beta if metric == "output" else None,
        "max_density": max_density,
        "matryoshka": list(matryoshka) or None,
        "trainer": f"scopewidgets {__version__} train_sae",
    }
    cfg = SAEConfig(
        d_in=d_in,
        d_sae=width,
        architecture="jumprelu",
        site=site,
        layer=layer,
        model_name=_model_name(model),
        source="scopewidgets.train_sae",
        extra={"training": info},
    )
    sae = to_jumprelu(trainer, norm, sample, cfg)
    if save_to is not None:
        save_sae(sae, save_to)
    return sae


def _take(batches: Iterator[torch.Tensor], rows: int) -> list[torch.Tensor]:
    """The first batches of `batches`, at least `rows` rows in all (fewer if the stream ends)."""
    taken: list[torch.Tensor] = []
    while sum(len(b) for b in taken) < rows:
        batch = next(batches, None)
        if batch is None:
            break
        taken.append(batch)
    return taken


def fit(
    batches: Iterable[torch.Tensor],
    d_in: int,
    width: int,
    *,
    k: int,
    tokens: int,
    method: str = "batchtopk",
    lr: float | None = None,
    seed: int = 0,
    dead_after: int | None = None,
    aux_k: int | None = None,
    norm: Normalizer | None = None,
    dominant: torch.Tensor | None = None,
    trainer: TopKTrainer | None = None,
    max_density: float | None = None,
    prefixes: Sequence[int] = (),
    progress: bool = True,
    checkpoint: str | os.PathLike[str] | None = None,
    checkpoint_every: int = 1_048_576,
) -> tuple[TopKTrainer, Normalizer, dict[str, float]]:
    """Fit a (Batch)TopK SAE on shuffled `[batch, d_in]` RAW activation batches (at most `tokens` rows).

    The normalizer is estimated from the first batch unless given; `dominant` (a direction of massive
    activations, see `training.trainer`) reserves features 0 and 1 for it; `prefixes` makes it a Matryoshka
    SAE (`TopKTrainer`); `trainer` continues from a state (its own prefixes are kept unless `prefixes` is given).
    With `checkpoint` (a file path), the whole training state (weights, Adam moments, dead-feature clocks,
    random state, normalizer, tokens seen) is written there atomically every `checkpoint_every` tokens and at
    the end; when the file exists at the start, training resumes from it, skipping the batches it had
    already consumed (`batches` must then be the same deterministic stream, e.g. seeded shuffling), and
    ends exactly as an uninterrupted run would. Returns the trainer (normalized space), the normalizer, and statistics (`tokens`, `lr`, `first_fvu`, and
    the last batch's `fvu`, `l0`, `dead`). `to_jumprelu` turns the trainer into an `SAE`. This is the loop
    behind `train_sae`; it also serves activations cached on disk.

    Example:
        >>> batches = (torch.randn(128, 16) for _ in range(20))
        >>> trainer, norm, stats = fit(batches, 16, 64, k=4, tokens=2560, progress=False)
        >>> stats["tokens"]
        2560
    """
    from tqdm.auto import tqdm

    lr = lr if lr is not None else 2e-4 * math.sqrt(16384 / width)
    dead_after = dead_after if dead_after is not None else max(50_000, tokens // 20)
    aux_k = aux_k if aux_k is not None else max(1, d_in // 2)
    if trainer is None:
        trainer = TopKTrainer(d_in, width, k, method=method, seed=seed, prefixes=prefixes)
        if dominant is not None:
            trainer.reserve(dominant)
    elif prefixes:
        trainer.prefixes = check_prefixes(prefixes, trainer.width)
    if max_density is not None:
        trainer.max_density = max_density
    optimizer = torch.optim.Adam(trainer.parameters(), lr=lr, betas=(0.9, 0.999))
    since_fired = torch.zeros(width, dtype=torch.long)
    seen, first_fvu = 0, float("nan")
    stats = {"fvu": float("nan"), "l0": float("nan"), "dead": float("nan")}
    settings = {"d_in": d_in, "width": width, "k": k, "tokens": tokens, "method": trainer.method, "lr": lr}
    if trainer.prefixes:  # (absent otherwise, so that earlier checkpoints still resume)
        settings["prefixes"] = list(trainer.prefixes)
    batches = iter(batches)
    if checkpoint is not None and os.path.exists(checkpoint):
        state = _load_checkpoint(checkpoint, settings, trainer, optimizer)
        since_fired, seen, first_fvu, stats = (
            state["since_fired"], state["seen"], state["first_fvu"], state["stats"]
        )  # fmt: skip
        norm = Normalizer(state["norm_mean"], state["norm_scale"], state.get("norm_metric"))
        skipped = 0
        while skipped < seen:  # the stream is deterministic: drop what the checkpoint already trained on
            batch = next(batches, None)
            if batch is None:
                raise ValueError(f"The checkpoint has seen {seen} tokens but the batches end at {skipped}")
            skipped += len(batch)
    bar = tqdm(
        total=tokens, initial=seen, unit="tok", desc="Training SAE", disable=not progress, mininterval=2
    )
    saved_at = seen
    for x in batches:
        if seen >= tokens:
            break
        norm = norm if norm is not None else Normalizer.fit(x)
        z = norm(x)
        for group in optimizer.param_groups:
            group["lr"] = lr * min(1.0, (tokens - seen) / (0.2 * tokens))
        out = trainer.losses(z, since_fired >= dead_after, aux_k)
        loss = out["recon"] + out["aux"] / 32
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        trainer.project_decoder_grad()
        optimizer.step()
        trainer.enforce_constraints()
        fired = torch.zeros(width, dtype=torch.bool)
        fired[out["cols"]] = True
        since_fired = torch.where(fired, 0, since_fired + len(x))
        first_fvu = out["fvu"].item() if seen == 0 else first_fvu
        seen += len(x)
        stats = {
            "fvu": round(out["fvu"].item(), 4),
            "l0": round(len(out["cols"]) / len(x), 2),
            "dead": round((since_fired >= dead_after).float().mean().item(), 4),
        }
        bar.set_postfix(
            loss=f"{loss.item():.4f}", L0=stats["l0"], FVU=stats["fvu"], dead=stats["dead"], refresh=False
        )
        bar.update(len(x))
        if checkpoint is not None and seen - saved_at >= checkpoint_every:
            _save_checkpoint(
                checkpoint, settings, trainer, optimizer, norm, since_fired, seen, first_fvu, stats
            )
            saved_at = seen
    bar.close()
    if norm is None:
        raise ValueError("No activation batches to train on")
    if checkpoint is not None and seen > saved_at:
        _save_checkpoint(checkpoint, settings, trainer, optimizer, norm, since_fired, seen, first_fvu, stats)
    return trainer.eval(), norm, {"tokens": seen, "lr": lr, "first_fvu": round(first_fvu, 4), **stats}


def _save_checkpoint(
    path: str | os.PathLike[str],
    settings: dict[str, Any],
    trainer: TopKTrainer,
    optimizer: torch.optim.Optimizer,
    norm: Normalizer,
    since_fired: torch.Tensor,
    seen: int,
    first_fvu: float,
    stats: dict[str, float],
) -> None:
    """Write the training state to `path` atomically (a crash mid-write leaves the previous checkpoint)."""
    state = {
        "settings": settings,
        "trainer": trainer.state_dict(),
        "optimizer": optimizer.state_dict(),
        "sampler": trainer._sampler.get_state(),
        "norm_mean": norm.mean,
        "norm_scale": norm.scale,
        "since_fired": since_fired,
        "seen": seen,
        "first_fvu": first_fvu,
        "stats": stats,
    }
    if norm.metric is not None:
        state["norm_metric"] = norm.metric
    tmp = f"{os.fspath(path)}.tmp"
    torch.save(state, tmp)
    os.replace(tmp, path)


def _load_checkpoint(
    path: str | os.PathLike[str],
    settings: dict[str, Any],
    trainer: TopKTrainer,
    optimizer: torch.optim.Optimizer,
) -> dict[str, Any]:
    """Restore `trainer` and `optimizer` from a checkpoint written with the same settings; returns it."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("settings") != settings:
        raise ValueError(
            f"The checkpoint {os.fspath(path)!r} was written for other training settings "
            f"({state.get('settings')}) than these ({settings}); delete it or pass another path"
        )
    weights = state["trainer"]
    if weights.get("dominant") is not None and trainer.dominant is None:
        trainer.dominant = weights["dominant"]
    trainer.load_state_dict(weights)
    optimizer.load_state_dict(state["optimizer"])
    trainer._sampler.set_state(state["sampler"])
    return state


def _check_settings(*, width: int, k: int, tokens: int, method: str, batch_size: int, seq_len: int) -> None:
    if not isinstance(width, int) or width < 1:
        raise ValueError(f"width must be a positive int, got {width!r}")
    if not isinstance(k, int) or not 1 <= k <= width:
        raise ValueError(f"k must be an int in [1, {width}] (the width), got {k!r}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if batch_size < 1 or tokens < batch_size:
        raise ValueError(f"tokens ({tokens}) must be at least batch_size ({batch_size}), and batch_size >= 1")
    if seq_len < 2:
        raise ValueError(f"seq_len must be at least 2 (BOS + one token), got {seq_len}")


def _model_name(model: Any) -> str:
    config = getattr(model, "config", None)
    return str(
        getattr(config, "_name_or_path", "") or getattr(config, "model_type", "") or type(model).__name__
    )
