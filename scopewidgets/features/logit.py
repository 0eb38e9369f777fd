"""Logit search: live features that most promote a token, with the invisible leading space handled
(`"Paris"` tries `"Paris"` and `" Paris"` and says which token each feature promotes).

Two measures of "promotes" (`effect=`):

- `"steer"` (the default): what steering with the feature does to the token, to first order. Adding
  `s * w_dec[f]` at every non-BOS position of the SAE's site (`scope.steer(method="add")`) changes the mean
  log-probability of the token over `CONTEXTS` windows of the package's corpus by `s * effect_f` for small
  `s`; `effect_f = w_dec[f] . g`, where `g` is the gradient of that mean log-probability with respect to a
  direction added at every position: one forward pass, one backward pass through the layers per form of the
  token (and one for the forms together), then one matrix-vector product for all features. The path runs
  through every layer after the site.
- `"direct"`: the decoder direction read straight by the unembedding (through the final norm's gain), the
  logit effect of SAEDashboard and Neuronpedia and of the dashboards' logit tables. It skips every layer
  after the site, so for an SAE in the middle of the model (the demo's layer 6 of 18) it finds mostly noise:
  on the demo, `" Paris"` lists features that fire on `#` or on `and`, where `"steer"` finds
  `French · France`; `"dog"` finds `dog · animal · animals` and `creature · beast · animal`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import torch
from safetensors import SafetensorError

from ..core import sites
from ..core.corpus import bos_id, default, token_windows
from ..core.effects import logit_effects, token_effects
from ..core.fingerprint import model_fingerprint
from ..core.hooks import patch
from ..core.paths import DATA, cache_dir
from ..core.sae import SAE
from ..dashboards.cache import evict
from .columns import density_column, label_column
from .ranking import hidden_mask
from .stats import FeatureStats

if TYPE_CHECKING:
    from ..core.engine import Engine

EFFECTS = ("steer", "direct")
CONTEXTS, CONTEXT_TOKENS = 8, 64  # windows of the package's corpus that "steer" averages over


def token_forms(scope: Engine, token: str | int) -> tuple[list[int], str]:
    """The single-token ids a logit query stands for, and a sentence saying which were used.

    An id is used as given. A string is used as typed when it is one token; a string without a leading
    space also tries `" " + string` (the form a word takes inside a sentence), and both are used when both
    are single tokens. When no form is one token, a `ValueError` lists each form's tokens.

    Example:
        >>> token_forms(scope, "Paris")                          # doctest: +SKIP
        ([50429, 9079], "tokens 'Paris' and ' Paris'")
    """
    if not isinstance(token, str):
        vocab = sites.vocab_size(scope.model)
        if isinstance(token, bool) or not 0 <= int(token) < vocab:
            raise ValueError(f"Token id {token!r} is outside the vocabulary: ids must be in [0, {vocab})")
        return [int(token)], f"token {scope.token_strings([int(token)])[0]!r}"
    if not token:
        raise ValueError("The logit token is empty; give one token such as ' Paris'")
    forms = [token] if token[0].isspace() else [token, " " + token]
    pieces = {form: scope.tokenizer(form, add_special_tokens=False)["input_ids"] for form in forms}
    used = [form for form in forms if len(pieces[form]) == 1]
    if not used:
        listed = "; ".join(
            f"{form!r} is {len(ids)} tokens {scope.token_strings(ids)}" for form, ids in pieces.items()
        )
        raise ValueError(f"Logit search needs a single token: {listed}. Give one of those tokens")
    skipped = [form for form in forms if form not in used]
    said = " and ".join(repr(form) for form in used)
    note = "".join(f" ({form!r} is {len(pieces[form])} tokens)" for form in skipped)
    return [int(pieces[form][0]) for form in used], f"token{'s' if len(used) > 1 else ''} {said}{note}"


def check_effect(effect: str) -> str:
    """`effect` itself, or a `ValueError` naming the allowed values."""
    if effect not in EFFECTS:
        raise ValueError(f"effect must be one of {', '.join(repr(e) for e in EFFECTS)}, got {effect!r}")
    return effect


def context_windows(tokenizer: object, n: int = CONTEXTS, seq_len: int = CONTEXT_TOKENS) -> torch.Tensor:
    """`[n, seq_len]` token windows (BOS first) from `n` texts spread evenly over the package's corpus (the
    first window of each), the contexts a steering effect is averaged over.

    Example:
        >>> from scopewidgets.testing import tiny_tokenizer
        >>> context_windows(tiny_tokenizer(), 4, 16).shape
        torch.Size([4, 16])
    """
    texts = default()
    picked = texts[:: max(1, len(texts) // n)][:n]
    rows = [token_windows(tokenizer, [text], seq_len)[0] for text in picked]
    return torch.stack([row for row in rows if len(row) == seq_len][:n])


def steering_effects(
    scope: Engine, sae: SAE, token_ids: list[int], windows: torch.Tensor | None = None, joint: bool = False
) -> torch.Tensor:
    """`[d_sae, n]` float32 (CPU): for each feature and token, the derivative of the token's mean
    log-probability over `windows` (default `context_windows`) with respect to the strength `s` of adding
    `s * w_dec[f]` at every non-BOS position of the SAE's output site, at `s = 0` (see the module docstring).
    `joint=True` with several tokens adds a last column: the same for the log of their summed probability.

    The unembedding's share of the backward pass is done by hand: for the mean log-probability of token
    `t`, the gradient at the final hidden state is `(c_t W_U[t] - sum_v p_v c_v W_U[v]) / N` (`c`: the
    derivative of Gemma 2's logit soft-capping, 1 without it), and the sum over the 262k vocabulary is
    shared by every token asked for, so each extra token costs one backward pass through the layers only.

    Example:
        >>> from scopewidgets.testing import tiny_scope
        >>> scope = tiny_scope(d_sae=32)
        >>> steering_effects(scope, scope.sae(), [5, 7], joint=True).shape
        torch.Size([32, 3])
    """
    windows = context_windows(scope.tokenizer) if windows is None else windows
    with (
        torch.inference_mode(False),
        torch.enable_grad(),
    ):  # a caller's inference mode would block the backward
        hidden, delta = _steered_forward(scope, sae, windows)
        cotangents = _logprob_cotangents(scope.model, hidden.detach(), list(token_ids), joint)
        grads = [
            torch.autograd.grad(hidden, delta, cot.to(hidden.dtype), retain_graph=i + 1 < len(cotangents))[0]
            for i, cot in enumerate(cotangents)
        ]
    directions = sae.W_dec.detach().float()
    return (directions @ torch.stack(grads, dim=1).to(directions.device)).cpu()


def _steered_forward(scope: Engine, sae: SAE, windows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """In grad mode: a zero direction `delta` `[d]` (float32, requires grad) added at every non-BOS position
    of the SAE's output site (steering's `add`), and the final hidden states after BOS `[n, L - 1, d]` it
    flows into, so that their derivatives with respect to `delta` are steering's first-order effects."""
    windows = windows.clone().to(scope.device)
    delta = torch.zeros(sae.W_dec.shape[1], device=scope.device, dtype=torch.float32, requires_grad=True)
    keep = (windows != bos_id(scope.tokenizer))[..., None]

    def add(h: torch.Tensor) -> torch.Tensor:
        return h + (keep * delta).to(h.dtype)

    with patch(scope.model, sae.cfg.site_out or sae.cfg.site, sae.cfg.layer, add):
        hidden = sites.text_model(scope.model)(input_ids=windows, use_cache=False).last_hidden_state
    return hidden[:, 1:], delta


def steered_directions(sae: SAE, features: torch.Tensor, jacobian: torch.Tensor) -> torch.Tensor:
    """`[n, d]` float32: `jacobian @ w_dec[f]` for each of `features`, the first-order change of the final
    hidden state when steering with the feature (`steering_jacobian`); read by the unembedding, the change of
    every token's logit.

    Example:
        >>> from scopewidgets.testing import tiny_scope
        >>> scope = tiny_scope(d_sae=32)
        >>> steered_directions(scope.sae(), torch.tensor([1, 2]), torch.eye(64)).shape
        torch.Size([2, 64])
    """
    w_dec = sae.W_dec.detach()
    return w_dec[features.to(w_dec.device)].float() @ jacobian.to(w_dec.device, torch.float32).T


def steering_jacobian(
    scope: Engine, sae: SAE, windows: torch.Tensor | None = None, progress: bool = True, cache: bool = True
) -> torch.Tensor:
    """`[d, d]` float32 (CPU): `J[i, j]`, the derivative of component `i` of the final hidden state (after
    the final norm, what the unembedding reads), averaged over every prediction of `windows` (default
    `context_windows`), with respect to component `j` of a direction added at every non-BOS position of the
    SAE's output site (steering's `add`), at 0.

    `W_U @ (J @ w_dec[f])` is then, for every token at once, the first-order change of its mean logit when
    steering with feature `f` (for Gemma 2, the logit before its soft-capping). `steering_effects` gives
    the change of the log-probability instead; without soft-capping (Gemma 3) the two differ by a term
    shared by every token, so they rank a feature's promoted tokens alike. One forward pass and
    `d` (the residual width) backward passes through the layers after the site: ~4 minutes for the demo
    on 2 CPU cores. So with `cache` the result is kept on disk (`cache_dir()/jacobians`) under the model's
    fingerprint (every tensor, final norm and unembedding included), the site, layer and windows, and the
    demo ships its own (`JACOBIAN_FILE` beside the demo SAE): an edited model gets a fresh one.

    Example:
        >>> from scopewidgets.testing import tiny_scope
        >>> scope = tiny_scope(d_sae=32)
        >>> steering_jacobian(scope, scope.sae(), progress=False, cache=False).shape
        torch.Size([64, 64])
    """
    from tqdm.auto import tqdm

    site = sae.cfg.site_out or sae.cfg.site
    width = sae.W_dec.shape[1]
    windows = context_windows(scope.tokenizer) if windows is None else windows
    key = jacobian_key(scope.model, site, sae.cfg.layer, windows) if cache else None
    found = _stored_jacobian(key, width) if key else None
    if found is not None:
        return found
    with torch.inference_mode(False), torch.enable_grad():
        hidden, delta = _steered_forward(scope, sae, windows)
        mean = hidden.to(torch.promote_types(hidden.dtype, torch.float32)).mean(dim=(0, 1))  # [d]
        rows = [
            torch.autograd.grad(mean[i], delta, retain_graph=i + 1 < width)[0].cpu()
            for i in tqdm(range(width), desc="Steering Jacobian", unit="row", disable=not progress)
        ]
    jacobian = torch.stack(rows)
    if key:
        save_jacobian(cache_dir() / "jacobians" / f"{key}.safetensors", key, jacobian)
    return jacobian


JACOBIAN_FILE = "steering_jacobian.safetensors"  # the demo's, beside its SAE (scripts/build_demo_evidence.py)


def jacobian_key(model: torch.nn.Module, site: str, layer: int, windows: torch.Tensor) -> str:
    """What a steering Jacobian depends on, hashed: the whole model (`model_fingerprint(head=True)`), the
    site and layer where the direction is added, and the windows' token ids."""
    digest = hashlib.sha256(f"{model_fingerprint(model, head=True)}|{site}|{layer}|".encode())
    digest.update(windows.detach().long().cpu().numpy().tobytes())
    digest.update(str(tuple(windows.shape)).encode())
    return digest.hexdigest()


def _stored_jacobian(key: str, width: int) -> torch.Tensor | None:
    """The Jacobian stored under `key` in the cache or shipped with the demo, else None."""
    from safetensors import safe_open

    cached = cache_dir() / "jacobians" / f"{key}.safetensors"
    for path in (cached, DATA / "demo_sae" / JACOBIAN_FILE):
        try:
            with safe_open(str(path), framework="pt") as handle:
                if (handle.metadata() or {}).get("key") != key:
                    continue
                jacobian = handle.get_tensor("jacobian").float()
        except (OSError, SafetensorError):
            continue
        if tuple(jacobian.shape) == (width, width):
            if path == cached:
                with contextlib.suppress(OSError):  # most recently used: evicted last
                    os.utime(path)
            return jacobian
    return None


def stored_steering_jacobian(scope: Engine, sae: SAE) -> torch.Tensor | None:
    """The steering Jacobian at `sae`'s site over the default windows if it is already known (cached on
    disk or shipped with the demo), else None; never computes it.

    Example:
        >>> from scopewidgets.testing import tiny_scope
        >>> import torch
        >>> scope = tiny_scope(d_sae=32)
        >>> jacobian = steering_jacobian(scope, scope.sae(), progress=False)  # computed once, then on disk
        >>> torch.equal(stored_steering_jacobian(scope, scope.sae()), jacobian)
        True
    """
    width = sae.W_dec.shape[1]
    if not _any_stored(width):  # no file of this width: skip hashing the whole model (seconds for a 2B)
        return None
    site = sae.cfg.site_out or sae.cfg.site
    return _stored_jacobian(
        jacobian_key(scope.model, site, sae.cfg.layer, context_windows(scope.tokenizer)), width
    )


def _any_stored(width: int) -> bool:
    """Whether a `[width, width]` Jacobian is cached or shipped (file headers only)."""
    from safetensors import safe_open

    folder = cache_dir() / "jacobians"
    paths = [
        DATA / "demo_sae" / JACOBIAN_FILE,
        *(sorted(folder.glob("*.safetensors")) if folder.is_dir() else []),
    ]
    for path in paths:
        try:
            with safe_open(str(path), framework="pt") as handle:
                if list(handle.get_slice("jacobian").get_shape()) == [width, width]:
                    return True
        except (OSError, SafetensorError):
            continue
    return False


def steered_logits(
    scope: Engine, sae: SAE, feature: int, jacobian: torch.Tensor, k: int = 10
) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """The `k` tokens whose logits steering with `feature` raises most and lowers most, to first order
    (`W_U @ (jacobian @ w_dec[feature])`, per unit of strength; see `steering_jacobian`), as
    `(top, bottom)` lists of `(token text, value)`, strongest first.

    Example:
        >>> from scopewidgets.testing import tiny_scope
        >>> scope = tiny_scope(d_sae=32)
        >>> jacobian = steering_jacobian(scope, scope.sae(), progress=False, cache=False)
        >>> top, bottom = steered_logits(scope, scope.sae(), 3, jacobian, k=4)
        >>> len(top), top[0][1] >= top[-1][1]
        (4, True)
    """
    return steered_logits_many(scope, sae, [feature], jacobian, k)[0]


def steered_logits_many(
    scope: Engine, sae: SAE, features: list[int], jacobian: torch.Tensor, k: int = 10
) -> list[tuple[list[tuple[str, float]], list[tuple[str, float]]]]:
    """`steered_logits` for each of `features`, in one product with the unembedding (the feature atlas
    lists them for every feature: ~0.2 s per 64 features for the demo on 2 CPU cores).

    Example:
        >>> from scopewidgets.testing import tiny_scope
        >>> scope = tiny_scope(d_sae=32)
        >>> jacobian = steering_jacobian(scope, scope.sae(), progress=False, cache=False)
        >>> lists = steered_logits_many(scope, scope.sae(), [3, 5], jacobian, k=4)
        >>> alone = steered_logits(scope, scope.sae(), 3, jacobian, k=4)  # the same, to float rounding
        >>> [t for t, _ in lists[0][0]] == [t for t, _ in alone[0]]
        True
    """
    moved = steered_directions(sae, torch.tensor([int(f) for f in features], dtype=torch.long), jacobian)
    with torch.inference_mode():
        top, top_ids, bottom, bottom_ids = (t.cpu() for t in logit_effects(scope.model, moved, k))
    names = scope.token_strings
    return [
        (
            list(zip(names(top_ids[i].tolist()), top[i].tolist(), strict=True)),
            list(zip(names(bottom_ids[i].tolist()), bottom[i].tolist(), strict=True)),
        )
        for i in range(len(features))
    ]


def save_jacobian(path: Path, key: str, jacobian: torch.Tensor) -> None:
    """Write `jacobian` under `key` (a cache that cannot be written is skipped with a warning)."""
    from safetensors.torch import save_file

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        save_file({"jacobian": jacobian.contiguous()}, str(partial), metadata={"key": key})
        partial.replace(path)
        # the same size bound as the dashboard cache, least recently used first
        evict(keep=path, folder=path.parent)
    except OSError as err:
        warnings.warn(f"Could not cache the steering Jacobian in {path.parent}: {err}", stacklevel=3)


@torch.inference_mode()
def _logprob_cotangents(
    model: torch.nn.Module, hidden: torch.Tensor, token_ids: list[int], joint: bool
) -> list[torch.Tensor]:
    """The gradients at the final hidden states `[n, L, d]` of the mean (over all n * L positions)
    log-probability of each token, and with `joint` of the log of their summed probability; one window
    at a time, so that no more than one `[L, vocab]` block of logits exists at once."""
    unembed = sites.unembedding(model).detach()
    softcap = getattr(sites.text_config(model), "final_logit_softcapping", None)
    rows = unembed[token_ids].float()  # [k, d]
    count = hidden.shape[0] * hidden.shape[1]
    out = [
        torch.empty(hidden.shape, dtype=torch.float32, device=hidden.device) for _ in range(len(token_ids))
    ]
    if joint and len(token_ids) > 1:
        out.append(torch.empty_like(out[0]))
    for i, h in enumerate(hidden):
        logits = (h.to(unembed.dtype) @ unembed.T).float()  # [L, vocab]
        slope = None
        if softcap:
            squashed = torch.tanh(logits / softcap)
            logits, slope = squashed * softcap, 1 - squashed.square()
        probs = logits.softmax(dim=-1)
        weights = probs if slope is None else probs * slope
        shared = (weights.to(unembed.dtype) @ unembed).float()  # [L, d]
        own = torch.ones_like(probs[:, token_ids]) if slope is None else slope[:, token_ids]  # [L, k]
        for j in range(len(token_ids)):
            out[j][i] = (own[:, j, None] * rows[j] - shared) / count
        if len(out) > len(token_ids):
            share = logits[:, token_ids].softmax(dim=-1)  # each form's part of their summed probability
            out[-1][i] = ((share * own) @ rows - shared) / count
    return out


def logit_search(
    scope: Engine,
    sae: SAE,
    token: str | int,
    k: int,
    stats: FeatureStats,
    *,
    include_reserved: bool = False,
    effect: str = "steer",
) -> tuple[pd.DataFrame, str]:
    """The `k` live features (density > 0) that most promote the token(s) of `token`, by `effect` ("steer"
    or "direct", see the module docstring), and a caption saying which tokens were used. With two forms
    ("Paris" and " Paris"), "steer" ranks by the log of their summed probability (the word in either form)
    and "direct" by the larger of the two logit effects.

    Columns: `feature`, `score` (per unit of strength: the change of the mean log-probability for "steer",
    of the logit for "direct"), `token` (the form raised most), `density`, `label`.
    """
    check_effect(effect)
    ids, caption = token_forms(scope, token)
    if effect == "steer":  # ranked by the log of the forms' summed probability; form: the one raised most
        effects = steering_effects(scope, sae, ids, joint=True)  # [d_sae, n_forms (+ 1)]
        best, form = effects[:, -1], effects[:, : len(ids)].argmax(dim=1)
    else:
        with torch.inference_mode():
            effects = token_effects(scope.model, sae, ids)  # [d_sae, n_forms]
        best, form = effects.max(dim=1)
    allowed = stats.live & ~hidden_mask(sae.cfg.d_sae, sae.reserved_features, include_reserved)
    candidates = torch.nonzero(allowed).flatten()
    order = torch.sort(best[candidates], descending=True, stable=True).indices[:k]
    chosen = candidates[order]
    names = scope.token_strings(ids)
    table = pd.DataFrame(
        {
            "feature": chosen.tolist(),
            "score": best[chosen].tolist(),
            "token": [names[int(i)] for i in form[chosen]],
            "density": density_column(stats, chosen),
            "label": label_column(sae, chosen),
        }
    )
    measure = "steering effect" if effect == "steer" else "direct logit effect"
    return table, f"{measure} on {caption}, among {int(allowed.sum())} live features"
