"""Feature dashboards: one corpus pass for many features (`api.build_dashboards`), its mergeable
state, the disk cache, saved files, Gemma Scope evidence and the results (`DashboardSet`, `FeatureDashboard`).
"""

from .examples import Example, Histogram, QuantileGroup
from .result import DashboardSet, FeatureDashboard

__all__ = ["DashboardSet", "Example", "FeatureDashboard", "Histogram", "QuantileGroup"]
