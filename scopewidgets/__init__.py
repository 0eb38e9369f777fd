"""scopewidgets: look inside Gemma with sparse autoencoders, in the notebook, offline.

Example:
    >>> import scopewidgets as sw
    >>> scope = sw.demo()                                   # doctest: +SKIP
    >>> scope.activations("The Eiffel Tower is in Paris")   # doctest: +SKIP
"""

from ._sae_io import load_sae, save_sae
from .activations import Activations, ActivationsSet
from .sae import SAE, SAEConfig
from .scope import Scope

__all__ = ["SAE", "Activations", "ActivationsSet", "SAEConfig", "Scope", "load_sae", "save_sae"]
__version__ = "0.1.0"
