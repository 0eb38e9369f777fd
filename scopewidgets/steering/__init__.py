"""Steering: edit SAE features while Gemma generates (`result.steer` -> `Steering`), its argument
checks, the hook, paired generation, the panel's controls and worker thread."""

from .result import Steering, steer

__all__ = ["Steering", "steer"]
