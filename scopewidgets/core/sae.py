"""Sparse autoencoders: a small frozen config and an `nn.Module` with `encode` / `decode`.

Architectures (REFERENCE.md, "SAE maths"):
- `jumprelu`: `pre = x @ W_enc + b_enc`; `f = pre * (pre > threshold)` (strict); Gemma Scope's choice.
- `standard` (ReLU): `f = relu((x - b_dec * apply_b_dec_to_input) @ W_enc + b_enc)`.
- `topk`: keep the k largest of `relu(pre)` per token, zero the rest.
Decoding is always `x_hat = f @ W_dec + b_dec`.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn

from .sites import SITES

ARCHITECTURES = ("jumprelu", "standard", "topk")


@dataclass(frozen=True)
class SAEConfig:
    """What an SAE is and where it reads.

    `site`/`layer` say where the input comes from; `site_out` is set for transcoders (they write elsewhere).
    `hook_point` is the hook string found in the file (Hugging Face or TransformerLens style).
    `source` says where the weights came from (repo/path). `k` is set for TopK SAEs.

    Example:
        >>> cfg = SAEConfig(d_in=640, d_sae=4096, site="resid_post", layer=6)
        >>> cfg.architecture, cfg.d_sae
        ('jumprelu', 4096)
    """

    d_in: int
    d_sae: int
    architecture: str = "jumprelu"
    site: str | None = None
    layer: int | None = None
    model_name: str | None = None
    hook_point: str | None = None
    source: str | None = None
    apply_b_dec_to_input: bool = False
    k: int | None = None
    site_out: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise ValueError(
                f"Unknown SAE architecture {self.architecture!r}; allowed: {', '.join(ARCHITECTURES)}"
            )
        for name in ("d_in", "d_sae"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"SAEConfig.{name} must be a positive int, got {value!r}")
        if self.site is not None and self.site not in SITES:
            raise ValueError(f"Unknown site {self.site!r}; allowed sites are {', '.join(SITES)}")
        if self.architecture == "topk" and not (isinstance(self.k, int) and 0 < self.k <= self.d_sae):
            raise ValueError(f"A topk SAE needs k in [1, {self.d_sae}], got {self.k!r}")


class SAE(nn.Module):
    """A sparse autoencoder over activations of width `d_in` with `d_sae` features.

    Parameters: `W_enc [d_in, d_sae]`, `W_dec [d_sae, d_in]`, `b_enc [d_sae]`, `b_dec [d_in]`,
    `threshold [d_sae]` (JumpReLU only; zeros otherwise).

    Example:
        >>> import torch
        >>> from scopewidgets import SAE, SAEConfig
        >>> sae = SAE(SAEConfig(d_in=8, d_sae=32, architecture="standard"))
        >>> sae.encode(torch.randn(3, 8)).shape, sae(torch.randn(3, 8)).shape
        (torch.Size([3, 32]), torch.Size([3, 8]))
    """

    def __init__(
        self,
        cfg: SAEConfig,
        labels: dict[int, str] | None = None,
        auto_labels: dict[int, str] | None = None,
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.labels: dict[int, str] = dict(labels or {})  # hand-written (labels.json): these win
        self.auto_labels: dict[int, str] = dict(auto_labels or {})  # sw.label_features (auto_labels.json)
        self.W_enc = nn.Parameter(torch.zeros(cfg.d_in, cfg.d_sae))
        self.W_dec = nn.Parameter(torch.zeros(cfg.d_sae, cfg.d_in))
        self.b_enc = nn.Parameter(torch.zeros(cfg.d_sae))
        self.b_dec = nn.Parameter(torch.zeros(cfg.d_in))
        self.threshold = nn.Parameter(torch.zeros(cfg.d_sae))
        self.register_buffer("W_skip", None)  # affine transcoders only: output += x @ W_skip
        self.requires_grad_(False)

    def __repr__(self) -> str:
        cfg = self.cfg
        where = f"{cfg.site}@{cfg.layer}" if cfg.site is not None else "unplaced"
        return f"SAE({cfg.architecture}, d_in={cfg.d_in}, d_sae={cfg.d_sae}, {where}, source={cfg.source!r})"

    @property
    def device(self) -> torch.device:
        return self.W_enc.device

    @property
    def dtype(self) -> torch.dtype:
        return self.W_enc.dtype

    def pre_activations(self, x: torch.Tensor) -> torch.Tensor:
        """`[..., d_in] -> [..., d_sae]`: the encoder's affine map, before the nonlinearity."""
        x = x.to(self.dtype)
        if self.cfg.apply_b_dec_to_input:
            x = x - self.b_dec
        return x @ self.W_enc + self.b_enc

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """`[..., d_in] -> [..., d_sae]` feature activations (in the SAE's dtype)."""
        self._check_width(x)
        pre = self.pre_activations(x)
        self.check_finite(pre, self.threshold)
        arch = self.cfg.architecture
        if arch == "jumprelu":
            return pre * (pre > self.threshold)
        acts = torch.relu(pre)
        if arch == "topk":
            values, indices = acts.topk(self.cfg.k, dim=-1)
            acts = torch.zeros_like(acts).scatter_(-1, indices, values)
        return acts

    def check_finite(self, *tensors: torch.Tensor) -> None:
        """Raise a `ValueError` when pre-activations (or the threshold, bias) hold NaN or inf: a NaN
        feature would otherwise read as "not firing" and drop silently out of every ranking and export."""
        if not all(bool(torch.isfinite(t).all()) for t in tensors):
            raise ValueError(
                f"The SAE ({self.cfg.source or 'in memory'}) gives NaN or inf activations: the model's "
                "activations at its site or the SAE's weights hold NaN/inf (check for in-place edits, or "
                "a dtype too narrow for this model, e.g. float16)"
            )

    def decode(self, f: torch.Tensor) -> torch.Tensor:
        """`[..., d_sae] -> [..., d_in]` reconstruction."""
        if f.shape[-1] != self.cfg.d_sae:
            raise ValueError(f"decode expects [..., {self.cfg.d_sae}] features, got shape {tuple(f.shape)}")
        return f.to(self.dtype) @ self.W_dec + self.b_dec

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`[..., d_in] -> [..., d_in]`: `decode(encode(x))` (+ the skip term of an affine transcoder)."""
        out = self.decode(self.encode(x))
        if self.W_skip is not None:
            out = out + x.to(self.dtype) @ self.W_skip
        return out

    def check_feature(self, feature: int) -> int:
        """Return `feature` as an int, or raise a `ValueError` naming `[0, d_sae)`."""
        try:
            index = operator.index(feature)
        except TypeError:
            index = None
        if index is None or isinstance(feature, bool):
            raise ValueError(f"Feature index must be an int in [0, {self.cfg.d_sae}), got {feature!r}")
        if not 0 <= index < self.cfg.d_sae:
            raise ValueError(f"Feature {index} is out of range: this SAE has features [0, {self.cfg.d_sae})")
        return index

    @property
    def reserved_features(self) -> tuple[int, ...]:
        """Features scopewidgets' trainer set aside for the residual stream's dominant direction (0 and 1,
        firing on nearly every token; `sw.demo_sae()` has them), or () for any other SAE.

        Example:
            >>> SAE(SAEConfig(d_in=8, d_sae=32)).reserved_features
            ()
        """
        training = self.cfg.extra.get("training")
        return (0, 1) if isinstance(training, dict) and training.get("reserved_direction") else ()

    def label(self, feature: int) -> str | None:
        """The feature's label: the hand-written one, else the automatic one, else None.

        Example:
            >>> sae = SAE(SAEConfig(d_in=8, d_sae=32), labels={3: "months"}, auto_labels={3: "May", 4: "June"})
            >>> sae.label(3), sae.label(4), sae.label(5)
            ('months', 'June', None)
        """
        feature = int(feature)
        return self.labels.get(feature, self.auto_labels.get(feature))

    def label_source(self, feature: int) -> str | None:
        """Where `label(feature)` comes from: "manual" (labels.json), "auto" (auto_labels.json) or None.

        Example:
            >>> sae = SAE(SAEConfig(d_in=8, d_sae=32), labels={3: "months"}, auto_labels={3: "May", 4: "June"})
            >>> sae.label_source(3), sae.label_source(4), sae.label_source(5)
            ('manual', 'auto', None)
        """
        feature = int(feature)
        return "manual" if feature in self.labels else "auto" if feature in self.auto_labels else None

    def placed(self, site: str, layer: int) -> SAE:
        """A copy of this SAE (sharing weights) whose config says it reads at (site, layer)."""
        clone = SAE(
            replace(self.cfg, site=site, layer=layer), labels=self.labels, auto_labels=self.auto_labels
        )
        clone.load_state_dict(self.state_dict())
        return clone.to(self.device)

    def _check_width(self, x: torch.Tensor) -> None:
        if x.shape[-1] != self.cfg.d_in:
            raise ValueError(
                f"This SAE expects inputs of width d_in={self.cfg.d_in}, got shape {tuple(x.shape)}"
            )

    @classmethod
    def from_tensors(cls, cfg: SAEConfig, tensors: dict[str, torch.Tensor]) -> SAE:
        """Build an SAE from `W_enc`, `W_dec`, `b_enc`, `b_dec` (+ `threshold`), checking every shape.

        Example:
            >>> import torch
            >>> cfg = SAEConfig(d_in=4, d_sae=6, architecture="standard")
            >>> t = {"W_enc": torch.ones(4, 6), "W_dec": torch.ones(6, 4), "b_enc": torch.zeros(6), "b_dec": torch.zeros(4)}
            >>> SAE.from_tensors(cfg, t).cfg.d_sae
            6
        """
        expected = {
            "W_enc": (cfg.d_in, cfg.d_sae),
            "W_dec": (cfg.d_sae, cfg.d_in),
            "b_enc": (cfg.d_sae,),
            "b_dec": (cfg.d_in,),
        }
        if cfg.architecture == "jumprelu":
            expected["threshold"] = (cfg.d_sae,)
        source = cfg.source or "the SAE file"
        for name, shape in expected.items():
            if name not in tensors:
                raise ValueError(f"{source}: missing key {name!r} (expected keys: {', '.join(expected)})")
            got = tuple(tensors[name].shape)
            if got != shape:
                raise ValueError(f"{source}: key {name!r} has shape {got}, expected {shape}")
        sae = cls(cfg)
        with torch.no_grad():
            for name in expected:
                getattr(sae, name).copy_(torch.as_tensor(tensors[name], dtype=torch.float32))
        if "W_skip" in tensors:
            skip = torch.as_tensor(tensors["W_skip"], dtype=torch.float32)
            if tuple(skip.shape) != (cfg.d_in, cfg.d_in):
                raise ValueError(
                    f"{source}: skip connection has shape {tuple(skip.shape)}, expected {(cfg.d_in, cfg.d_in)}"
                )
            sae.W_skip = skip
        return sae
