"""Feature dashboards: one corpus pass for many features (`api.build_dashboards`), its mergeable
state, the disk cache, saved files, Gemma Scope evidence and the results (`DashboardSet`, `FeatureDashboard`).
"""

from .result import DashboardSet, Example, FeatureDashboard, Histogram, QuantileGroup

__all__ = ["DashboardSet", "Example", "FeatureDashboard", "Histogram", "QuantileGroup"]
