"""Per-feature statistics and the density-aware ranking of features (`rank="specific"`).

See `stats` (where statistics come from) and `ranking` (the score's definition).
"""

from .ranking import RANKS, specificity, top_features
from .stats import FeatureStats, feature_stats, forget_feature_stats, register_feature_stats

__all__ = [
    "RANKS",
    "FeatureStats",
    "feature_stats",
    "forget_feature_stats",
    "register_feature_stats",
    "specificity",
    "top_features",
]
