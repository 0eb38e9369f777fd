"""`DashboardSet.save(path)` / `DashboardSet.load(path, scope)`: a pass in one safetensors file.

The file has the Gemma Scope 2 `examples.safetensors` layout that `dashboards.evidence` reads (so any
reader of that layout sees each feature's top examples), plus `scopewidgets.`-prefixed keys that hold the
exact pass and the effect table, from which `load` rebuilds the `DashboardSet` bit for bit. Every key is
listed in docs/dashboards.md ("Saving and loading"). The metadata holds the fingerprints of the model and
the SAE (`core.fingerprint`); `load` refuses a file saved with other weights unless `check=False`.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..core.fingerprint import model_fingerprint, sae_fingerprint
from .effect_table import EffectTable
from .state import DashboardState, PassSettings

if TYPE_CHECKING:
    from ..core.engine import Engine
    from ..core.sae import SAE
    from .result import DashboardSet

FORMAT = "scopewidgets-dashboards/1"
STATE, EFFECTS = "scopewidgets.state.", "scopewidgets.effects."


def evidence_tensors(state: DashboardState, d_sae: int, pad_id: int) -> dict[str, torch.Tensor]:
    """The Gemma Scope layout of a pass's top examples: one `tokens` row per kept example window."""
    top = state.finish().top.entries.map(lambda t: t.cpu())  # slots in canonical order
    k, width = state.settings.n_examples, top.ids.shape[1]  # windows centred on their focus token
    used = top.seq >= 0
    rows = torch.full((top.seq.numel(),), -1, dtype=torch.long)
    rows[used] = torch.arange(int(used.sum()))
    features = state.features.cpu()
    activations = torch.zeros(d_sae, k)
    seq_ids = torch.zeros(d_sae, k, dtype=torch.long)
    positions = torch.full((d_sae, k), width // 2, dtype=torch.long)
    activations[features] = torch.where(used, top.value, 0.0).view(-1, k)
    seq_ids[features] = rows.clamp(min=0).view(-1, k)
    frequencies = torch.zeros(d_sae)
    frequencies[features] = (state.hist.sum(dim=1).double() / max(state.n_tokens, 1)).float().cpu()
    tokens = torch.where(top.ids[used] >= 0, top.ids[used], pad_id).long()
    return {
        "activations": activations,
        "seq_ids": seq_ids,
        "positions": positions,
        "tokens": tokens if tokens.numel() else torch.full((1, width), pad_id, dtype=torch.long),
        "feature_frequencies": frequencies,
    }


def save(dashes: DashboardSet, path: str | Path) -> Path:
    """Write `dashes` (a corpus pass) to `path` with its effect table and fingerprints."""
    from safetensors.torch import save_file

    from .materialize import ensure_table

    state = dashes.state
    if state is None:
        raise ValueError("Only corpus passes can be saved (evidence-file dashboards are files already)")
    scope, sae = dashes.scope, dashes.sae
    pad = scope.tokenizer.pad_token_id if scope.tokenizer.pad_token_id is not None else 0
    tensors = evidence_tensors(state, sae.cfg.d_sae, pad)
    tensors |= {STATE + k: v.detach().cpu().contiguous() for k, v in state.tensors().items()}
    tensors |= {EFFECTS + k: v for k, v in ensure_table(dashes).tensors().items()}
    metadata = {
        "format": FORMAT,
        "settings": json.dumps(asdict(state.settings), sort_keys=True),
        "n_bins": str(dashes.n_bins),
        "corpus_key": dashes.corpus_key or "",
        "model": model_fingerprint(scope.model),
        "sae": sae_fingerprint(sae),
        "d_sae": str(sae.cfg.d_sae),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.clone().contiguous() for k, v in tensors.items()}, str(path), metadata=metadata)
    return path


def load(
    kind: type[DashboardSet],
    path: str | Path,
    scope: Engine,
    sae: int | SAE | None = None,
    check: bool = True,
) -> DashboardSet:
    """The `DashboardSet` (of class `kind`) saved at `path`, over `scope`'s model and `sae` (checked by fingerprint)."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    from .rows import StateRows

    path, chosen = Path(path), scope.sae(sae)
    if not path.is_file():
        raise FileNotFoundError(f"No saved dashboards at {path}")
    with safe_open(str(path), framework="pt") as handle:
        metadata: dict[str, Any] = handle.metadata() or {}
    if metadata.get("format") != FORMAT:
        raise ValueError(
            f"{path} is not a saved DashboardSet (format {metadata.get('format')!r}, expected {FORMAT!r})"
        )
    if check:
        _check_weights(path, metadata, scope, chosen)
    tensors = load_file(str(path))
    settings = PassSettings(**json.loads(metadata["settings"]))
    state = DashboardState.from_tensors(_prefixed(tensors, STATE), settings)
    dashes = kind(
        StateRows(state), scope, chosen, int(metadata["n_bins"]), metadata.get("corpus_key") or None
    )
    dashes._shared["effects"] = EffectTable.from_tensors(_prefixed(tensors, EFFECTS))
    return dashes


def _check_weights(path: Path, metadata: dict[str, Any], scope: Engine, sae: SAE) -> None:
    if metadata.get("d_sae") != str(sae.cfg.d_sae):
        raise ValueError(
            f"{path} was saved for an SAE of width {metadata.get('d_sae')}, this one has {sae.cfg.d_sae}"
        )
    for name, now in (("sae", sae_fingerprint(sae)), ("model", model_fingerprint(scope.model))):
        if metadata.get(name) != now:
            raise ValueError(
                f"{path} was saved with another {name} (fingerprint {str(metadata.get(name))[:12]}, this "
                f"{name} has {now[:12]}); load it with the same weights, or pass check=False"
            )


def _prefixed(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
