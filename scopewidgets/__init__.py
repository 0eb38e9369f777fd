"""scopewidgets: look inside Gemma with sparse autoencoders, in the notebook, offline.

Example:
    >>> import scopewidgets as sw
    >>> scope = sw.demo()                                   # doctest: +SKIP
    >>> scope.activations("The Eiffel Tower is in Paris")   # doctest: +SKIP
"""

from ._sae_io import load_sae, save_sae
from .sae import SAE, SAEConfig

__all__ = ["SAE", "SAEConfig", "load_sae", "save_sae"]
__version__ = "0.1.0"
