"""Quality suites: each passes on good data and fails on planted bad data, with the failure (expectation,
column, observed value, offending rows) visible in the plain-data result."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path

import duckdb
import pytest

from aob_pipeline.lib.quality import (
    EXPECTED_FAILURE_MODES,
    MART_SPECS,
    MartSpec,
    QualityError,
    QualityResult,
    check_failure_modes,
    check_mart,
    check_telemetry,
    check_work_orders,
)
from aob_pipeline.lib.sql_models import build_models, discover_models
from aob_pipeline.lib.warehouse import replace_tables
from aob_pipeline.lib.world.schema import WORLD_TABLES

_spec = importlib.util.spec_from_file_location("sql_world", Path(__file__).resolve().parent / "sql_world.py")
sql_world = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sql_world)  # the hand-built world shared by the SQL-model and quality tests
handbuilt_frames = sql_world.handbuilt_frames

FRAMES = handbuilt_frames()


@pytest.fixture
def con():
    connection = duckdb.connect()
    replace_tables(connection, FRAMES, WORLD_TABLES)
    yield connection
    connection.close()


@pytest.fixture
def built(con):
    build_models(con)
    return con


def drop_constraints(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """Re-create ``table`` without NOT NULL constraints, as an import into a plain table would leave it."""
    con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM {table}")


def only_failure(result: QualityResult, expectation: str, column: str | None):
    assert not result.success
    matching = [f for f in result.failed if f.expectation == expectation and f.column == column]
    assert matching, f"expected {expectation}({column}) to fail; failed: {[f.describe() for f in result.failed]}"
    return matching[0]


def as_json(result: QualityResult) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(result)))


# ------------------------------------------------------------------------------------------ good data


def test_every_suite_passes_on_good_data(built):
    results = [check_telemetry(built), check_work_orders(built), check_failure_modes(built)]
    results += [check_mart(built, mart) for mart in MART_SPECS]
    for result in results:
        assert result.success, f"{result.suite}: {[f.describe() for f in result.failed]}"
        assert result.statistics["evaluated_expectations"] >= 5
        assert result.statistics["unsuccessful_expectations"] == 0
        assert "passed" in result.to_markdown()
    telemetry = results[0]
    assert telemetry.statistics["rows_checked"] == len(FRAMES["telemetry"])
    assert telemetry.statistics["series_checked"] == 2 * 13 + 9


def test_every_mart_has_a_quality_spec():
    marts = {m.name for m in discover_models() if m.layer == "marts"}
    assert marts == set(MART_SPECS)


def test_missing_table_is_a_clear_error():
    with pytest.raises(QualityError, match=r"table\(s\) 'telemetry', 'sensors' missing"):
        check_telemetry(duckdb.connect())
    with pytest.raises(QualityError, match="no quality spec for mart 'mart_nope'"):
        check_mart(duckdb.connect(), "mart_nope")


# -------------------------------------------------------------------------------------- telemetry


def test_telemetry_out_of_range_value_names_asset_and_sensor(con):
    con.execute(
        "UPDATE telemetry SET value = 250 WHERE asset_id = 'CWC04002' AND sensor = 'Supply Temperature' "
        "AND ts = '2024-07-01 09:00'"
    )
    result = check_telemetry(con)
    failure = only_failure(result, "expect_column_values_to_be_between", "out_of_range_values")
    assert failure.unexpected_count == 1
    (example,) = failure.unexpected_examples
    assert example["asset_id"] == "CWC04002" and example["sensor"] == "Supply Temperature"
    assert example["out_of_range_values"] == 1 and example["observed_max"] == 250.0 and example["max_value"] == 90.0
    assert "CWC04002" in result.to_markdown() and "out_of_range_values" in result.to_markdown()
    assert len(result.failed) == 1
    assert as_json(result)["failed"][0]["unexpected_examples"][0]["asset_id"] == "CWC04002"


def test_telemetry_null_value_and_null_key(con):
    drop_constraints(con, "telemetry")
    con.execute("INSERT INTO telemetry VALUES ('CWC04001', 'Tonnage', '2024-07-02 23:50', NULL)")
    con.execute("INSERT INTO telemetry VALUES (NULL, 'Tonnage', '2024-07-02 23:50', 1.0)")
    result = check_telemetry(con)
    nulls = only_failure(result, "expect_column_values_to_be_between", "null_values")
    assert nulls.unexpected_examples[0]["asset_id"] == "CWC04001"
    only_failure(result, "expect_column_values_to_not_be_null", "asset_id")


def test_telemetry_duplicate_key(con):
    con.execute(
        "INSERT INTO telemetry SELECT * FROM telemetry WHERE asset_id = 'AHU01001' AND sensor = 'Supply Fan Power' "
        "AND ts < '2024-07-01 01:00'"
    )
    failure = only_failure(check_telemetry(con), "expect_column_values_to_be_between", "duplicate_readings")
    assert failure.unexpected_examples[0]["duplicate_readings"] == 4
    assert failure.unexpected_examples[0]["sensor"] == "Supply Fan Power"


def test_telemetry_unknown_sensor_and_timestamp_outside_window(con):
    con.execute("INSERT INTO telemetry VALUES ('CWC04001', 'Bogus Sensor', '2024-07-01 00:00', 1.0)")
    con.execute("INSERT INTO telemetry VALUES ('CWC04001', 'Tonnage', '2024-08-01 00:00', 100.0)")
    result = check_telemetry(con)
    catalog = only_failure(result, "expect_column_values_to_be_between", "catalog_rows")
    assert catalog.unexpected_examples[0]["sensor"] == "Bogus Sensor"
    late = only_failure(result, "expect_column_values_to_be_between", "last_ts")
    assert late.unexpected_examples[0]["sensor"] == "Tonnage"
    assert late.unexpected_examples[0]["last_ts"].startswith("2024-08-01")


def test_telemetry_jitter_within_tolerance_passes_but_not_beyond(con):
    con.execute("INSERT INTO telemetry VALUES ('CWC04001', 'Tonnage', '2024-06-30 23:59:57', 0.0)")
    assert check_telemetry(con).success
    con.execute("INSERT INTO telemetry VALUES ('CWC04001', 'Power Input', '2024-06-30 23:40:00', 0.0)")
    only_failure(check_telemetry(con), "expect_column_values_to_be_between", "first_ts")


def test_telemetry_without_declared_window_fails(con):
    con.execute("DELETE FROM world_meta WHERE key = 'telemetry_end'")
    failure = only_failure(check_telemetry(con), "expect_column_distinct_values_to_contain_set", "key")
    assert failure.batch == "world_meta keys"


def test_telemetry_suite_is_exact_at_default_scale():
    """2.3 million readings, one planted out-of-range value: found, and named."""
    con = duckdb.connect()
    replace_tables(con, {k: v for k, v in FRAMES.items() if k != "telemetry"}, WORLD_TABLES)
    con.execute(WORLD_TABLES["telemetry"].ddl())
    con.execute(
        """
        INSERT INTO telemetry
        SELECT s.asset_id, s.sensor, TIMESTAMP '2024-07-01' + to_minutes(15 * (i % 192)) + to_seconds(i // 192),
               (s.min_value + s.max_value) / 2
        FROM sensors s, range(2300000 // 35) r(i)
        """
    )
    con.execute("UPDATE world_meta SET value = '2024-07-05T00:00:00' WHERE key = 'telemetry_end'")
    con.execute(
        "UPDATE telemetry SET value = -1 WHERE asset_id = 'AHU01001' AND sensor = 'Supply Airflow' "
        "AND ts = (SELECT max(ts) FROM telemetry WHERE asset_id = 'AHU01001' AND sensor = 'Supply Airflow')"
    )
    result = check_telemetry(con)
    assert result.statistics["rows_checked"] > 2_200_000
    assert [f.column for f in result.failed] == ["out_of_range_values"]
    assert result.failed[0].unexpected_examples[0]["sensor"] == "Supply Airflow"


# ------------------------------------------------------------------------------------ work orders


def test_work_orders_unknown_code_duplicate_id_bad_priority_negative_duration(con):
    con.execute("UPDATE work_orders SET primary_code = 'ZZ999' WHERE wo_id = 'WO-002'")
    con.execute("UPDATE work_orders SET priority = 7 WHERE wo_id = 'WO-003'")
    con.execute("UPDATE work_orders SET duration_hours = -1 WHERE wo_id = 'WO-004'")
    drop_constraints(con, "work_orders")
    con.execute("INSERT INTO work_orders SELECT * REPLACE (NULL AS finished_at) FROM work_orders WHERE wo_id = 'WO-005'")
    result = check_work_orders(con)
    code = only_failure(result, "expect_column_values_to_be_in_set", "primary_code")
    assert code.unexpected_examples == ({"primary_code": "ZZ999", "wo_id": "WO-002", "asset_id": "CWC04001"},)
    priority = only_failure(result, "expect_column_values_to_be_between", "priority")
    assert priority.unexpected_examples[0]["wo_id"] == "WO-003" and priority.parameters["max_value"] == 5
    only_failure(result, "expect_column_values_to_be_between", "duration_hours")
    unique = only_failure(result, "expect_column_values_to_be_unique", "wo_id")
    assert {e["wo_id"] for e in unique.unexpected_examples} == {"WO-005"}
    only_failure(result, "expect_column_values_to_not_be_null", "finished_at")
    assert len(result.failed) == 5
    assert "ZZ999" in result.to_markdown()


def test_work_orders_unknown_asset(con):
    con.execute("UPDATE work_orders SET asset_id = 'CWC09999' WHERE wo_id = 'WO-001'")
    failure = only_failure(check_work_orders(con), "expect_column_values_to_be_in_set", "asset_id")
    assert failure.unexpected_examples[0]["wo_id"] == "WO-001"


# ---------------------------------------------------------------------------------- failure modes


def test_failure_modes_52_rows(con):
    con.execute("DELETE FROM failure_modes WHERE failure_mode_id = 'FM-HV-13'")
    result = check_failure_modes(con)
    failure = only_failure(result, "expect_table_row_count_to_equal", None)
    assert failure.observed == EXPECTED_FAILURE_MODES - 1 and failure.parameters == {"value": 53}
    assert len(result.failed) == 1


def test_failure_modes_bad_class_duplicate_id_unknown_code_and_dangling_sensor_link(con):
    drop_constraints(con, "failure_modes")
    con.execute("UPDATE failure_modes SET equipment_class = 'Boiler' WHERE failure_mode_id = 'FM-CH-02'")
    con.execute("UPDATE failure_modes SET failure_mode_id = 'FM-CH-01' WHERE failure_mode_id = 'FM-CH-03'")
    con.execute("UPDATE failure_modes SET primary_code = 'XX000' WHERE failure_mode_id = 'FM-AHU-05'")
    con.execute("UPDATE failure_mode_sensors SET failure_mode_id = 'FM-XX-99' WHERE sensor = 'Power Input'")
    result = check_failure_modes(con)
    assert only_failure(result, "expect_column_values_to_be_in_set", "equipment_class").unexpected_examples[0] == {
        "equipment_class": "Boiler", "failure_mode_id": "FM-CH-02"}
    only_failure(result, "expect_column_values_to_be_unique", "failure_mode_id")
    only_failure(result, "expect_column_values_to_be_in_set", "primary_code")
    link = only_failure(result, "expect_column_values_to_be_in_set", "failure_mode_id")
    assert link.batch == "failure_mode_sensors"


# ------------------------------------------------------------------------------------------- marts


def test_chiller_mart_implausible_kpi_and_null_key(built):
    built.execute("UPDATE mart_chiller_health_daily SET mean_efficiency_kw_per_ton = 9 WHERE asset_id = 'CWC04002' AND day = '2024-07-02'")
    built.execute("UPDATE mart_chiller_health_daily SET day = NULL WHERE asset_id = 'CWC04001' AND day = '2024-07-01'")
    result = check_mart(built, "mart_chiller_health_daily")
    kpi = only_failure(result, "expect_column_values_to_be_between", "mean_efficiency_kw_per_ton")
    assert kpi.unexpected_examples[0]["asset_id"] == "CWC04002" and kpi.unexpected_examples[0]["day"].startswith("2024-07-02")
    only_failure(result, "expect_column_values_to_not_be_null", "day")


def test_hourly_mart_more_than_four_readings_and_duplicate_hour(built):
    built.execute("UPDATE mart_telemetry_hourly SET reading_count = 5 WHERE asset_id = 'AHU01001' AND sensor = 'Supply Airflow' AND hour = '2024-07-01 03:00'")
    built.execute("INSERT INTO mart_telemetry_hourly SELECT * FROM mart_telemetry_hourly WHERE asset_id = 'CWC04001' AND sensor = 'Tonnage' AND hour = '2024-07-01 05:00'")
    result = check_mart(built, "mart_telemetry_hourly")
    assert only_failure(result, "expect_column_values_to_be_between", "max_reading_count").unexpected_examples[0]["sensor"] == "Supply Airflow"
    assert only_failure(result, "expect_column_values_to_be_between", "duplicate_hours").unexpected_examples[0]["sensor"] == "Tonnage"


def test_empty_mart_fails_only_when_its_source_has_rows(built):
    built.execute("DELETE FROM mart_ahu_health_daily")
    only_failure(check_mart(built, "mart_ahu_health_daily"), "expect_table_row_count_to_be_between", None)
    built.execute("DELETE FROM stg_telemetry WHERE equipment_class = 'AHU'")
    assert check_mart(built, "mart_ahu_health_daily").success


def test_work_order_and_mtbf_marts_catch_inconsistent_rows(built):
    built.execute("UPDATE mart_work_orders_monthly SET corrective_count = 99 WHERE asset_id = 'CWC04001' AND month_start = '2024-01-01'")
    ordered = only_failure(check_mart(built, "mart_work_orders_monthly"), "expect_column_values_to_be_in_set", "work_orders >= corrective_count")
    assert ordered.unexpected_examples[0]["corrective_count"] == 99 and ordered.unexpected_examples[0]["work_orders"] == 4
    built.execute("UPDATE mart_asset_mtbf SET mtbf_days = -3 WHERE asset_id = 'CWC04001'")
    only_failure(check_mart(built, "mart_asset_mtbf"), "expect_column_values_to_be_between", "mtbf_days")
    built.execute("INSERT INTO mart_alert_counts SELECT * FROM mart_alert_counts WHERE rule_id = 'RUL001'")
    only_failure(check_mart(built, "mart_alert_counts"), "expect_compound_columns_to_be_unique", "rule_id, asset_id")


def test_a_spec_naming_a_missing_column_fails_with_the_error_instead_of_crashing(built):
    spec = MartSpec(key=("asset_id",), source_rows_sql="SELECT count(*) FROM stg_assets", ranges={"no_such_kpi": (0, 1)})
    result = check_mart(built, "mart_asset_mtbf", spec)
    failure = only_failure(result, "expect_column_values_to_be_between", "no_such_kpi")
    assert "no_such_kpi" in failure.error and "no_such_kpi" in result.to_markdown()


def test_every_suite_passes_on_the_generated_tiny_world():
    from aob_pipeline.lib.world.generate import generate_world

    con = duckdb.connect()
    replace_tables(con, generate_world("tiny", 7), WORLD_TABLES)
    build_models(con)
    for result in [check_telemetry(con), check_work_orders(con), check_failure_modes(con)] + [
        check_mart(con, mart) for mart in MART_SPECS
    ]:
        assert result.success, f"{result.suite}: {[f.describe() for f in result.failed]}"
