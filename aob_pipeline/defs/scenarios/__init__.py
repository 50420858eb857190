"""Scenarios domain: the ``scenarios`` asset (expected answers computed for the current world) and its checks."""

from aob_pipeline.defs.scenarios.assets import (
    every_scenario_has_an_answer,
    gold_plan_dependencies_valid,
    gold_plan_tools_valid,
    scenario_ids_unique,
    scenarios,
    twins_point_at_public_scenarios,
)

scenario_assets = [scenarios]
scenario_checks = [
    scenario_ids_unique,
    every_scenario_has_an_answer,
    gold_plan_tools_valid,
    gold_plan_dependencies_valid,
    twins_point_at_public_scenarios,
]

__all__ = ["scenario_assets", "scenario_checks"]
