"""Answer kinds that need several domains' tools (the multi-agent scenarios): each composes the
single-domain answer functions it depends on."""

from __future__ import annotations

from typing import Any

import duckdb

from aob_pipeline.lib.scenarios.answers._common import (
    Answer,
    AnswerError,
    _asset,
    _asset_aliases,
    _df,
    _mode_aliases,
    _readings,
    _scalar,
    answer_kind,
)
from aob_pipeline.lib.scenarios.answers.fmsr import (
    failure_mode_field,
    failure_mode_ids,
    failure_mode_sensor_set,
    failure_modes_with_code,
    manual_section_for_failure_mode,
    monitorable_sensors,
)
from aob_pipeline.lib.scenarios.answers.iot import extreme_asset_by_mean, telemetry_stat
from aob_pipeline.lib.scenarios.answers.tsfm import _anomalies, _dominant_window, anomaly_count, forecast_stat
from aob_pipeline.lib.scenarios.answers.wo import latest_work_order, likely_next_codes, work_order_count


@answer_kind("multi", reads=["assets", "sensors", "telemetry", "failure_modes", "failure_mode_sensors"], formats=["json"])
def anomaly_failure_modes(con: duckdb.DuckDBPyConnection, asset: str, sensor: str, start: str, end: str, alpha: float = 0.01) -> Answer:
    """Detect anomalies; take the dominant window (most points) and list the failure modes whose catalog
    effect on this sensor (for the asset's class) points the same way: high -> increase, low -> decrease,
    mixed -> erratic; erratic effects fit any direction. {anomalous, direction, failure_modes}."""
    a = _asset(con, asset)
    result = _anomalies(con, asset, sensor, start, end, alpha)
    window = _dominant_window(result)
    if window is None:
        return Answer({"anomalous": False, "direction": None, "failure_modes": []})
    wanted = {"high": {"increase", "erratic"}, "low": {"decrease", "erratic"}, "mixed": {"erratic"}}[window["direction"]]
    df = _df(con, """SELECT DISTINCT failure_mode_id, direction FROM failure_mode_sensors
                     WHERE lower(sensor) = lower(?) AND equipment_class = ?""", [sensor, a["equipment_class"]])
    ids = sorted(set(df.loc[df["direction"].isin(wanted), "failure_mode_id"]))
    return Answer({"anomalous": True, "direction": window["direction"], "failure_modes": ids}, _mode_aliases(con, ids))


@answer_kind("multi", reads=["assets", "sensors", "telemetry", "failure_modes", "failure_mode_sensors"], formats=["json"])
def anomaly_manual_sections(con: duckdb.DuckDBPyConnection, asset: str, sensor: str, start: str, end: str, alpha: float = 0.01) -> Answer:
    """``anomaly_failure_modes`` plus the maintenance-manual section of each consistent failure mode:
    {anomalous, direction, failure_modes, sections}."""
    found = anomaly_failure_modes(con, asset, sensor, start, end, alpha)
    value = dict(found.value)
    sections = []
    for fm in value["failure_modes"]:
        try:
            sections.append(manual_section_for_failure_mode(con, fm))
        except AnswerError:
            continue
    value["sections"] = sorted(sections)
    return Answer(value, found.aliases)


@answer_kind("multi", reads=["assets", "sensors", "telemetry", "failure_modes"], formats=["json"])
def anomaly_work_order_decision(con: duckdb.DuckDBPyConnection, asset: str, sensor: str, start: str, end: str, failure_mode: str,
                                alpha: float = 0.01) -> dict[str, Any]:
    """Create a corrective work order (with the failure mode's primary code) only if the sensor shows an
    anomaly in [start, end): {create, primary_code (None when not created)}."""
    anomalous = anomaly_count(con, asset, sensor, start, end, alpha) > 0
    code = failure_mode_field(con, failure_mode, "primary_code")
    return {"create": anomalous, "primary_code": code if anomalous else None}


@answer_kind("multi", reads=["assets", "work_orders", "failure_modes"], formats=["json"])
def failure_mode_work_orders(con: duckdb.DuckDBPyConnection, failure_mode: str, asset: str, start: str | None = None,
                             end: str | None = None) -> dict[str, Any]:
    """The failure mode's primary code and how many corrective work orders of the asset carry it in [start, end)."""
    code = failure_mode_field(con, failure_mode, "primary_code")
    return {"primary_code": code, "work_orders": work_order_count(con, asset, start, end, False, code)}


@answer_kind("multi", reads=["assets", "sensors", "telemetry", "failure_modes", "failure_mode_sensors"], formats=["json"],
                 tolerance={"abs": 0.001})
def failure_mode_sensor_means(con: duckdb.DuckDBPyConnection, failure_mode: str, asset: str, start: str, end: str) -> dict[str, float]:
    """Mean over [start, end) of every sensor of the asset that reveals the failure mode, keyed by sensor."""
    out = {}
    for name in monitorable_sensors(con, failure_mode, asset):
        _, _, df = _readings(con, asset, name, start, end)
        out[name] = float(df["value"].mean())
    if not out:
        raise AnswerError(f"{asset} carries no sensor revealing {failure_mode}")
    return out


@answer_kind("multi", reads=["assets", "sensors", "telemetry"], formats=["json"], tolerance={"abs": 0.002, "rel": 1e-4})
def forecast_vs_history_max(con: duckdb.DuckDBPyConnection, asset: str, sensor: str, start: str, end: str, horizon: int = 96,
                            level: float = 90) -> dict[str, Any]:
    """Whether the next ``horizon`` steps may exceed the highest reading of the history [start, end): the
    highest upper bound of the forecast against that maximum: {forecast_max_hi, history_max, exceeds}."""
    hi = forecast_stat(con, asset, sensor, start, end, "max_hi", horizon, "auto_ets", level)
    top = telemetry_stat(con, asset, sensor, start, end, "max")
    return {"forecast_max_hi": hi, "history_max": top, "exceeds": bool(hi > top)}


@answer_kind("multi", reads=["assets", "sensors", "telemetry", "work_orders"], formats=["json"])
def anomaly_and_corrective_history(con: duckdb.DuckDBPyConnection, asset: str, sensor: str, start: str, end: str, wo_start: str,
                                   alpha: float = 0.01) -> dict[str, Any]:
    """Whether the sensor shows anomalies in [start, end) and how many corrective work orders the asset had
    from wo_start up to end: {anomalous, corrective_work_orders}."""
    return {"anomalous": anomaly_count(con, asset, sensor, start, end, alpha) > 0,
            "corrective_work_orders": work_order_count(con, asset, wo_start, end, False)}


@answer_kind("multi", reads=["assets", "sensors", "failure_modes", "failure_mode_sensors"], formats=["integer"])
def detectable_failure_mode_count(con: duckdb.DuckDBPyConnection, asset: str) -> int:
    """How many failure modes of the asset's class (HVAC ones that touch its class included) at least one of
    the asset's sensors reveals."""
    a = _asset(con, asset)
    modes = failure_mode_ids(con, a["equipment_class"], include_hvac=True).value
    carried = set(_df(con, "SELECT sensor FROM sensors WHERE asset_id = ?", [a["asset_id"]])["sensor"])
    n = 0
    for fm in modes:
        if set(failure_mode_sensor_set(con, fm, a["equipment_class"])) & carried:
            n += 1
    return n


@answer_kind("multi", reads=["assets", "work_orders", "failure_modes"], formats=["json"])
def latest_corrective_failure_modes(con: duckdb.DuckDBPyConnection, asset: str) -> Answer:
    """The asset's latest corrective work order, its primary code and the failure modes of the asset's class
    (its own catalog class) that carry that code: {wo_id, primary_code, failure_modes}."""
    a = _asset(con, asset)
    wo = latest_work_order(con, asset, preventive=False)
    code = _scalar(con, "SELECT primary_code FROM work_orders WHERE wo_id = ?", [wo])
    ids = failure_modes_with_code(con, code, a["equipment_class"]).value
    return Answer({"wo_id": wo, "primary_code": code, "failure_modes": ids}, _mode_aliases(con, ids))


@answer_kind("multi", reads=["assets", "work_orders", "world_meta", "failure_modes"], formats=["json"])
def next_code_failure_modes(con: duckdb.DuckDBPyConnection, asset: str) -> Answer:
    """The most likely next primary code(s) of the asset and the failure modes of its class carrying them:
    {next_codes, failure_modes}."""
    a = _asset(con, asset)
    codes = likely_next_codes(con, asset)
    ids = sorted({fm for c in codes for fm in failure_modes_with_code(con, c, a["equipment_class"]).value})
    return Answer({"next_codes": codes, "failure_modes": ids}, _mode_aliases(con, ids))


@answer_kind("multi", reads=["assets", "sites", "sensors", "telemetry", "work_orders", "world_meta"], formats=["json"])
def top_power_asset_next_codes(con: duckdb.DuckDBPyConnection, start: str, end: str, site_id: str | None = None,
                               equipment_class: str | None = None, sensor: str = "Power Input") -> Answer:
    """The asset of a site/class with the highest mean ``sensor`` over [start, end) and its most likely next
    work-order code(s): {asset_id, next_codes}."""
    top = extreme_asset_by_mean(con, sensor, start, end, site_id, equipment_class, "max").value
    if len(top) != 1:
        raise AnswerError(f"{len(top)} assets tie for the highest mean {sensor}")
    return Answer({"asset_id": top[0], "next_codes": likely_next_codes(con, top[0])}, _asset_aliases(con, top))
