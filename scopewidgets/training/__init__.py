"""Training SAEs on a model's activations (`train.train_sae`) and converting them to JumpReLU."""

from .train import train_sae

__all__ = ["train_sae"]
