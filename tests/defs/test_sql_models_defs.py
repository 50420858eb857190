"""SQL models as Dagster assets: keys, groups, kinds, lineage from the SQL, code versions, and a real
materialisation of every model through the DuckDB resource on a small stored world."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from dagster_duckdb import DuckDBResource

from aob_pipeline.defs.resources import WAREHOUSE_WRITE_POOL
from aob_pipeline.defs.sql_models.assets import load_sql_model_assets, sql_model_assets
from aob_pipeline.lib.sql_models import SqlModelError, discover_models
from aob_pipeline.lib.warehouse import connect, replace_tables
from aob_pipeline.lib.world.schema import WORLD_TABLES

_spec = importlib.util.spec_from_file_location("sql_world", Path(__file__).resolve().parents[1] / "lib" / "sql_world.py")
sql_world = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sql_world)


def test_one_asset_per_model_with_lineage_group_kinds_and_code_version():
    models = {m.name: m for m in discover_models()}
    assert {a.key.to_user_string() for a in sql_model_assets} == set(models)
    for assets_def in sql_model_assets:
        key = assets_def.key
        model = models[key.to_user_string()]
        spec = next(iter(assets_def.specs))
        assert spec.group_name == model.layer
        assert spec.kinds == {"duckdb", "sql"}
        assert {d.asset_key for d in spec.deps} == {dg.AssetKey(d) for d in model.deps}
        assert spec.code_version == model.code_version
        assert spec.description == model.description
        assert assets_def.op.pool == WAREHOUSE_WRITE_POOL
        assert "duckdb" in assets_def.required_resource_keys
        assert spec.metadata["sql_file"] == model.display_path


def test_lineage_of_the_marts_reaches_the_world_tables():
    defs = dg.Definitions(assets=sql_model_assets, resources={"duckdb": DuckDBResource(database=":memory:")})
    graph = defs.resolve_asset_graph()
    upstream = graph.get(dg.AssetKey("mart_chiller_health_daily")).parent_keys
    assert upstream == {dg.AssetKey("stg_telemetry"), dg.AssetKey("stg_assets")}
    assert dg.AssetKey("telemetry") in graph.get(dg.AssetKey("stg_telemetry")).parent_keys


def test_loading_a_bad_model_folder_fails_naming_the_file(tmp_path):
    (tmp_path / "dbt_like_sql" / "marts").mkdir(parents=True)
    (tmp_path / "dbt_like_sql" / "marts" / "x.sql").write_text("SELECT * FROM telemetri")
    with pytest.raises(SqlModelError, match=r"dbt_like_sql/marts/x.sql:1: reads unknown table 'telemetri'"):
        load_sql_model_assets(tmp_path / "dbt_like_sql")


@pytest.fixture
def warehouse(tmp_path) -> Path:
    path = tmp_path / "warehouse" / "aob.duckdb"
    with connect(path) as con:
        replace_tables(con, sql_world.handbuilt_frames(), WORLD_TABLES)
    return path


def test_materialise_every_model(warehouse):
    result = dg.materialize(sql_model_assets, resources={"duckdb": DuckDBResource(database=str(warehouse))})
    assert result.success
    events = [e.event_specific_data.materialization for e in result.get_asset_materialization_events()]
    materialised = {m.asset_key.to_user_string(): m.metadata for m in events}
    assert set(materialised) == {m.name for m in discover_models()}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        for name, metadata in materialised.items():
            rows = con.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
            assert metadata["dagster/row_count"].value == rows
            columns = [c.name for c in metadata["dagster/column_schema"].schema.columns]
            assert columns == [r[0] for r in con.execute(f'DESCRIBE "{name}"').fetchall()]
            assert metadata["preview"].value.startswith("| " + columns[0])
    hourly = materialised["mart_telemetry_hourly"]["dagster/row_count"].value
    assert hourly == (2 * 13 + 9) * 48  # every series, every hour of two days


def test_materialise_fails_clearly_when_the_world_is_missing(tmp_path):
    result = dg.materialize(
        [a for a in sql_model_assets if a.key.to_user_string() == "stg_assets"],
        resources={"duckdb": DuckDBResource(database=str(tmp_path / "empty.duckdb"))},
        raise_on_error=False,
    )
    assert not result.success
    failure = result.get_step_failure_events()[0]
    assert "dbt_like_sql/staging/stg_assets.sql: failed to build model 'stg_assets'" in str(
        failure.event_specific_data.error
    )
