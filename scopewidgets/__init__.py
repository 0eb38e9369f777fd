"""scopewidgets: look inside Gemma with sparse autoencoders, in the notebook, offline.

Example:
    >>> import scopewidgets as sw
    >>> scope = sw.demo()                                   # doctest: +SKIP
    >>> scope.activations("The Eiffel Tower is in Paris")   # doctest: +SKIP
"""

from . import features
from .activations import Activations, ActivationsSet
from .core import corpus
from .core.paths import VERSION
from .core.sae import SAE, SAEConfig
from .core.sae_io import load_sae, save_sae
from .demo import demo, demo_model, demo_sae
from .features.labels import label_features
from .scope import Scope
from .training.train import train_sae

__version__ = VERSION
__all__ = [
    "SAE",
    "Activations",
    "ActivationsSet",
    "SAEConfig",
    "Scope",
    "corpus",
    "demo",
    "demo_model",
    "demo_sae",
    "features",
    "label_features",
    "load_sae",
    "save_sae",
    "train_sae",
]
