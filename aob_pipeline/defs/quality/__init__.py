"""Data-quality asset checks (great-expectations): see ``checks.py``."""

from aob_pipeline.defs.quality.checks import mart_quality_checks, quality_asset_check, world_quality_checks

quality_checks = [*world_quality_checks(), *mart_quality_checks()]

__all__ = ["quality_checks", "quality_asset_check", "world_quality_checks", "mart_quality_checks"]
