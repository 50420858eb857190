"""Data-quality asset checks (great-expectations suites from ``aob_pipeline.lib.quality``).

- ``telemetry``, ``work_orders`` and ``failure_modes`` carry blocking checks: bad data there poisons every
  model, scenario and score downstream, so a failure (severity ERROR) stops downstream assets in the run.
- Every mart in ``dbt_like_sql/marts`` gets a non-blocking check (severity WARN): a KPI out of its plausible
  range is worth a look but does not invalidate the world.

Each check's metadata holds the failed expectations as a markdown table (expectation, column, observed
value, parameters, a few unexpected rows), plus the suite's statistics.
"""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from aob_pipeline.defs.resources import WAREHOUSE_WRITE_POOL
from aob_pipeline.lib.quality import WORLD_SUITES, QualityResult, mart_checker
from aob_pipeline.lib.settings import SQL_MODELS_DIR
from aob_pipeline.lib.sql_models import discover_models

MART_LAYER = "marts"

WORLD_CHECK_DESCRIPTIONS = {
    "telemetry": (
        "great-expectations suite on telemetry: no null keys or values, every (asset, sensor) in the sensors "
        "catalog, every reading within its sensor's plausible range, unique (asset_id, sensor, ts), timestamps "
        "inside the world's telemetry window. Blocking."
    ),
    "work_orders": (
        "great-expectations suite on work orders: unique wo_id, known asset, finished_at set, priority 1-5, "
        "primary and secondary codes that exist in failure_codes, durations and labour hours >= 0. Blocking."
    ),
    "failure_modes": (
        "great-expectations suite on the failure-mode catalog: exactly 53 modes, unique ids, equipment class "
        "Chiller/AHU/HVAC, known failure codes, valid sensor links. Blocking."
    ),
}


def quality_metadata(result: QualityResult) -> dict[str, Any]:
    """Check metadata: the failures as a markdown table and the suite's statistics."""
    metadata: dict[str, object] = {
        "suite": result.suite,
        "failed_expectations": dg.MetadataValue.md(result.to_markdown()),
    }
    for key, value in result.statistics.items():
        if isinstance(value, (bool, int, float, str)):
            metadata[key] = value
    return metadata


def quality_asset_check(
    asset: str,
    suite: Callable[[duckdb.DuckDBPyConnection], QualityResult],
    *,
    name: str,
    description: str,
    blocking: bool,
    severity: dg.AssetCheckSeverity,
) -> dg.AssetChecksDefinition:
    """An asset check on ``asset`` that runs ``suite`` against the warehouse through the ``duckdb`` resource."""

    @dg.asset_check(
        asset=dg.AssetKey(asset),
        name=name,
        description=description,
        blocking=blocking,
        pool=WAREHOUSE_WRITE_POOL,
        compute_kind="great_expectations",
    )
    def _check(context: dg.AssetCheckExecutionContext, duckdb: DuckDBResource) -> dg.AssetCheckResult:
        with duckdb.get_connection() as con:
            result = suite(con)
        if not result.success:
            context.log.warning("%s: %s", name, "; ".join(f.describe() for f in result.failed))
        evaluated = result.statistics.get("evaluated_expectations", 0)
        return dg.AssetCheckResult(
            passed=result.success,
            severity=severity,
            description=(
                f"{evaluated - len(result.failed)} of {evaluated} expectations passed"
                + ("" if result.success else f"; failed: {', '.join(sorted(set(result.failed_types())))}")
            ),
            metadata=quality_metadata(result),
        )

    return _check


def world_quality_checks() -> list[dg.AssetChecksDefinition]:
    return [
        quality_asset_check(
            table,
            suite,
            name=f"{table}_quality",
            description=WORLD_CHECK_DESCRIPTIONS[table],
            blocking=True,
            severity=dg.AssetCheckSeverity.ERROR,
        )
        for table, suite in WORLD_SUITES.items()
    ]


def mart_quality_checks(root: Path = SQL_MODELS_DIR) -> list[dg.AssetChecksDefinition]:
    """One non-blocking check per model in the ``marts`` layer (its spec lives in ``lib.quality.MART_SPECS``)."""
    return [
        quality_asset_check(
            model.name,
            mart_checker(model.name),
            name=f"{model.name}_quality",
            description=(
                f"great-expectations suite on {model.name}: non-null unique key, KPIs within plausible ranges, "
                "not empty when its source has rows."
            ),
            blocking=False,
            severity=dg.AssetCheckSeverity.WARN,
        )
        for model in discover_models(root)
        if model.layer == MART_LAYER
    ]


# The checks of the code location (the loader of ``defs/`` finds this module-level list).
quality_checks = [*world_quality_checks(), *mart_quality_checks()]
