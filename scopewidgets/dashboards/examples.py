"""The parts of a feature's dashboard: `Example` windows of tokens, `QuantileGroup`s of them, the `Histogram`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch


@dataclass(frozen=True)
class Example:
    """A window of corpus tokens around one token where the feature fires.

    `tokens` display strings; `token_ids [n]`; `values [n]` float32 activation of the feature on each
    token (NaN where unknown: evidence files only list the strongest tokens); `max_value` the activation at
    the focus token; `seq_index` and `position` locate the focus token in the corpus (for a token tensor
    corpus: its row and column); `focus` is the focus token's index in `tokens`.
    """

    tokens: list[str]
    token_ids: torch.Tensor
    values: torch.Tensor
    max_value: float
    seq_index: int
    position: int
    focus: int


class Histogram(NamedTuple):
    """`counts [n_bins]` of positive activations v with `edges[i] <= v < edges[i + 1]`; `edges [n_bins+1]`."""

    counts: np.ndarray
    edges: np.ndarray


@dataclass(frozen=True)
class QuantileGroup:
    """Tokens whose activation is in `[lower, upper)`: `count` of them (`fraction` of the firing tokens),
    and a uniform random sample of them as `examples` (strongest first)."""

    lower: float
    upper: float
    count: int
    fraction: float
    examples: list[Example]
