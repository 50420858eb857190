"""Great-expectations asset checks in Dagster: which are blocking, that they pass on a good world, that a
failure shows its expectations in the check's metadata, and that a failing blocking check stops the
models downstream of the bad table in the same run."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import dagster as dg
import pytest
from dagster_duckdb import DuckDBResource
from domain_defs import domain_assets

from aob_pipeline.defs.quality.checks import quality_checks
from aob_pipeline.defs.resources import AobSettingsResource
from aob_pipeline.defs.sql_models.assets import sql_model_assets
from aob_pipeline.lib.sql_models import build_models, discover_models
from aob_pipeline.lib.warehouse import replace_tables
from aob_pipeline.lib.world.schema import WORLD_TABLES

world_assets = domain_assets("world")

_spec = importlib.util.spec_from_file_location("sql_world", Path(__file__).resolve().parents[1] / "lib" / "sql_world.py")
sql_world = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sql_world)

BLOCKING = {"telemetry", "work_orders", "failure_modes"}


def check_specs():
    return {spec.key: spec for checks_def in quality_checks for spec in checks_def.check_specs}


def test_checks_cover_world_tables_and_every_mart():
    specs = check_specs()
    marts = {m.name for m in discover_models() if m.layer == "marts"}
    assert {k.asset_key.to_user_string() for k in specs} == BLOCKING | marts
    for key, spec in specs.items():
        assert spec.blocking == (key.asset_key.to_user_string() in BLOCKING), key
        assert spec.description
        assert key.name == f"{key.asset_key.to_user_string()}_quality"


def world_asset(mutate=None) -> dg.AssetsDefinition:
    """A stand-in for the world build: writes the hand-built world (optionally spoiled) in one transaction."""

    @dg.multi_asset(specs=[dg.AssetSpec(name, group_name="world") for name in WORLD_TABLES], name="test_world")
    def _world(duckdb: DuckDBResource):
        with duckdb.get_connection() as con:
            counts = replace_tables(con, sql_world.handbuilt_frames(), WORLD_TABLES)
            if mutate:
                mutate(con)
        for name in WORLD_TABLES:
            yield dg.MaterializeResult(asset_key=name, metadata={"dagster/row_count": counts[name]})

    return _world


def run(tmp_path: Path, mutate=None) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [world_asset(mutate), *sql_model_assets, *quality_checks],
        resources={"duckdb": DuckDBResource(database=str(tmp_path / "aob.duckdb"))},
        raise_on_error=False,
    )


def evaluations(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_every_check_passes_on_the_generated_world_built_by_the_world_asset(tmp_path):
    """The real chain: the world asset (tiny scale) under a temp AOB_HOME, every SQL model, every check."""
    home = tmp_path / "aob_home"
    result = dg.materialize(
        [*world_assets, *sql_model_assets, *quality_checks],
        resources={
            "duckdb": DuckDBResource(database=str(home / "warehouse" / "aob.duckdb")),
            "aob": AobSettingsResource(home=str(home)),
        },
        run_config={"ops": {"world_tables": {"config": {"source": "generate", "scale": "tiny", "seed": 7}}}},
        raise_on_error=False,
    )
    assert result.success
    checks = evaluations(result)
    assert set(checks) == {k.name for k in check_specs()}
    for name, evaluation in checks.items():
        assert evaluation.passed, (name, evaluation.metadata["failed_expectations"].value)
        assert evaluation.metadata["unsuccessful_expectations"].value == 0
        assert evaluation.metadata["evaluated_expectations"].value >= 5
        assert "passed" in evaluation.metadata["failed_expectations"].value
    materialised = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert {m.name for m in discover_models()} <= materialised


def test_failing_blocking_check_shows_expectations_and_stops_downstream(tmp_path):
    def plant_bad_codes(con):
        con.execute("UPDATE work_orders SET primary_code = 'ZZ999' WHERE wo_id = 'WO-002'")
        con.execute("DELETE FROM failure_modes WHERE failure_mode_id = 'FM-HV-13'")

    result = run(tmp_path, plant_bad_codes)
    assert not result.success
    checks = evaluations(result)

    work_orders = checks["work_orders_quality"]
    assert not work_orders.passed and work_orders.severity == dg.AssetCheckSeverity.ERROR
    table = work_orders.metadata["failed_expectations"].value
    assert "expect_column_values_to_be_in_set" in table and "primary_code" in table and "ZZ999" in table and "WO-002" in table
    assert "expect_column_values_to_be_in_set" in work_orders.description

    failure_modes = checks["failure_modes_quality"]
    assert not failure_modes.passed
    assert "expect_table_row_count_to_equal" in failure_modes.metadata["failed_expectations"].value
    assert failure_modes.metadata["unsuccessful_expectations"].value == 1

    assert checks["telemetry_quality"].passed
    materialised = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    # Blocked: everything downstream of work_orders; telemetry models run on.
    assert "stg_work_orders" not in materialised and "mart_asset_mtbf" not in materialised
    assert {"world_meta", "work_orders", "stg_telemetry", "mart_telemetry_hourly"} <= materialised


def test_mart_check_failure_is_a_warning_with_details(tmp_path):
    resource = DuckDBResource(database=str(tmp_path / "aob.duckdb"))
    with resource.get_connection() as con:
        replace_tables(con, sql_world.handbuilt_frames(), WORLD_TABLES)
        build_models(con)
    mart_check = next(c for c in quality_checks if dg.AssetKey("mart_chiller_health_daily") in {k.asset_key for k in c.check_keys})
    with resource.get_connection() as con:
        con.execute("UPDATE mart_chiller_health_daily SET run_hours = 30 WHERE asset_id = 'CWC04001'")
    evaluation = mart_check(context=dg.build_asset_check_context(resources={"duckdb": resource}))
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
    table = evaluation.metadata["failed_expectations"].value
    assert "run_hours" in table and "CWC04001" in table


@pytest.mark.parametrize("table", sorted(BLOCKING))
def test_blocking_check_on_missing_table_errors(tmp_path, table):
    check = next(c for c in quality_checks if dg.AssetKey(table) in {k.asset_key for k in c.check_keys})
    resource = DuckDBResource(database=str(tmp_path / "empty.duckdb"))
    with pytest.raises(Exception, match="missing from the warehouse"):
        check(context=dg.build_asset_check_context(resources={"duckdb": resource}))
