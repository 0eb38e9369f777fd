"""Per-feature statistics and the density-aware ranking of features (`rank="specific"`).

See `lookup` (where statistics come from), `stats` (`FeatureStats`) and `ranking` (the score's definition).
"""

from .lookup import feature_stats, forget_feature_stats, register_feature_stats
from .ranking import RANKS, specificity, top_features
from .stats import FeatureStats

__all__ = [
    "RANKS",
    "FeatureStats",
    "feature_stats",
    "forget_feature_stats",
    "register_feature_stats",
    "specificity",
    "top_features",
]
