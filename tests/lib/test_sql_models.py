"""SQL models: dependency inference with DuckDB's parser, errors that name the file, build order, and every
model in dbt_like_sql/ built on a small hand-built world with numbers worked out by hand."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import duckdb
import pytest
import yaml

from aob_pipeline.lib.settings import ASSETS_DATA, SQL_MODELS_DIR
from aob_pipeline.lib.sql_models import (
    SqlModelError,
    build_model,
    build_models,
    discover_models,
    leading_comment,
    read_tables,
    table_references,
)
from aob_pipeline.lib.warehouse import replace_tables
from aob_pipeline.lib.world.schema import WORLD_TABLES

_spec = importlib.util.spec_from_file_location("sql_world", Path(__file__).resolve().parent / "sql_world.py")
sql_world = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sql_world)  # the hand-built world shared by the SQL-model and quality tests
AHU, CHILLERS, grid_points, handbuilt_frames = sql_world.AHU, sql_world.CHILLERS, sql_world.grid_points, sql_world.handbuilt_frames


def write_models(root: Path, files: dict[str, str]) -> Path:
    for rel, sql in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(sql)
    return root


# ------------------------------------------------------------------------------- dependency inference


def test_ctes_are_not_dependencies_but_the_tables_they_read_are():
    sql = """
        WITH recent AS (SELECT * FROM telemetry WHERE ts > now() - INTERVAL 1 DAY),
             named AS (SELECT r.*, a.name FROM recent r JOIN assets a ON a.asset_id = r.asset_id)
        SELECT * FROM named
    """
    assert read_tables(sql) == {"telemetry", "assets"}


def test_joins_subqueries_set_operations_and_qualified_names():
    sql = """
        SELECT w.wo_id, (SELECT max(ts) FROM telemetry t WHERE t.asset_id = w.asset_id) AS last_ts
        FROM work_orders w
        LEFT JOIN (SELECT primary_code, min(category) AS category FROM failure_codes GROUP BY 1) c USING (primary_code)
        WHERE w.asset_id IN (SELECT asset_id FROM main.assets WHERE site_id = 'MAIN')
          AND EXISTS (SELECT 1 FROM events e WHERE e.asset_id = w.asset_id)
        UNION ALL
        SELECT alert_id, start_time FROM alerts, range(3) AS r(i)
    """
    assert read_tables(sql) == {"telemetry", "work_orders", "failure_codes", "assets", "events", "alerts"}


def test_a_cte_shadowing_a_table_hides_it_only_in_its_own_scope():
    sql = """
        SELECT * FROM (WITH telemetry AS (SELECT 1 AS x) SELECT * FROM telemetry) AS inner_q
        CROSS JOIN (SELECT count(*) FROM telemetry) AS outer_q
    """
    refs = table_references(sql)
    assert [r.local_name for r in refs] == ["telemetry"]
    assert refs[0].line == 3


def test_recursive_cte_reads_nothing():
    sql = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5) SELECT * FROM n"
    assert read_tables(sql) == set()


def test_model_on_model_dependencies_and_build_order(tmp_path):
    root = write_models(tmp_path / "dbt_like_sql", {
        "marts/mart_b.sql": "-- Mart B.\nSELECT * FROM stg_a JOIN mart_a USING (asset_id)",
        "marts/mart_a.sql": "SELECT asset_id, count(*) AS n FROM stg_a GROUP BY 1",
        "staging/stg_a.sql": "SELECT asset_id FROM assets",
    })
    models = discover_models(root)
    assert [m.name for m in models] == ["stg_a", "mart_a", "mart_b"]
    by_name = {m.name: m for m in models}
    assert by_name["mart_b"].deps == ("mart_a", "stg_a")
    assert by_name["stg_a"].deps == ("assets",)
    assert by_name["mart_b"].layer == "marts" and by_name["stg_a"].layer == "staging"
    assert by_name["mart_b"].description == "Mart B."
    assert by_name["mart_b"].display_path == "dbt_like_sql/marts/mart_b.sql"


def test_real_models_are_ordered_after_everything_they_read():
    models = discover_models()
    position = {m.name: i for i, m in enumerate(models)}
    assert {"stg_telemetry", "stg_work_orders", "stg_events", "stg_assets", "mart_telemetry_hourly",
            "mart_chiller_health_daily", "mart_ahu_health_daily", "mart_work_orders_monthly", "mart_asset_mtbf",
            "mart_alert_counts"} <= set(position)
    for model in models:
        assert model.layer in {"staging", "marts"}
        assert model.description, f"{model.display_path} has no leading -- description"
        for dep in model.deps:
            assert dep in WORLD_TABLES or position[dep] < position[model.name], (model.name, dep)
        assert "injected_faults" not in model.deps, "models must not read ground truth"
    assert models[0].layer == "staging"
    assert {m.name: m.deps for m in models}["mart_telemetry_hourly"] == ("stg_telemetry",)


# ----------------------------------------------------------------------------------------- errors


def test_unknown_table_error_names_file_line_and_suggestion(tmp_path):
    root = write_models(tmp_path / "dbt_like_sql", {
        "staging/stg_ok.sql": "SELECT * FROM assets",
        "marts/x.sql": "-- typo below\nSELECT asset_id\nFROM telemetri",
    })
    with pytest.raises(SqlModelError) as err:
        discover_models(root)
    message = str(err.value)
    assert message.startswith("dbt_like_sql/marts/x.sql:3: reads unknown table 'telemetri'")
    assert "did you mean 'telemetry'" in message


def test_reading_a_foreign_schema_is_an_unknown_table(tmp_path):
    root = write_models(tmp_path / "m", {"marts/x.sql": "SELECT * FROM information_schema.tables"})
    with pytest.raises(SqlModelError, match=r"m/marts/x.sql:1: reads unknown table 'information_schema.tables'"):
        discover_models(root)


def test_cycle_error_names_the_files(tmp_path):
    root = write_models(tmp_path / "dbt_like_sql", {
        "marts/a.sql": "SELECT * FROM b",
        "marts/b.sql": "SELECT * FROM c",
        "marts/c.sql": "SELECT * FROM a",
        "staging/fine.sql": "SELECT * FROM sites",
    })
    with pytest.raises(SqlModelError) as err:
        discover_models(root)
    message = str(err.value)
    assert "dependency cycle a -> b -> c -> a" in message
    for name in ("a", "b", "c"):
        assert f"dbt_like_sql/marts/{name}.sql" in message


def test_self_reference_duplicate_and_world_name_collisions(tmp_path):
    root = write_models(tmp_path / "d1", {"marts/x.sql": "SELECT * FROM x"})
    with pytest.raises(SqlModelError, match=r"d1/marts/x.sql:1: model 'x' reads itself"):
        discover_models(root)
    root = write_models(tmp_path / "d2", {"staging/x.sql": "SELECT 1", "marts/x.sql": "SELECT 2"})
    with pytest.raises(SqlModelError, match=r"duplicate model name 'x' \(also defined in d2/marts/x.sql\)"):
        discover_models(root)
    root = write_models(tmp_path / "d3", {"staging/telemetry.sql": "SELECT 1"})
    with pytest.raises(SqlModelError, match=r"d3/staging/telemetry.sql: model name 'telemetry' collides"):
        discover_models(root)


def test_non_select_and_syntax_errors_name_the_file(tmp_path):
    root = write_models(tmp_path / "d1", {"marts/x.sql": "CREATE TABLE y AS SELECT 1"})
    with pytest.raises(SqlModelError, match=r"d1/marts/x.sql: cannot parse SQL: a model must be a single SELECT"):
        discover_models(root)
    root = write_models(tmp_path / "d2", {"marts/x.sql": "-- ok\nSELECT 1;\nSELECT 2"})
    with pytest.raises(SqlModelError, match=r"d2/marts/x.sql: a model must hold exactly one SELECT statement, found 2"):
        discover_models(root)
    root = write_models(tmp_path / "d3", {"marts/x.sql": "-- ok\nSELECT 1\nFROM FROM assets"})
    with pytest.raises(SqlModelError, match=r"d3/marts/x.sql:3: cannot parse SQL: syntax error"):
        discover_models(root)
    root = write_models(tmp_path / "d4", {"marts/x.sql": "   \n"})
    with pytest.raises(SqlModelError, match=r"d4/marts/x.sql: file is empty"):
        discover_models(root)


def test_build_error_names_the_file(tmp_path):
    root = write_models(tmp_path / "dbt_like_sql", {"staging/stg_bad.sql": "SELECT no_such_column FROM sites"})
    (model,) = discover_models(root)
    con = duckdb.connect()
    replace_tables(con, {"sites": handbuilt_frames()["sites"]}, WORLD_TABLES)
    with pytest.raises(SqlModelError, match=r"dbt_like_sql/staging/stg_bad.sql: failed to build model 'stg_bad'"):
        build_model(con, model)


def test_build_model_handles_trailing_semicolon_and_comments(tmp_path):
    root = write_models(tmp_path / "dbt_like_sql", {
        "staging/stg_sites.sql": "-- Sites.\nSELECT site_id, upper(name) AS name FROM sites; -- done\n-- end\n",
    })
    (model,) = discover_models(root)
    con = duckdb.connect()
    replace_tables(con, {"sites": handbuilt_frames()["sites"]}, WORLD_TABLES)
    built = build_model(con, model)
    assert built.row_count == 2
    assert built.columns == (("site_id", "VARCHAR"), ("name", "VARCHAR"))
    assert con.execute("SELECT name FROM stg_sites ORDER BY 1").fetchall() == [("EAST CAMPUS",), ("MAIN CAMPUS",)]


def test_description_and_code_version(tmp_path):
    assert leading_comment("-- First line.\n--   indented\n\n-- after blank\nSELECT 1 -- not this") == (
        "First line.\n  indented\n\nafter blank"
    )
    root = write_models(tmp_path / "d", {"marts/x.sql": "SELECT 1"})
    before = discover_models(root)[0].code_version
    (root / "marts/x.sql").write_text("SELECT 2")
    assert discover_models(root)[0].code_version != before


def test_health_marts_only_name_sensors_that_the_catalog_defines():
    catalog = yaml.safe_load((ASSETS_DATA / "sensors.yaml").read_text())["sensor_templates"]
    for mart, cls in (("mart_chiller_health_daily", "Chiller"), ("mart_ahu_health_daily", "AHU")):
        sql = (SQL_MODELS_DIR / "marts" / f"{mart}.sql").read_text()
        named = set(re.findall(r"sensor = '([^']+)'", sql))
        known = {s["sensor"] for s in catalog[cls]}
        assert named and named <= known, f"{mart} names sensors missing from sensors.yaml: {named - known}"


# -------------------------------------------------------------------------- models on a built world


@pytest.fixture(scope="module")
def built():
    con = duckdb.connect()
    replace_tables(con, handbuilt_frames(), WORLD_TABLES)
    builds = build_models(con)
    yield con, builds
    con.close()


def test_every_model_builds(built):
    con, builds = built
    assert set(builds) == {m.name for m in discover_models()}
    for name, result in builds.items():
        assert result.row_count == con.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
        assert result.columns, name


def test_stg_telemetry_snaps_jitter_and_drops_duplicates(built):
    con, _ = built
    rows = con.execute(
        "SELECT bucket_15min, reading_ts, value FROM stg_telemetry WHERE asset_id = 'CWC04001' "
        "AND sensor = 'Supply Temperature' AND bucket_15min IN ('2024-07-01 11:00', '2024-07-01 12:00') ORDER BY 1"
    ).fetchall()
    # 10:59:58 belongs to the 11:00 bucket; of 12:00:03 and 12:00:40 (value 47) the nearer reading is kept.
    assert [(str(b), str(r)[:19], v) for b, r, v in rows] == [
        ("2024-07-01 11:00:00", "2024-07-01 10:59:58", 44.0),
        ("2024-07-01 12:00:00", "2024-07-01 12:00:03", 44.0),
    ]
    counts = con.execute(
        "SELECT count(*), count(DISTINCT (asset_id, sensor, bucket_15min)), min(unit IS NOT NULL), "
        "min(equipment_class IS NOT NULL) FROM stg_telemetry"
    ).fetchone()
    assert counts[0] == counts[1] == (len(CHILLERS) * 13 + 9) * grid_points() - 2
    assert counts[2] and counts[3]


def test_hourly_mart(built):
    con, _ = built
    dist = dict(con.execute("SELECT reading_count, count(*) FROM mart_telemetry_hourly GROUP BY 1").fetchall())
    assert max(dist) <= 4 and dist[2] == 1  # two lost Power Input readings in one hour on CWC04002
    row = con.execute(
        "SELECT avg_value, min_value, max_value, reading_count FROM mart_telemetry_hourly "
        "WHERE asset_id = 'CWC04002' AND sensor = 'Power Input' AND hour = '2024-07-01 10:00'"
    ).fetchone()
    assert row == (300.0, 300.0, 300.0, 2)
    bad = con.execute(
        "SELECT count(*) FROM mart_telemetry_hourly WHERE NOT (min_value <= avg_value + 1e-9 AND avg_value <= max_value + 1e-9)"
    ).fetchone()[0]
    assert bad == 0


def test_chiller_health_kpis(built):
    con, _ = built
    rows = con.execute(
        "SELECT asset_id, run_hours, mean_efficiency_kw_per_ton, mean_evaporator_approach, mean_chilled_water_delta_t, "
        "mean_condenser_water_delta_t, mean_pct_loaded, ton_hours, load_weighted_kw_per_ton FROM mart_chiller_health_daily "
        "ORDER BY asset_id, day"
    ).fetchall()
    assert len(rows) == 4
    for asset, run_hours, eff, approach, dt, cond_dt, loaded, ton_hours, weighted in rows:
        assert run_hours == 16.0
        assert eff == pytest.approx(0.6) and approach == pytest.approx(3.0) and dt == pytest.approx(10.0)
        assert cond_dt == pytest.approx(10.0) and loaded == pytest.approx(100.0) and ton_hours == pytest.approx(8000.0)
        # CWC04002 lost two Power Input readings on day 1: load-weighted kW/ton is 300 * 62 / (500 * 64).
        assert weighted == pytest.approx(0.6 if asset == "CWC04001" else weighted)
    assert rows[2][8] == pytest.approx(300 * 62 / (500 * 64))


def test_ahu_health_kpis(built):
    con, _ = built
    rows = con.execute(
        "SELECT day, run_hours, mean_supply_air_temp_deviation, pct_time_off_setpoint, mean_fan_power_kw, "
        "specific_fan_power_w_per_cfm, mean_filter_dp, max_filter_dp FROM mart_ahu_health_daily "
        f"WHERE asset_id = '{AHU}' ORDER BY day"
    ).fetchall()
    assert [r[1:] for r in rows] == [
        (14.0, 0.0, 0.0, 10.0, 0.5, 0.5, 0.5),
        (14.0, 3.0, 100.0, 10.0, 0.5, pytest.approx(0.8), 0.8),
    ]


def test_work_order_monthly_and_mtbf(built):
    con, _ = built
    january = con.execute(
        "SELECT work_orders, preventive_count, corrective_count, urgent_count, labor_hours, corrective_labor_hours "
        "FROM mart_work_orders_monthly WHERE asset_id = 'CWC04001' AND month_start = '2024-01-01'"
    ).fetchone()
    assert january == (4, 1, 3, 2, 26.5, 24.5)
    mtbf = {r[0]: r[1:] for r in con.execute(
        "SELECT asset_id, failure_count, mtbf_days, history_mtbf_days FROM mart_asset_mtbf"
    ).fetchall()}
    assert mtbf["CWC04001"][:2] == (3, 15.0)
    assert mtbf["CWC04001"][2] > 0
    assert mtbf["CWC04002"][:2] == (1, None) and mtbf["CWC04002"][2] > 0
    assert mtbf[AHU] == (0, None, None)


def test_alert_counts_and_events(built):
    con, _ = built
    rows = con.execute(
        "SELECT rule_id, asset_id, alert_count, alert_days, total_alert_hours, mean_duration_minutes "
        "FROM mart_alert_counts ORDER BY 1, 2"
    ).fetchall()
    assert rows == [("RUL001", "CWC04001", 2, 2, 1.5, 45.0), ("RUL002", "CWC04002", 1, 1, 0.75, 45.0)]
    groups = dict(con.execute("SELECT event_group, count(*) FROM stg_events GROUP BY 1").fetchall())
    assert groups == {"WORK_ORDER": 7, "ALERT": 3, "ANOMALY": 1}  # 'alert ' normalised
    assets = con.execute("SELECT asset_id, site_name, sensor_count, age_years FROM stg_assets ORDER BY 1").fetchall()
    assert assets[1] == ("CWC04001", "Main Campus", 13, pytest.approx(10.0, abs=0.01))


def test_models_on_the_generated_tiny_world_give_sane_numbers():
    from aob_pipeline.lib.world.generate import generate_world

    con = duckdb.connect()
    replace_tables(con, generate_world("tiny", 7), WORLD_TABLES)
    builds = build_models(con)
    core = ["stg_assets", "stg_telemetry", "stg_work_orders", "stg_events", "mart_telemetry_hourly",
            "mart_chiller_health_daily", "mart_ahu_health_daily", "mart_work_orders_monthly", "mart_asset_mtbf"]
    assert all(builds[n].row_count > 0 for n in core), {n: b.row_count for n, b in builds.items()}
    alerts = con.execute("SELECT count(*) FROM alerts").fetchone()[0]
    assert con.execute("SELECT coalesce(sum(alert_count), 0) FROM mart_alert_counts").fetchone()[0] == alerts
    assert builds["stg_telemetry"].row_count <= con.execute("SELECT count(*) FROM telemetry").fetchone()[0]
    assert con.execute("SELECT min(reading_count), max(reading_count) FROM mart_telemetry_hourly").fetchone()[1] <= 4
    efficiency, approach, delta_t, run_hours = con.execute(
        "SELECT avg(mean_efficiency_kw_per_ton), avg(mean_evaporator_approach), avg(mean_chilled_water_delta_t), "
        "max(run_hours) FROM mart_chiller_health_daily"
    ).fetchone()
    assert 0.3 < efficiency < 1.2 and 0.5 < approach < 10 and 3 < delta_t < 16 and 0 < run_hours <= 24
    assert con.execute("SELECT min(mtbf_days) FROM mart_asset_mtbf WHERE failure_count >= 2").fetchone()[0] > 0
    corrective, preventive = con.execute(
        "SELECT sum(corrective_count), sum(preventive_count) FROM mart_work_orders_monthly"
    ).fetchone()
    assert (corrective, preventive) == con.execute(
        "SELECT count(*) FILTER (WHERE NOT preventive), count(*) FILTER (WHERE preventive) FROM work_orders"
    ).fetchone()
