"""Reading and writing SAE files: Gemma Scope 1 (`params.npz`), Gemma Scope 2 (`params.safetensors` +
`config.json`) and SAELens (`cfg.json` + `sae_weights.safetensors`), from a local folder or the hub."""

from __future__ import annotations

import json
import os
import re
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from .sae import SAE, SAEConfig
from .sites import hf_hook_point, parse_hf_hook_point, parse_hook
from .validate import ArgumentTypeError

GS1_FILES = ("params.npz",)
GS2_FILES = ("params.safetensors", "config.json")
SAELENS_FILES = ("cfg.json", "sae_weights.safetensors")
_FORMATS = {"gemma_scope_2": GS2_FILES, "saelens": SAELENS_FILES, "gemma_scope_1": GS1_FILES}

_GS1_PATH = re.compile(r"layer_(\d+)/width_(\w+?)/(?:average_l0_(\d+)|canonical)")
_GS1_SITE = {"res": "resid_post", "mlp": "mlp_out", "att": "attn_out", "transcoders": "transcoder_in"}


def detect_format(folder: Path) -> str:
    """Which of the three formats `folder` holds, from the files present."""
    found = [name for name, files in _FORMATS.items() if all((folder / f).is_file() for f in files)]
    if len(found) > 1:
        held = "; ".join(f"{' + '.join(_FORMATS[name])} ({name})" for name in found)
        raise ValueError(
            f"{folder} holds more than one SAE: {held}. Keep one format's files in the folder, or point "
            "load_sae at a folder per SAE"
        )
    if found:
        return found[0]
    present = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    raise FileNotFoundError(
        f"No SAE found in {folder}: expected params.npz (Gemma Scope 1), params.safetensors + config.json "
        f"(Gemma Scope 2) or cfg.json + sae_weights.safetensors (SAELens); found {present or 'nothing'}"
    )


def gs1_site_from_name(name: str) -> str | None:
    """Site from a Gemma Scope 1 repo name suffix (`-res`, `-mlp`, `-att`, `-transcoders`)."""
    match = re.search(r"gemma-scope-[\w.]+?-(?:pt|it)-(res|mlp|att|transcoders)\b", name)
    return _GS1_SITE[match.group(1)] if match else None


def resolve_canonical(paths: Iterable[str], sae_id: str) -> str:
    """Resolve `layer_L/width_W/canonical` to the `average_l0_N` whose N is closest to 100.

    Example:
        >>> resolve_canonical(["layer_3/width_16k/average_l0_40/params.npz",
        ...                    "layer_3/width_16k/average_l0_112/params.npz"], "layer_3/width_16k/canonical")
        'layer_3/width_16k/average_l0_112'
    """
    prefix = sae_id.strip("/").removesuffix("/canonical")
    candidates: dict[int, str] = {}
    for path in paths:
        match = re.fullmatch(re.escape(prefix) + r"/average_l0_(\d+)(?:/params\.npz)?", path.strip("/"))
        if match:
            candidates[int(match.group(1))] = f"{prefix}/average_l0_{match.group(1)}"
    if not candidates:
        raise FileNotFoundError(f"No SAE under {prefix}/average_l0_* to resolve {sae_id!r}")
    best = min(candidates, key=lambda n: (abs(n - 100), n))
    return candidates[best]


def _load_npz(path: Path) -> dict[str, torch.Tensor]:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: torch.from_numpy(np.array(data[key])) for key in data.files}
    except (ValueError, zipfile.BadZipFile, OSError, EOFError) as err:
        raise ValueError(f"{path}: not a plain numeric .npz (pickled objects are refused): {err}") from err


def _load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(path)
    except Exception as err:  # safetensors' own error types: truncated file, absurd header, bad JSON header
        raise ValueError(f"{path}: damaged or not a safetensors file ({type(err).__name__}: {err})") from err


def _read_json(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from err
    if not isinstance(meta, dict):
        raise ValueError(f"{path} must hold a JSON object of settings, got a JSON {type(meta).__name__}")
    return meta


def _check_weights(path: Path, tensors: dict[str, torch.Tensor], encoder_key: str = "W_enc") -> None:
    """The encoder is 2-D and every weight is finite, else a `ValueError` naming the file and tensor."""
    encoder = tensors.get(encoder_key)
    if encoder is not None and encoder.ndim != 2:
        raise ValueError(
            f"{path}: {encoder_key!r} has shape {tuple(encoder.shape)}; expected 2-D [d_in, d_sae]"
        )
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise ValueError(
                f"{path}: tensor {name!r} holds {bad} NaN/inf value(s) of {tensor.numel()}; the file is damaged"
            )


def _read_gs1(folder: Path, name: str) -> tuple[SAEConfig, dict[str, torch.Tensor]]:
    tensors = _load_npz(folder / "params.npz")
    if "W_enc" not in tensors:
        raise ValueError(f"{folder / 'params.npz'}: missing key 'W_enc' (found {sorted(tensors)})")
    _check_weights(folder / "params.npz", tensors)
    d_in, d_sae = (int(n) for n in tensors["W_enc"].shape)
    match = _GS1_PATH.search(name)
    site = gs1_site_from_name(name)
    cfg = SAEConfig(
        d_in=d_in,
        d_sae=d_sae,
        architecture="jumprelu",
        site=site,
        layer=int(match.group(1)) if match else None,
        hook_point=None,
        source=name,
        site_out="transcoder_out" if site == "transcoder_in" else None,
        extra={"average_l0": int(match.group(3))} if match and match.group(3) else {},
    )
    return cfg, tensors


def _read_gs2(folder: Path, name: str) -> tuple[SAEConfig, dict[str, torch.Tensor]]:
    meta = _read_json(folder / "config.json")
    raw = _load_safetensors(folder / "params.safetensors")
    if "w_enc" not in raw:
        raise ValueError(f"{folder / 'params.safetensors'}: missing key 'w_enc' (found {sorted(raw)})")
    tensors = {
        k: raw[k.lower()] for k in ("W_enc", "W_dec", "b_enc", "b_dec", "threshold") if k.lower() in raw
    }
    if "affine_skip_connection" in raw:
        tensors["W_skip"] = raw["affine_skip_connection"]
    _check_weights(folder / "params.safetensors", raw, "w_enc")
    architecture = str(meta.get("architecture", "jump_relu")).replace("_", "")
    hook_in = meta.get("hf_hook_point_in")
    if not hook_in:
        raise ValueError(f"{folder / 'config.json'}: missing 'hf_hook_point_in'")
    site, layer = parse_hf_hook_point(hook_in)
    hook_out = meta.get("hf_hook_point_out")
    site_out = parse_hf_hook_point(hook_out)[0] if hook_out and hook_out != hook_in else None
    if site == "transcoder_in" and site_out == "mlp_out":
        site_out = "transcoder_out"
    d_in, d_sae = (int(n) for n in tensors["W_enc"].shape)
    width = _width(meta.get("width"))
    if width is not None and width != d_sae:
        raise ValueError(
            f"{folder / 'config.json'}: width {meta['width']!r} disagrees with params.safetensors, whose "
            f"w_enc {tuple(tensors['W_enc'].shape)} has {d_sae} features"
        )
    cfg = SAEConfig(
        d_in=d_in,
        d_sae=d_sae,
        architecture=architecture,
        site=site,
        layer=layer,
        model_name=meta.get("model_name"),
        hook_point=hook_in,
        source=name,
        apply_b_dec_to_input=bool(meta.get("apply_b_dec_to_input", False)),
        k=meta.get("k"),
        site_out=site_out,
        extra={k: meta[k] for k in ("width", "l0", "type", "affine_connection", "training") if k in meta},
    )
    return cfg, tensors


def _read_saelens(folder: Path, name: str) -> tuple[SAEConfig, dict[str, torch.Tensor]]:
    meta = _read_json(folder / "cfg.json")
    missing = [key for key in ("d_in", "d_sae") if not isinstance(meta.get(key), int)]
    if missing:
        found = {key: meta.get(key) for key in missing}
        raise ValueError(f"{folder / 'cfg.json'}: {', '.join(missing)} must be ints, got {found}")
    tensors = _load_safetensors(folder / "sae_weights.safetensors")
    if "log_threshold" in tensors and "threshold" not in tensors:
        tensors["threshold"] = tensors.pop("log_threshold").exp()
    _check_weights(folder / "sae_weights.safetensors", tensors)
    info = meta.get("metadata") or {}
    hook = info.get("hook_name") or meta.get("hook_name")
    site, layer = parse_hook(hook) if hook else (None, None)
    normalize = meta.get("normalize_activations") or "none"
    if normalize != "none":
        raise ValueError(
            f"{folder / 'cfg.json'}: normalize_activations={normalize!r} is not supported (only 'none')"
        )
    architecture = str(meta.get("architecture", "standard")).replace("_", "")
    if architecture not in ("standard", "jumprelu", "topk"):
        raise ValueError(
            f"{folder / 'cfg.json'}: architecture {architecture!r} is not supported "
            "(supported: standard, jumprelu, topk)"
        )
    k = meta.get("k") or (meta.get("activation_fn_kwargs") or {}).get("k")
    cfg = SAEConfig(
        d_in=int(meta["d_in"]),
        d_sae=int(meta["d_sae"]),
        architecture=architecture,
        site=site,
        layer=layer,
        model_name=info.get("model_name") or meta.get("model_name"),
        hook_point=hook,
        source=name,
        apply_b_dec_to_input=bool(meta.get("apply_b_dec_to_input", False)),
        k=int(k) if k is not None else None,
        extra={"neuronpedia_id": info.get("neuronpedia_id") or meta.get("neuronpedia_id")},
    )
    return cfg, tensors


def _width(value: Any) -> int | None:
    """A config's width as a feature count: an int, or a string such as "16k" / "1m"; None when absent."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = re.fullmatch(r"(\d+)([km]?)", str(value).strip().lower()) if value is not None else None
    if not match:
        return None
    return int(match.group(1)) * {"": 1, "k": 1024, "m": 1024**2}[match.group(2)]


_READERS = {"gemma_scope_1": _read_gs1, "gemma_scope_2": _read_gs2, "saelens": _read_saelens}


def read_folder(folder: Path, name: str | None = None) -> SAE:
    """Read the SAE held in a local folder, whatever its format."""
    if not folder.exists():
        raise FileNotFoundError(f"SAE path {folder} does not exist")
    fmt = detect_format(folder)
    try:
        cfg, tensors = _READERS[fmt](folder, name or str(folder))
        sae = SAE.from_tensors(cfg, tensors)
    except (ValueError, TypeError, KeyError) as err:
        if str(folder) in str(err) or (name and name in str(err)):
            raise
        raise ValueError(f"{folder} ({fmt.replace('_', ' ')} files): {err}") from err
    sae.labels.update(read_labels(folder / LABELS_FILE, cfg.d_sae))
    sae.auto_labels.update(read_labels(folder / AUTO_LABELS_FILE, cfg.d_sae))
    return sae


LABELS_FILE = "labels.json"
AUTO_LABELS_FILE = "auto_labels.json"  # from sw.label_features; labels.json entries win


def read_labels(path: Path, d_sae: int) -> dict[int, str]:
    """Feature labels from an optional `labels.json` ({"12": "text", ...}); empty when the file is absent."""
    if not path.is_file():
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from err
    if not isinstance(raw, dict):
        raise ValueError(
            f"{path} must hold an object mapping feature index to label, got {type(raw).__name__}"
        )
    labels: dict[int, str] = {}
    for key, text in raw.items():
        if not str(key).isdigit() or not 0 <= int(key) < d_sae:
            raise ValueError(f"{path}: feature {key!r} is not an index in [0, {d_sae})")
        if not isinstance(text, str):
            raise ValueError(
                f"{path}: the label of feature {key} must be a string, got {type(text).__name__}"
            )
        labels[int(key)] = text
    return labels


def save_sae(sae: SAE, folder: str | os.PathLike[str], *, dtype: torch.dtype = torch.float32) -> Path:
    """Save in the Gemma Scope 2 layout (`params.safetensors` + `config.json`), readable by `load_sae`.

    Example:
        >>> import tempfile, torch
        >>> from scopewidgets import SAE, SAEConfig, load_sae
        >>> sae = SAE(SAEConfig(d_in=8, d_sae=16, site="resid_post", layer=1))
        >>> path = save_sae(sae, tempfile.mkdtemp())
        >>> load_sae(path).cfg.d_sae
        16
    """
    cfg = sae.cfg
    if cfg.site is None or cfg.layer is None:
        raise ValueError("save_sae needs an SAE whose config names its site and layer")
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    params = {
        name.lower(): getattr(sae, name).detach().to("cpu", dtype).contiguous()
        for name in ("W_enc", "W_dec", "b_enc", "b_dec", "threshold")
    }
    meta: dict[str, Any] = {
        "hf_hook_point_in": hf_hook_point(cfg.site, cfg.layer),
        "hf_hook_point_out": hf_hook_point(cfg.site_out or cfg.site, cfg.layer),
        "model_name": cfg.model_name,
        "architecture": {"jumprelu": "jump_relu"}.get(cfg.architecture, cfg.architecture),
        "width": cfg.d_sae,
        "apply_b_dec_to_input": cfg.apply_b_dec_to_input,
        **({"k": cfg.k} if cfg.k else {}),
        **{k: v for k, v in cfg.extra.items() if _jsonable(v)},
    }
    save_file(params, str(target / "params.safetensors"))
    (target / "config.json").write_text(json.dumps(meta, indent=2))
    for name, found in ((LABELS_FILE, sae.labels), (AUTO_LABELS_FILE, sae.auto_labels)):
        if found:
            labels = {str(k): v for k, v in sorted(found.items())}
            (target / name).write_text(json.dumps(labels, indent=2, ensure_ascii=False), encoding="utf-8")
        else:
            (target / name).unlink(missing_ok=True)  # not another SAE's labels
    return target


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except TypeError:
        return False
    return True


_REPO_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


def load_sae(
    repo_or_path: str | os.PathLike[str],
    sae_id: str | None = None,
    *,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    site: str | None = None,
    layer: int | None = None,
) -> SAE:
    """Load an SAE from a local folder or a hub repo, in any of the three formats.

    The format is detected from the files present: `params.npz` (Gemma Scope 1), `params.safetensors` +
    `config.json` (Gemma Scope 2), `cfg.json` + `sae_weights.safetensors` (SAELens). From the hub only
    those files are downloaded. For Gemma Scope 1, `layer_L/width_W/canonical` picks the average L0
    closest to 100. `site`/`layer` override what the file says (useful for local Gemma Scope 1 copies
    whose folder name does not carry the repo's site suffix). A local folder may also hold `labels.json`
    (`{"12": "French words", ...}`): the labels show in the widgets and tables; `auto_labels.json` (from
    `sw.label_features`) labels the rest, and `sae.label_source(f)` says which (`save_sae` writes both).

    Example:
        >>> import scopewidgets as sw
        >>> sae = sw.load_sae("google/gemma-scope-2b-pt-res", "layer_20/width_16k/canonical")  # doctest: +SKIP
        >>> sae = sw.load_sae("path/to/local/folder")                                        # doctest: +SKIP
    """
    if not isinstance(repo_or_path, str | os.PathLike):
        raise ArgumentTypeError(
            f"repo_or_path must be a local folder or a hub repo id 'owner/name' (str or path), got "
            f"{type(repo_or_path).__name__}"
        )
    local = Path(repo_or_path).expanduser()
    if local.exists():
        folder = local / sae_id if sae_id else local
        sae = read_folder(folder, str(folder))
    else:
        repo = str(repo_or_path)
        if not _REPO_ID.match(repo):
            raise FileNotFoundError(
                f"SAE path {repo!r} does not exist (and is not a hub repo id 'owner/name')"
            )
        if not sae_id:
            raise ValueError(
                f"Loading from the hub repo {repo!r} needs sae_id (the SAE's folder in the repo)"
            )
        from .hub import download_first, list_files

        if sae_id.rstrip("/").endswith("/canonical"):
            sae_id = resolve_canonical(list_files(repo), sae_id)
        folder = download_first(repo, sae_id.strip("/"), [GS2_FILES, GS1_FILES, SAELENS_FILES])
        sae = read_folder(folder, f"{repo}/{sae_id.strip('/')}")
    if site is not None or layer is not None:
        sae = sae.placed(
            site if site is not None else sae.cfg.site, layer if layer is not None else sae.cfg.layer
        )
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    return sae.to(device=device, dtype=dtype).eval()
