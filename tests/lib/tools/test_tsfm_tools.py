"""TSFM tools through the registry: model listing, forecasting, anomaly detection and their errors.

Forecasting runs on the hand-made world (three days of telemetry, see conftest.py); anomaly detection on a
small snapshot written here with a planted step, so the expected windows are known.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aob_pipeline.lib import timeseries
from aob_pipeline.lib.tools.base import ToolContext
from aob_pipeline.lib.tools.registry import call_tool, get_tool

WINDOW = {"start": "2020-06-01", "end": "2020-06-04"}


def ok(envelope: dict) -> dict:
    assert envelope["ok"], envelope
    return envelope["result"]


def error(envelope: dict) -> dict:
    assert not envelope["ok"], envelope
    return envelope["error"]


# --------------------------------------------------------------------------------------- list models

def test_list_models_is_truthful(handmade):
    result = ok(call_tool(handmade.ctx, "tsfm_list_models", {}))
    assert [m["name"] for m in result["models"]] == list(timeseries.FORECAST_MODELS)
    assert [m["name"] for m in result["models"] if m["default"]] == [timeseries.DEFAULT_FORECAST_MODEL]
    assert {a["name"]: a["tool"] for a in result["analyses"]} == {
        "forecasting": "tsfm_forecast", "anomaly_detection": "tsfm_detect_anomalies"}
    for a in result["analyses"]:
        get_tool(a["tool"])  # every analysis names a registered tool
    assert result["season_length"] == 96 and result["cadence_minutes"] == 15


# ---------------------------------------------------------------------------------------- forecasting

def test_forecast_returns_interval_rows_after_the_history(handmade):
    args = {"asset": "chiller 6", "sensor": "supply temperature", **WINDOW, "horizon": 24, "level": 80}
    result = ok(call_tool(handmade.ctx, "tsfm_forecast", args))
    assert result["asset_id"] == "CWC04006" and result["sensor"] == "Supply Temperature"
    assert result["model"] == "auto_ets" and result["level"] == 80 and result["horizon"] == 24
    rows = result["forecast"]
    assert len(rows) == 24
    assert rows[0]["ts"] == "2020-06-04T00:00:00"  # one step after the last reading at 23:45
    assert rows[-1]["ts"] == "2020-06-04T05:45:00"
    assert all(r["lo"] <= r["mean"] <= r["hi"] for r in rows)
    means = [r["mean"] for r in rows]
    assert result["summary"]["max"] == max(means) and result["summary"]["min"] == min(means)

    tele = handmade.frames["telemetry"]
    readings = tele[(tele["asset_id"] == "CWC04006") & (tele["sensor"] == "Supply Temperature")]
    assert result["history"]["readings"] == len(readings)
    assert result["history"]["interpolated"] + result["history"]["filled_from_daily_profile"] == 16  # 4-hour gap
    # the forecast stays in the range the sensor moved in (44 degF +- 5 %) and in its plausible range
    assert 40 < min(means) and max(means) < 48
    assert all(35.0 <= r["lo"] and r["hi"] <= 60.0 for r in rows)


def test_forecast_with_each_model(handmade):
    for model in timeseries.FORECAST_MODELS:
        result = ok(call_tool(handmade.ctx, "tsfm_forecast", {
            "asset": "CWC04006", "sensor": "Power Input", **WINDOW, "horizon": 8, "model": model}))
        assert result["model"] == model and len(result["forecast"]) == 8


@pytest.mark.parametrize("args, code", [
    ({"asset": "Chiller 99", "sensor": "Power Input", **WINDOW}, "unknown_asset"),
    ({"asset": "Chiller 6", "sensor": "Vibration", **WINDOW}, "unknown_sensor"),
    ({"asset": "Chiller 6", "sensor": "Power Input", "start": "2020-06-04", "end": "2020-06-01"}, "start_after_end"),
    ({"asset": "Chiller 6", "sensor": "Power Input", "start": "2019-01-01", "end": "2019-02-01"}, "empty_window"),
    ({"asset": "Chiller 9", "sensor": "Supply Temperature", **WINDOW}, "not_enough_data"),
    ({"asset": "Chiller 6", "sensor": "Power Input", "start": "2020-06-01", "end": "2020-06-02"}, "not_enough_data"),
    ({"asset": "Chiller 6", "sensor": "Power Input", **WINDOW, "model": "prophet"}, "invalid_arguments"),
    ({"asset": "Chiller 6", "sensor": "Power Input", **WINDOW, "horizon": 0}, "invalid_arguments"),
    ({"asset": "Chiller 6", "sensor": "Power Input", **WINDOW, "level": 100}, "invalid_arguments"),
    ({"asset": "Chiller 6", "sensor": "Power Input", "start": "June 1", "end": "2020-06-04"}, "invalid_arguments"),
])
def test_forecast_errors(handmade, args, code):
    err = error(call_tool(handmade.ctx, "tsfm_forecast", args))
    assert err["code"] == code, err


def test_not_enough_data_hint_gives_the_data_range(handmade):
    err = error(call_tool(handmade.ctx, "tsfm_forecast",
                          {"asset": "CWC04009", "sensor": "Supply Temperature", **WINDOW}))
    assert "2020-06-01T00:00:00" in err["hint"] and "2020-06-01T23:45:00" in err["hint"]
    assert "96 readings" in err["message"]


# -------------------------------------------------------------------------------- anomaly detection

ONSET = pd.Timestamp("2020-06-10 08:00")
REPAIR = pd.Timestamp("2020-06-12 20:00")


@pytest.fixture(scope="module")
def step_world(tmp_path_factory) -> ToolContext:
    """Two weeks of one chiller's condenser water flow, with a 600 gpm drop between ONSET and REPAIR."""
    folder: Path = tmp_path_factory.mktemp("tsfm_world")
    rng = np.random.default_rng(4)
    ts = pd.date_range("2020-06-01", "2020-06-15", freq="15min", inclusive="left")
    hours = ts.hour + ts.minute / 60
    flow = 1500 + 100 * np.sin(2 * np.pi * (hours - 9) / 24) + rng.normal(0, 10, len(ts))
    fault = (ts >= ONSET) & (ts < REPAIR)
    flow = np.where(fault, flow - 600, flow)
    telemetry = pd.DataFrame({"asset_id": "CWC04006", "sensor": "Condenser Water Flow", "ts": ts, "value": flow})
    telemetry = pd.concat([telemetry, pd.DataFrame({
        "asset_id": "CWC04006", "sensor": "Supply Temperature", "ts": ts,
        "value": 44 + 0.2 * np.sin(2 * np.pi * hours / 24) + rng.normal(0, 0.05, len(ts))})])
    pd.DataFrame({"asset_id": ["CWC04006"], "name": ["Chiller 6"], "equipment_class": ["Chiller"],
                  "site_id": ["MAIN"]}).to_parquet(folder / "assets.parquet")
    pd.DataFrame({"asset_id": ["CWC04006", "CWC04006"], "sensor": ["Condenser Water Flow", "Supply Temperature"],
                  "unit": ["gpm", "degF"]}).to_parquet(folder / "sensors.parquet")
    telemetry.to_parquet(folder / "telemetry.parquet")
    pd.DataFrame({"key": ["now"], "value": ["2020-06-15T00:00:00"]}).to_parquet(folder / "world_meta.parquet")
    ctx = ToolContext(folder)
    yield ctx
    ctx.close()


def test_detect_anomalies_finds_the_planted_drop(step_world):
    args = {"asset": "Chiller 6", "sensor": "Condenser Water Flow", "start": "2020-06-01", "end": "2020-06-15"}
    result = ok(call_tool(step_world, "tsfm_detect_anomalies", args))
    assert result["method"] == timeseries.ANOMALY_METHOD and result["alpha"] == 0.01
    assert result["points_checked"] == 14 * 96
    windows = result["windows"]
    assert len(windows) == 1, windows
    assert windows[0]["start"] == ONSET.isoformat() and windows[0]["end"] == REPAIR.isoformat()
    assert windows[0]["direction"] == "low"
    n_fault = int((REPAIR - ONSET) / pd.Timedelta("15min"))
    assert result["count"] == windows[0]["points"] == n_fault
    assert result["pages"] == -(-n_fault // 200) and len(result["anomalies"]) == 200
    first = result["anomalies"][0]
    assert first["ts"] == ONSET.isoformat() and first["value"] < first["lower"] and first["score"] > 0

    last_page = ok(call_tool(step_world, "tsfm_detect_anomalies", {**args, "page": result["pages"]}))
    assert last_page["anomalies"][-1]["ts"] == (REPAIR - pd.Timedelta("15min")).isoformat()
    assert error(call_tool(step_world, "tsfm_detect_anomalies",
                           {**args, "page": result["pages"] + 1}))["code"] == "invalid_arguments"


def test_detect_anomalies_on_a_clean_sensor_finds_nothing(step_world, handmade):
    clean = ok(call_tool(step_world, "tsfm_detect_anomalies", {
        "asset": "CWC04006", "sensor": "Supply Temperature", "start": "2020-06-01", "end": "2020-06-15"}))
    assert clean["count"] == 0 and clean["windows"] == [] and clean["anomalies"] == []
    short = ok(call_tool(handmade.ctx, "tsfm_detect_anomalies", {
        "asset": "AHU 3", "sensor": "Supply Fan Speed", **WINDOW}))  # jittered timestamps, daily cycle
    assert short["count"] == 0 and short["points_checked"] == 3 * 96


def test_detect_anomalies_restricted_to_the_window(step_world):
    before = ok(call_tool(step_world, "tsfm_detect_anomalies", {
        "asset": "CWC04006", "sensor": "Condenser Water Flow", "start": "2020-06-01", "end": "2020-06-10"}))
    assert before["count"] == 0 and before["end"] == "2020-06-10T00:00:00"


@pytest.mark.parametrize("args, code", [
    ({"asset": "Chiller 7", "sensor": "Condenser Water Flow"}, "unknown_asset"),
    ({"asset": "Chiller 6", "sensor": "Condenser Flow Rate"}, "unknown_sensor"),
    ({"asset": "Chiller 6", "sensor": "Condenser Water Flow", "start": "2020-06-15", "end": "2020-06-01"},
     "start_after_end"),
    ({"asset": "Chiller 6", "sensor": "Condenser Water Flow", "start": "2020-07-01", "end": "2020-07-05"},
     "empty_window"),
    ({"asset": "Chiller 6", "sensor": "Condenser Water Flow", "start": "2020-06-01", "end": "2020-06-02T12:00:00"},
     "not_enough_data"),
    ({"asset": "Chiller 6", "sensor": "Condenser Water Flow", "alpha": 0.5}, "invalid_arguments"),
    ({"asset": "Chiller 6", "sensor": "Condenser Water Flow", "alpha": 0}, "invalid_arguments"),
])
def test_detect_anomalies_errors(step_world, args, code):
    args = {"start": "2020-06-01", "end": "2020-06-15", **args}
    err = error(call_tool(step_world, "tsfm_detect_anomalies", args))
    assert err["code"] == code, err
