"""`FeatureStats`: density, maximum and mean activation of every feature of one SAE (where they come
from: `features.lookup`)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import torch

STATS_FILE = "feature_stats.safetensors"
_KEYS = ("density", "max", "mean")
_START_KEYS = ("start_density", "start_mean")


@dataclass(frozen=True, eq=False)
class FeatureStats:
    """Statistics of every feature of one SAE over a corpus (BOS tokens excluded).

    Fields: `density` `[d_sae]` (fraction of non-BOS tokens where the feature is > 0), `max` `[d_sae]` (its
    largest activation), `mean` `[d_sae]` (its mean activation over the tokens where it fires, i.e. its
    typical activation when active; 0 for a feature that never fired), all float32 on the CPU; `n_tokens`
    (tokens counted), `source` (where they came from), `corpus` (a description of the text).

    Optionally the same at a text's first token (right after BOS), where a user's text starts but a corpus
    window seldom does: `start_density` and `start_mean` `[d_sae]` over `n_starts` sentence and line starts
    (`features.starts`). Some features fire only there ("The" or "It" opening a text); without these they
    look rare. None when unknown (`has_starts` is then False).

    Example:
        >>> import torch
        >>> stats = FeatureStats(torch.tensor([0.5, 0.0]), torch.tensor([3.0, 0.0]), torch.tensor([1.0, 0.0]),
        ...                      n_tokens=100, source="example")
        >>> stats.d_sae, stats.live.tolist()
        (2, [True, False])
    """

    density: torch.Tensor
    max: torch.Tensor
    mean: torch.Tensor
    n_tokens: int
    source: str
    corpus: str = ""
    start_density: torch.Tensor | None = None
    start_mean: torch.Tensor | None = None
    n_starts: int = 0

    def __post_init__(self) -> None:
        shapes = {name: tuple(getattr(self, name).shape) for name in _KEYS}
        if len(set(shapes.values())) != 1 or len(shapes["density"]) != 1:
            raise ValueError(f"FeatureStats needs three [d_sae] tensors of one shape, got {shapes}")
        for name in _KEYS:
            value = torch.as_tensor(getattr(self, name)).detach().float().cpu()
            object.__setattr__(self, name, value)
        if bool(((self.density < 0) | (self.density > 1)).any()):
            raise ValueError("FeatureStats.density must hold fractions in [0, 1]")
        if not isinstance(self.n_tokens, int) or self.n_tokens < 0:
            raise ValueError(f"FeatureStats.n_tokens must be an int >= 0, got {self.n_tokens!r}")
        starts = [getattr(self, name) is not None for name in _START_KEYS]
        if any(starts):
            if not all(starts):
                raise ValueError("FeatureStats needs start_density and start_mean together, or neither")
            for name in _START_KEYS:
                value = torch.as_tensor(getattr(self, name)).detach().float().cpu()
                if tuple(value.shape) != (self.d_sae,):
                    raise ValueError(f"FeatureStats.{name} must be [{self.d_sae}], got {tuple(value.shape)}")
                object.__setattr__(self, name, value)
            if bool(((self.start_density < 0) | (self.start_density > 1)).any()):
                raise ValueError("FeatureStats.start_density must hold fractions in [0, 1]")
            if not isinstance(self.n_starts, int) or self.n_starts < 1:
                raise ValueError(
                    f"FeatureStats.n_starts must be an int >= 1 with start statistics, got {self.n_starts!r}"
                )

    @property
    def d_sae(self) -> int:
        return int(self.density.numel())

    @property
    def has_starts(self) -> bool:
        """Whether the statistics at a text's first token (`start_density`, `start_mean`) are known."""
        return self.start_density is not None

    def with_starts(self, density: torch.Tensor, mean: torch.Tensor, n_starts: int) -> FeatureStats:
        """A copy holding these statistics at a text's first token (`features.starts.start_stats`)."""
        return replace(self, start_density=density, start_mean=mean, n_starts=n_starts)

    @property
    def live(self) -> torch.Tensor:
        """`[d_sae]` bool: features that fired at least once (density > 0)."""
        return self.density > 0

    def save(self, path: str | Path) -> Path:
        """Write the shipped-statistics format (`feature_stats.safetensors`) to `path`.

        Example:
            >>> stats.save(sae_folder / "feature_stats.safetensors")        # doctest: +SKIP
        """
        from safetensors.torch import save_file

        tensors = {name: getattr(self, name).contiguous() for name in _KEYS}
        metadata = {"n_tokens": str(self.n_tokens), "corpus": self.corpus, "mean": "over active tokens"}
        if self.has_starts:
            tensors.update({name: getattr(self, name).contiguous() for name in _START_KEYS})
            metadata["n_starts"] = str(self.n_starts)
        save_file(tensors, str(path), metadata=metadata)
        return Path(path)

    @classmethod
    def load(cls, path: str | Path, d_sae: int | None = None) -> FeatureStats:
        """Read a `feature_stats.safetensors` file; a `ValueError` names what is missing or misshapen."""
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            keys, metadata = set(handle.keys()), handle.metadata() or {}
            missing = [k for k in _KEYS if k not in keys]
            if missing:
                raise ValueError(
                    f"{path}: missing {missing}; a statistics file holds float32 density, max, mean [d_sae]"
                )
            tensors = {k: handle.get_tensor(k) for k in (*_KEYS, *_START_KEYS) if k in keys}
        if len(tensors) == len(_KEYS) + 1:
            raise ValueError(f"{path}: holds one of {_START_KEYS} without the other")
        if d_sae is not None and any(t.shape != (d_sae,) for t in tensors.values()):
            shapes = {k: tuple(t.shape) for k, t in tensors.items()}
            raise ValueError(f"{path}: statistics have shapes {shapes}; this SAE needs [{d_sae}]")
        try:
            n_tokens = int(metadata.get("n_tokens", "0"))
        except ValueError:
            raise ValueError(f"{path}: metadata n_tokens={metadata['n_tokens']!r} is not an int") from None
        n_starts = metadata.get("n_starts", "0")
        if not n_starts.isdigit():
            raise ValueError(f"{path}: metadata n_starts={n_starts!r} is not an int")
        return cls(
            **tensors,
            n_tokens=n_tokens,
            source=str(path),
            corpus=metadata.get("corpus", ""),
            n_starts=int(n_starts),
        )
