"""Data-quality suites (great-expectations 1.x) over the warehouse: world tables and SQL marts.

Each ``check_*`` function takes an open DuckDB connection and returns a ``QualityResult``: plain data
(success, the failed expectations with their column, observed value and a few unexpected examples, and
statistics) that needs neither Dagster nor great-expectations to read. Dagster's asset checks in
``aob_pipeline.defs.quality`` call these functions and render the failures as markdown.

Large tables are never pulled whole into pandas. DuckDB first reduces them to a small frame that is still
exact about every rule, and great-expectations validates that frame. For telemetry (about 2.3 million rows
at default scale) the frame has one row per (asset, sensor) with the reading count, null and non-finite
counts, duplicate (asset_id, sensor, ts) count, first/last timestamp, observed min/max, the plausible range
from ``sensors`` and the exact number of readings outside it. A suite therefore still names every
(asset, sensor) with a bad reading, and the whole telemetry suite runs in well under a few seconds.

great-expectations is imported inside the functions (it takes seconds to import); an ephemeral context
with analytics and progress bars off is created per suite run, so nothing is written to disk.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import duckdb

from aob_pipeline.lib.sql_models import markdown_table
from aob_pipeline.lib.warehouse import table_exists

EXPECTED_FAILURE_MODES = 53
FAILURE_MODE_CLASSES = ("Chiller", "AHU", "HVAC")
FAILURE_MODE_DIRECTIONS = ("increase", "decrease", "erratic")
# Readings carry a few seconds of jitter around the 15-minute grid, so a reading may sit just outside the
# [telemetry_start, telemetry_end) window declared in world_meta; anything further out is an error.
TIMESTAMP_TOLERANCE = timedelta(minutes=5)
MAX_EXAMPLES = 5


class QualityError(RuntimeError):
    """A suite cannot run at all (e.g. the table it checks does not exist)."""


@dataclass(frozen=True)
class FailedExpectation:
    """One expectation that did not hold."""

    expectation: str
    """great-expectations type, e.g. ``expect_column_values_to_not_be_null``."""
    column: str | None
    """Column (or ``a, b`` for pair/compound expectations) it was about; None for table-level ones."""
    batch: str
    """Which validated frame it ran on (e.g. ``telemetry per (asset, sensor)``)."""
    observed: Any
    """Observed value for aggregate expectations, or the number of unexpected rows."""
    unexpected_count: int | None
    unexpected_examples: tuple[Any, ...]
    """A few offending values; with identifying columns (e.g. asset_id, sensor) where the frame has them."""
    parameters: Mapping[str, Any] = field(default_factory=dict)
    """The expectation's arguments (bounds, value sets ...), without the column names."""
    error: str | None = None
    """Set when the expectation raised instead of evaluating (e.g. a missing column)."""

    def describe(self) -> str:
        what = f"{self.expectation}({self.column})" if self.column else self.expectation
        if self.error:
            return f"{what} on {self.batch}: raised {self.error}"
        return f"{what} on {self.batch}: observed {self.observed!r}; e.g. {list(self.unexpected_examples)!r}"


@dataclass(frozen=True)
class QualityResult:
    """Outcome of one suite, usable without Dagster."""

    suite: str
    table: str
    success: bool
    failed: tuple[FailedExpectation, ...]
    statistics: Mapping[str, Any]
    """evaluated_expectations, successful_expectations, unsuccessful_expectations, success_percent,
    plus suite-specific counts (rows checked ...)."""

    def failed_types(self) -> list[str]:
        return [f.expectation for f in self.failed]

    def to_markdown(self) -> str:
        """The failed expectations as a markdown table (or a one-line all-clear)."""
        if not self.failed:
            return f"All {self.statistics.get('evaluated_expectations', 0)} expectations of suite `{self.suite}` passed."
        rows = [
            (
                f.expectation,
                f.column or "",
                f.batch,
                _short(f.observed),
                _short(_param_text(f.parameters)),
                _short(f.error or "; ".join(_example_text(e) for e in f.unexpected_examples), 200),
            )
            for f in self.failed
        ]
        return markdown_table(
            ["expectation", "column", "batch", "observed", "parameters", "unexpected examples"], rows, max_cell=200
        )


# ----------------------------------------------------------------------------------------- plumbing


@dataclass
class ValidationBatch:
    """One frame to validate, the expectations to run on it, and the columns that identify a row."""

    label: str
    frame: Any  # pandas.DataFrame
    expectations: list[Any]
    index_columns: Sequence[str] = ()


def _plain(value: Any) -> Any:
    """numpy/pandas scalars and containers to plain Python (JSON-friendly) values."""
    if value is None:
        return None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (ValueError, AttributeError):
            pass
    if hasattr(value, "to_pydatetime"):
        value = value.to_pydatetime()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _short(value: Any, limit: int = 80) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _param_text(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items())


def _example_text(example: Any) -> str:
    if isinstance(example, dict):
        return ", ".join(f"{k}={v}" for k, v in example.items())
    return str(example)


_NON_PARAMETER_KWARGS = {"batch_id", "column", "column_A", "column_B", "column_list", "result_format"}


def _column_of(kwargs: Mapping[str, Any]) -> str | None:
    if kwargs.get("column"):
        return str(kwargs["column"])
    if kwargs.get("column_A"):
        return f"{kwargs['column_A']}, {kwargs['column_B']}"
    if kwargs.get("column_list"):
        return ", ".join(kwargs["column_list"])
    return None


def _gx_context():
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
    )
    return gx.get_context(project_config=config, mode="ephemeral")


def run_suite(suite: str, table: str, batches: Sequence[ValidationBatch], extra_statistics: Mapping[str, Any] | None = None) -> QualityResult:
    """Validate each batch with its expectations in one ephemeral great-expectations context."""
    import great_expectations as gx

    context = _gx_context()
    source = context.data_sources.add_pandas(f"{suite}_frames")
    failed: list[FailedExpectation] = []
    evaluated = successful = 0
    for number, batch in enumerate(batches):
        asset = source.add_dataframe_asset(f"batch_{number}")
        definition = asset.add_batch_definition_whole_dataframe(f"batch_{number}_whole")
        gx_batch = definition.get_batch(batch_parameters={"dataframe": batch.frame})
        expectation_suite = gx.ExpectationSuite(name=f"{suite}__{number}", expectations=list(batch.expectations))
        result_format: dict[str, Any] = {"result_format": "COMPLETE", "partial_unexpected_count": MAX_EXAMPLES}
        index_columns = [c for c in batch.index_columns if c in batch.frame.columns]
        if index_columns:
            result_format["unexpected_index_column_names"] = index_columns
            result_format["return_unexpected_index_query"] = False
        validation = gx_batch.validate(expectation_suite, result_format=result_format)
        for outcome in validation.results:
            evaluated += 1
            if outcome.success:
                successful += 1
                continue
            failed.append(_failure(outcome, batch.label))
    statistics = {
        "evaluated_expectations": evaluated,
        "successful_expectations": successful,
        "unsuccessful_expectations": evaluated - successful,
        "success_percent": round(100.0 * successful / evaluated, 2) if evaluated else 100.0,
        **(extra_statistics or {}),
    }
    return QualityResult(suite, table, not failed, tuple(failed), statistics)


def _failure(outcome: Any, label: str) -> FailedExpectation:
    config = outcome.expectation_config
    kwargs = dict(config.kwargs)
    result = dict(outcome.result or {})
    info = outcome.exception_info or {}
    error = None
    if info.get("raised_exception"):
        error = str(info.get("exception_message") or "exception")
    else:  # several expectations may report their exceptions keyed by metric id
        for value in info.values() if isinstance(info, dict) else ():
            if isinstance(value, dict) and value.get("raised_exception"):
                error = str(value.get("exception_message") or "exception")
                break
    examples = result.get("partial_unexpected_index_list") or result.get("partial_unexpected_list") or []
    unexpected = result.get("unexpected_count")
    observed = result.get("observed_value", unexpected)
    return FailedExpectation(
        expectation=str(config.type),
        column=_column_of(kwargs),
        batch=label,
        observed=_plain(observed),
        unexpected_count=None if unexpected is None else int(unexpected),
        unexpected_examples=tuple(_plain(e) for e in list(examples)[:MAX_EXAMPLES]),
        parameters={k: _plain(v) for k, v in kwargs.items() if k not in _NON_PARAMETER_KWARGS and v is not None},
        error=error,
    )


def _require(con: duckdb.DuckDBPyConnection, *tables: str) -> None:
    missing = [t for t in tables if not table_exists(con, t)]
    if missing:
        raise QualityError(
            f"cannot run the quality suite: table(s) {', '.join(repr(t) for t in missing)} missing from the warehouse "
            "(materialise the world and SQL models first)"
        )


def _frame(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] | None = None):
    return con.execute(sql, list(params or [])).df()


def _world_meta(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    if not table_exists(con, "world_meta"):
        return {}
    return {str(k): str(v) for k, v in con.execute("SELECT key, value FROM world_meta").fetchall()}


def _parse_ts(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.strip().replace("Z", ""))
    except ValueError:
        return None


# ------------------------------------------------------------------------------------------- suites


TELEMETRY_PROFILE_SQL = """
WITH ranges AS (
    SELECT asset_id, sensor, count(*) AS catalog_rows,
           any_value(unit) AS unit, min(min_value) AS min_value, max(max_value) AS max_value
    FROM sensors
    GROUP BY asset_id, sensor
)
SELECT
    t.asset_id,
    t.sensor,
    any_value(r.unit) AS unit,
    any_value(r.min_value) AS min_value,
    any_value(r.max_value) AS max_value,
    coalesce(any_value(r.catalog_rows), 0) AS catalog_rows,
    count(*) AS readings,
    count(*) FILTER (WHERE t.ts IS NULL) AS null_ts,
    count(*) FILTER (WHERE t.value IS NULL) AS null_values,
    count(*) FILTER (WHERE NOT isfinite(t.value)) AS non_finite_values,
    count(t.ts) - count(DISTINCT t.ts) AS duplicate_readings,
    min(t.ts) AS first_ts,
    max(t.ts) AS last_ts,
    min(t.value) FILTER (WHERE isfinite(t.value)) AS observed_min,
    max(t.value) FILTER (WHERE isfinite(t.value)) AS observed_max,
    count(*) FILTER (WHERE t.value < r.min_value OR t.value > r.max_value) AS out_of_range_values
FROM telemetry AS t
LEFT JOIN ranges AS r ON r.asset_id = t.asset_id AND r.sensor = t.sensor
GROUP BY t.asset_id, t.sensor
ORDER BY t.asset_id NULLS FIRST, t.sensor NULLS FIRST
"""


def check_telemetry(con: duckdb.DuckDBPyConnection, tolerance: timedelta = TIMESTAMP_TOLERANCE) -> QualityResult:
    """Telemetry: no null keys or values, every (asset, sensor) in the sensors catalog exactly once,
    every reading inside its sensor's plausible [min_value, max_value], unique (asset_id, sensor, ts),
    and timestamps inside world_meta's [telemetry_start, telemetry_end) give or take ``tolerance``.

    Validated on the exact per-(asset, sensor) profile ``TELEMETRY_PROFILE_SQL``.
    """
    import great_expectations as gx

    _require(con, "telemetry", "sensors")
    profile = _frame(con, TELEMETRY_PROFILE_SQL)
    E = gx.expectations
    zero: dict[str, Any] = {"min_value": 0, "max_value": 0}
    expectations = [
        E.ExpectTableRowCountToBeBetween(min_value=1),
        E.ExpectColumnValuesToNotBeNull(column="asset_id"),
        E.ExpectColumnValuesToNotBeNull(column="sensor"),
        E.ExpectColumnValuesToBeBetween(column="null_ts", **zero),
        E.ExpectColumnValuesToBeBetween(column="null_values", **zero),
        E.ExpectColumnValuesToBeBetween(column="non_finite_values", **zero),
        E.ExpectColumnValuesToBeBetween(column="catalog_rows", min_value=1, max_value=1),
        E.ExpectColumnValuesToBeBetween(column="out_of_range_values", **zero),
        E.ExpectColumnValuesToBeBetween(column="duplicate_readings", **zero),
    ]
    meta = _world_meta(con)
    start, end = _parse_ts(meta.get("telemetry_start")), _parse_ts(meta.get("telemetry_end"))
    if start is not None and end is not None:
        expectations += [
            E.ExpectColumnValuesToBeBetween(column="first_ts", min_value=start - tolerance, max_value=end + tolerance),
            E.ExpectColumnValuesToBeBetween(column="last_ts", min_value=start - tolerance, max_value=end + tolerance),
        ]
    batches = [
        ValidationBatch(
            "telemetry per (asset, sensor)",
            profile,
            expectations,
            index_columns=("asset_id", "sensor", "unit", "min_value", "max_value", "observed_min", "observed_max"),
        )
    ]
    # Without a declared window the timestamp rule cannot run: that is itself a failure, shown here.
    meta_keys = _frame(con, "SELECT key FROM world_meta") if table_exists(con, "world_meta") else None
    if meta_keys is None:
        import pandas as pd

        meta_keys = pd.DataFrame({"key": pd.Series([], dtype="object")})
    batches.append(
        ValidationBatch(
            "world_meta keys",
            meta_keys,
            [E.ExpectColumnDistinctValuesToContainSet(column="key", value_set=["telemetry_start", "telemetry_end"])],
        )
    )
    stats = {
        "rows_checked": int(profile["readings"].sum()) if len(profile) else 0,
        "series_checked": int(len(profile)),
        "telemetry_start": meta.get("telemetry_start"),
        "telemetry_end": meta.get("telemetry_end"),
    }
    return run_suite("telemetry", "telemetry", batches, stats)


def check_work_orders(con: duckdb.DuckDBPyConnection) -> QualityResult:
    """Work orders: unique non-null wo_id, known asset, non-null finished_at and preventive flag,
    priority 1-5, primary/secondary codes that exist in failure_codes, durations and labour hours >= 0."""
    import great_expectations as gx

    _require(con, "work_orders", "failure_codes", "assets")
    frame = _frame(
        con,
        "SELECT wo_id, asset_id, preventive, priority, finished_at, primary_code, secondary_code, "
        "duration_hours, labor_hours FROM work_orders ORDER BY wo_id",
    )
    primary = [r[0] for r in con.execute("SELECT DISTINCT primary_code FROM failure_codes WHERE primary_code IS NOT NULL ORDER BY 1").fetchall()]
    secondary = [r[0] for r in con.execute("SELECT DISTINCT secondary_code FROM failure_codes WHERE secondary_code IS NOT NULL ORDER BY 1").fetchall()]
    assets = [r[0] for r in con.execute("SELECT asset_id FROM assets ORDER BY 1").fetchall()]
    # The published AssetOpsBench files hold 2 of 4,249 work orders whose secondary code (MT001c, MT017a) their own
    # code catalogue lacks: an imported world tolerates 0.1% of such rows (still listed in the result); a generated
    # one none.
    imported = bool(con.execute("SELECT count(*) FROM world_meta WHERE key = 'scale' AND value = 'imported'").fetchall()[0][0]) \
        if con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'world_meta'").fetchall()[0][0] else False
    code_share: dict[str, Any] = {"mostly": 0.999} if imported else {}
    E = gx.expectations
    expectations = [
        E.ExpectTableRowCountToBeBetween(min_value=1),
        E.ExpectColumnValuesToNotBeNull(column="wo_id"),
        E.ExpectColumnValuesToBeUnique(column="wo_id"),
        E.ExpectColumnValuesToNotBeNull(column="asset_id"),
        E.ExpectColumnValuesToBeInSet(column="asset_id", value_set=assets),
        E.ExpectColumnValuesToNotBeNull(column="finished_at"),
        E.ExpectColumnValuesToNotBeNull(column="preventive"),
        E.ExpectColumnValuesToBeBetween(column="priority", min_value=1, max_value=5),
        E.ExpectColumnValuesToBeInSet(column="primary_code", value_set=primary, **code_share),
        E.ExpectColumnValuesToBeInSet(column="secondary_code", value_set=secondary, **code_share),
        E.ExpectColumnValuesToBeBetween(column="duration_hours", min_value=0),
        E.ExpectColumnValuesToBeBetween(column="labor_hours", min_value=0),
    ]
    batches = [ValidationBatch("work_orders", frame, expectations, index_columns=("wo_id", "asset_id"))]
    return run_suite("work_orders", "work_orders", batches, {"rows_checked": int(len(frame)), "known_codes": len(primary)})


def check_failure_modes(con: duckdb.DuckDBPyConnection) -> QualityResult:
    """Failure modes: exactly 53 rows, unique ids, equipment_class in Chiller/AHU/HVAC, named modes, typical
    primary codes that exist in failure_codes; failure_mode_sensors rows point at known modes with a valid
    direction of effect."""
    import great_expectations as gx

    _require(con, "failure_modes", "failure_codes")
    modes = _frame(con, "SELECT failure_mode_id, equipment_class, failure_mode, primary_code FROM failure_modes ORDER BY failure_mode_id")
    primary = [r[0] for r in con.execute("SELECT DISTINCT primary_code FROM failure_codes WHERE primary_code IS NOT NULL ORDER BY 1").fetchall()]
    E = gx.expectations
    batches = [
        ValidationBatch(
            "failure_modes",
            modes,
            [
                E.ExpectTableRowCountToEqual(value=EXPECTED_FAILURE_MODES),
                E.ExpectColumnValuesToNotBeNull(column="failure_mode_id"),
                E.ExpectColumnValuesToBeUnique(column="failure_mode_id"),
                E.ExpectColumnValuesToNotBeNull(column="equipment_class"),
                E.ExpectColumnValuesToBeInSet(column="equipment_class", value_set=list(FAILURE_MODE_CLASSES)),
                E.ExpectColumnValuesToNotBeNull(column="failure_mode"),
                E.ExpectColumnValuesToBeInSet(column="primary_code", value_set=primary),
            ],
            index_columns=("failure_mode_id",),
        )
    ]
    stats: dict[str, Any] = {"rows_checked": int(len(modes))}
    if table_exists(con, "failure_mode_sensors"):
        links = _frame(con, "SELECT failure_mode_id, sensor, direction FROM failure_mode_sensors ORDER BY 1, 2")
        batches.append(
            ValidationBatch(
                "failure_mode_sensors",
                links,
                [
                    E.ExpectColumnValuesToBeInSet(column="failure_mode_id", value_set=[m for m in modes["failure_mode_id"].dropna()]),
                    E.ExpectColumnValuesToBeInSet(column="direction", value_set=list(FAILURE_MODE_DIRECTIONS)),
                    E.ExpectCompoundColumnsToBeUnique(column_list=["failure_mode_id", "sensor"]),
                ],
                index_columns=("failure_mode_id", "sensor"),
            )
        )
        stats["sensor_links_checked"] = int(len(links))
    return run_suite("failure_modes", "failure_modes", batches, stats)


# --------------------------------------------------------------------------------------------- marts


@dataclass(frozen=True)
class MartSpec:
    """What a mart promises: its key (non-null and unique), plausible ranges of its KPIs (NULL allowed
    where a KPI is undefined, e.g. no running time), ordered column pairs, and that it is not empty
    whenever its source has rows (an imported world without AHU telemetry has an empty AHU mart)."""

    key: tuple[str, ...]
    source_rows_sql: str
    """SQL giving the number of source rows the mart is built from; the mart must have rows iff it is > 0."""
    ranges: Mapping[str, tuple[float | None, float | None]] = field(default_factory=dict)
    ordered: tuple[tuple[str, str], ...] = ()
    """Pairs (a, b) with a >= b on every row where both are set (numbers up to a relative 1e-9, since means
    of equal readings may exceed their maximum by floating-point rounding)."""
    profile_sql: str | None = None
    """For very large marts: SQL that reduces the mart to a frame that is exact about the same rules."""


HOURLY_PROFILE_SQL = """
SELECT
    asset_id,
    sensor,
    count(*) AS hours,
    count(*) - count(DISTINCT hour) AS duplicate_hours,
    count(*) FILTER (WHERE hour IS NULL) AS null_hours,
    min(reading_count) AS min_reading_count,
    max(reading_count) AS max_reading_count,
    -- min <= avg <= max, up to floating-point rounding of the mean (relative 1e-9)
    count(*) FILTER (
        WHERE NOT (min_value <= avg_value + 1e-9 * greatest(1, abs(avg_value))
                   AND avg_value <= max_value + 1e-9 * greatest(1, abs(max_value)))
    ) AS unordered_rows,
    count(*) FILTER (WHERE avg_value IS NULL OR min_value IS NULL OR max_value IS NULL) AS null_statistics
FROM mart_telemetry_hourly
GROUP BY asset_id, sensor
ORDER BY asset_id NULLS FIRST, sensor NULLS FIRST
"""

MART_SPECS: dict[str, MartSpec] = {
    "mart_telemetry_hourly": MartSpec(
        key=("asset_id", "sensor"),
        source_rows_sql="SELECT count(*) FROM stg_telemetry",
        ranges={
            "hours": (1, None),
            "duplicate_hours": (0, 0),
            "null_hours": (0, 0),
            "min_reading_count": (1, 4),
            "max_reading_count": (1, 4),
            "unordered_rows": (0, 0),
            "null_statistics": (0, 0),
        },
        profile_sql=HOURLY_PROFILE_SQL,
    ),
    "mart_chiller_health_daily": MartSpec(
        key=("asset_id", "day"),
        source_rows_sql="SELECT count(*) FROM stg_telemetry WHERE equipment_class = 'Chiller'",
        ranges={
            "buckets_with_data": (1, 96),
            "run_hours": (0, 24),
            "mean_efficiency_kw_per_ton": (0.2, 3.0),
            "load_weighted_kw_per_ton": (0.2, 3.0),
            "mean_tonnage": (0, None),
            "ton_hours": (0, None),
            "energy_kwh": (0, None),
            "mean_pct_loaded": (0, 130),
            "max_pct_loaded": (0, 130),
            "mean_evaporator_approach": (-5, 30),
            "mean_chilled_water_delta_t": (-5, 30),
            "mean_condenser_water_delta_t": (-5, 40),
            "mean_supply_setpoint_deviation": (-30, 40),
        },
    ),
    "mart_ahu_health_daily": MartSpec(
        key=("asset_id", "day"),
        source_rows_sql="SELECT count(*) FROM stg_telemetry WHERE equipment_class = 'AHU'",
        ranges={
            "buckets_with_data": (1, 96),
            "run_hours": (0, 24),
            "mean_supply_air_temp_deviation": (-40, 40),
            "mean_abs_supply_air_temp_deviation": (0, 40),
            "pct_time_off_setpoint": (0, 100),
            "mean_fan_power_kw": (0, None),
            "fan_energy_kwh": (0, None),
            "mean_fan_speed_pct": (0, 100),
            "specific_fan_power_w_per_cfm": (0, 5),
            "mean_filter_dp": (0, 5),
            "max_filter_dp": (0, 5),
        },
        ordered=(("max_filter_dp", "mean_filter_dp"), ("mean_abs_supply_air_temp_deviation", "mean_supply_air_temp_deviation")),
    ),
    "mart_work_orders_monthly": MartSpec(
        key=("asset_id", "month_start"),
        source_rows_sql="SELECT count(*) FROM stg_work_orders",
        ranges={
            "work_orders": (1, None),
            "preventive_count": (0, None),
            "corrective_count": (0, None),
            "urgent_count": (0, None),
            "labor_hours": (0, None),
            "preventive_labor_hours": (0, None),
            "corrective_labor_hours": (0, None),
            "mean_duration_hours": (0, None),
            "corrective_share": (0, 1),
            "finished_month": (1, 12),
        },
        ordered=(("work_orders", "corrective_count"), ("work_orders", "preventive_count"), ("labor_hours", "corrective_labor_hours")),
    ),
    "mart_asset_mtbf": MartSpec(
        key=("asset_id",),
        source_rows_sql="SELECT count(*) FROM stg_assets",
        ranges={
            "failure_count": (0, None),
            "mtbf_days": (0, None),
            "median_days_between_failures": (0, None),
            "history_days": (0, None),
            "history_mtbf_days": (0, None),
        },
        ordered=(("history_days", "history_mtbf_days"),),
    ),
    "mart_alert_counts": MartSpec(
        key=("rule_id", "asset_id"),
        source_rows_sql="SELECT count(*) FROM stg_alerts",
        ranges={"alert_count": (1, None), "alert_days": (1, None), "total_alert_hours": (0, None), "mean_duration_minutes": (0, None)},
        ordered=(("alert_count", "alert_days"), ("last_alert_at", "first_alert_at")),
    ),
}


def check_mart(con: duckdb.DuckDBPyConnection, mart: str, spec: MartSpec | None = None) -> QualityResult:
    """A mart: non-null unique key, KPIs within plausible ranges, ordered columns in order.

    ``spec`` defaults to ``MART_SPECS[mart]``; a mart without a spec is an error (every mart must say what
    it promises).
    """
    import great_expectations as gx

    if spec is None:
        if mart not in MART_SPECS:
            raise QualityError(f"no quality spec for mart '{mart}': add one to MART_SPECS in aob_pipeline/lib/quality.py")
        spec = MART_SPECS[mart]
    _require(con, mart)
    frame = _frame(con, spec.profile_sql if spec.profile_sql else f'SELECT * FROM "{mart}"')
    E = gx.expectations
    source_rows = int(con.execute(spec.source_rows_sql).fetchall()[0][0])
    expectations: list[Any] = [
        E.ExpectTableRowCountToBeBetween(min_value=1) if source_rows else E.ExpectTableRowCountToEqual(value=0)
    ]
    expectations += [E.ExpectColumnValuesToNotBeNull(column=k) for k in spec.key]
    if len(spec.key) == 1:
        expectations.append(E.ExpectColumnValuesToBeUnique(column=spec.key[0]))
    else:
        expectations.append(E.ExpectCompoundColumnsToBeUnique(column_list=list(spec.key)))
    for column, (low, high) in spec.ranges.items():
        expectations.append(E.ExpectColumnValuesToBeBetween(column=column, min_value=low, max_value=high))
    index_columns = list(spec.key)
    for a, b in spec.ordered:
        column = f"{a} >= {b}"
        frame[column] = _at_least(frame, a, b)
        expectations.append(E.ExpectColumnValuesToBeInSet(column=column, value_set=[True]))
        index_columns += [c for c in (a, b) if c not in index_columns]
    label = f"{mart} profile" if spec.profile_sql else mart
    batches = [ValidationBatch(label, frame, expectations, index_columns=index_columns)]
    return run_suite(mart, mart, batches, {"rows_checked": int(len(frame)), "source_rows": source_rows})


def _at_least(frame: Any, a: str, b: str) -> Any:
    """Row-wise ``a >= b`` (True where either is missing); numbers compared up to a relative 1e-9.

    A missing column yields all-False, so the expectation fails and names the pair."""
    import numpy as np
    import pandas as pd

    if a not in frame.columns or b not in frame.columns:
        return pd.Series(False, index=frame.index, dtype=object)
    left, right = frame[a], frame[b]
    missing = left.isna() | right.isna()
    if pd.api.types.is_numeric_dtype(left) and pd.api.types.is_numeric_dtype(right):
        lf, rf = left.astype(float), right.astype(float)
        tolerance = 1e-9 * np.maximum(1.0, np.maximum(lf.abs(), rf.abs()))
        ok = lf + tolerance >= rf
    else:
        ok = left >= right
    return (missing | ok.fillna(False)).astype(bool)


def mart_checker(mart: str) -> Callable[[duckdb.DuckDBPyConnection], QualityResult]:
    """``check_mart`` bound to one mart (for wiring one asset check per mart)."""

    def check(con: duckdb.DuckDBPyConnection) -> QualityResult:
        return check_mart(con, mart)

    check.__name__ = f"check_{mart}"
    return check


WORLD_SUITES: dict[str, Callable[[duckdb.DuckDBPyConnection], QualityResult]] = {
    "telemetry": check_telemetry,
    "work_orders": check_work_orders,
    "failure_modes": check_failure_modes,
}
"""World-table suites by the table they check; bad data there poisons everything downstream."""
