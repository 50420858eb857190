"""TSFM answer kinds: the forecasting service, forecasts and anomaly detection (mirroring
``aob_pipeline.lib.tools.tsfm``; the numerics are ``aob_pipeline.lib.timeseries``, compared within a tolerance)."""

from __future__ import annotations

from typing import Any

import duckdb
import pandas as pd

from aob_pipeline.lib.scenarios.answers._common import (
    AnswerError,
    ThinDataError,
    _asset,
    _check_choice,
    _iso,
    _readings,
    _sensor,
    _ts,
    answer_kind,
)
from aob_pipeline.lib.scenarios.answers.iot import sensor_names


@answer_kind("tsfm", reads=[], formats=["id_set", "label", "integer"])
def tsfm_capability(con: duckdb.DuckDBPyConnection, item: str) -> Any:
    """What the TSFM service supports, from ``aob_pipeline.lib.timeseries``: item = models (names), default_model,
    max_horizon (steps), min_history_readings or cadence_minutes."""
    from aob_pipeline.lib import timeseries as tsfm

    values = {
        "models": sorted(tsfm.FORECAST_MODELS),
        "default_model": tsfm.DEFAULT_FORECAST_MODEL,
        "max_horizon": int(tsfm.MAX_HORIZON),
        "min_history_readings": int(tsfm.MIN_OBSERVED_POINTS),
        "cadence_minutes": int(tsfm.STEP.total_seconds() // 60),
    }
    _check_choice("item", item, tuple(values))
    return values[item]


MODEL_PURPOSES = ("seasonal_with_trend", "baseline")


@answer_kind("tsfm", reads=[], formats=["text"])
def tsfm_model_recommendation(con: duckdb.DuckDBPyConnection, purpose: str) -> dict[str, Any]:
    """What a model recommendation must name: for a daily-cycle series with drift (seasonal_with_trend) any
    model that removes the daily cycle and models the rest; for a baseline, a non-seasonal-decomposition one."""
    from aob_pipeline.lib import timeseries as tsfm

    _check_choice("purpose", purpose, MODEL_PURPOSES)
    wanted = [m.name for m in tsfm.FORECAST_MODELS.values() if m.seasonal == (purpose == "seasonal_with_trend")]
    if not wanted:
        raise AnswerError(f"no model fits purpose {purpose!r}")
    return {"must_mention": [sorted(wanted)]}


FORECAST_STATS = ("mean", "max", "min", "last_mean", "max_hi", "min_lo")


def _forecast(con: duckdb.DuckDBPyConnection, asset: str, sensor: str, start: str, end: str, horizon: int, model: str, level: float):
    """The forecast of a sensor from its readings in [start, end), clipped to the sensor's plausible range."""
    from aob_pipeline.lib import timeseries as tsfm

    a, name, df = _readings(con, asset, sensor, start, end)
    meta = _sensor(con, a["asset_id"], name)

    def bound(v: Any) -> float | None:
        return None if v is None or pd.isna(v) else float(v)

    try:
        return tsfm.forecast(df["ts"], df["value"], _ts(start, "start"), _ts(end, "end"),
                             horizon=int(horizon), model=model, level=level,
                             plausible_range=(bound(meta["min_value"]), bound(meta["max_value"])))
    except tsfm.NotEnoughDataError as exc:
        raise ThinDataError(f"forecast of {sensor} on {asset}: {exc}") from None


@answer_kind("tsfm", reads=["assets", "sensors", "telemetry"], formats=["number"], tolerance={"abs": 0.002, "rel": 1e-4})
def forecast_stat(con: duckdb.DuckDBPyConnection, asset: str, sensor: str, start: str, end: str, stat: str = "mean", horizon: int = 96,
                  model: str = "auto_ets", level: float = 90) -> float:
    """A statistic of a forecast from the history [start, end): mean, max or min of the forecast means,
    last_mean (at the horizon), max_hi (highest upper bound) or min_lo (lowest lower bound). Forecast values
    are clipped to the sensor's plausible range (a flow or a load never goes negative)."""
    _check_choice("stat", stat, FORECAST_STATS)
    fc = _forecast(con, asset, sensor, start, end, horizon, model, level).frame
    return float({
        "mean": fc["mean"].mean(), "max": fc["mean"].max(), "min": fc["mean"].min(),
        "last_mean": fc["mean"].iloc[-1], "max_hi": fc["hi"].max(), "min_lo": fc["lo"].min(),
    }[stat])


@answer_kind("tsfm", reads=["assets", "sensors", "telemetry"], formats=["label"])
def forecast_horizon_end(con: duckdb.DuckDBPyConnection, asset: str, sensor: str, start: str, end: str, horizon: int = 96) -> str | None:
    """Timestamp of the last forecast slot: horizon steps of 15 minutes after the last reading's slot."""
    from aob_pipeline.lib import timeseries as tsfm

    _, _, df = _readings(con, asset, sensor, start, end)
    last_slot = pd.Timestamp(df["ts"].iloc[-1]).round(tsfm.STEP)  # type: ignore[arg-type]  # pandas takes a Timedelta as freq; its stubs say str
    return _iso(last_slot + int(horizon) * tsfm.STEP)


def _anomalies(con: duckdb.DuckDBPyConnection, asset: str, sensor: str, start: str, end: str, alpha: float):
    from aob_pipeline.lib import timeseries as tsfm

    _, _, df = _readings(con, asset, sensor, start, end)
    try:
        return tsfm.detect_anomalies(df["ts"], df["value"], _ts(start, "start"), _ts(end, "end"), alpha=alpha)
    except tsfm.NotEnoughDataError as exc:
        raise ThinDataError(f"anomaly detection on {sensor} of {asset}: {exc}") from None


@answer_kind("tsfm", reads=["assets", "sensors", "telemetry"], formats=["integer"])
def anomaly_count(con: duckdb.DuckDBPyConnection, asset: str, sensor: str, start: str, end: str, alpha: float = 0.01,
                  unit: str = "points") -> int:
    """How many anomalous readings (unit=points) or anomaly windows (unit=windows) in [start, end)."""
    _check_choice("unit", unit, ("points", "windows"))
    result = _anomalies(con, asset, sensor, start, end, alpha)
    return int(len(result.anomalies) if unit == "points" else len(result.windows))


@answer_kind("tsfm", reads=["assets", "sensors", "telemetry"], formats=["label"])
def has_anomaly(con: duckdb.DuckDBPyConnection, asset: str, sensor: str, start: str, end: str, alpha: float = 0.01) -> str:
    """'yes' when the sensor shows at least one anomaly in [start, end), else 'no'."""
    return "yes" if anomaly_count(con, asset, sensor, start, end, alpha) > 0 else "no"


@answer_kind("tsfm", reads=["assets", "sensors", "telemetry"], formats=["label"])
def first_anomaly_time(con: duckdb.DuckDBPyConnection, asset: str, sensor: str, start: str, end: str, alpha: float = 0.01) -> str | None:
    """Timestamp (15-minute slot) of the first anomalous reading in [start, end), or 'none'."""
    found = _anomalies(con, asset, sensor, start, end, alpha).anomalies
    return "none" if found.empty else _iso(found["ts"].iloc[0])


@answer_kind("tsfm", reads=["assets", "sensors", "telemetry"], formats=["id_set"])
def anomalous_sensors(con: duckdb.DuckDBPyConnection, asset: str, start: str, end: str, sensors: list[str] | None = None,
                      alpha: float = 0.01) -> list[str]:
    """Which of the given sensors (default: every sensor of the asset) show an anomaly in [start, end).
    Sensors whose window is too thin to analyse count as not anomalous."""
    names = sensors if sensors is not None else sensor_names(con, asset)
    out = []
    for name in names:
        try:
            if anomaly_count(con, asset, name, start, end, alpha) > 0:
                out.append(_sensor(con, _asset(con, asset)["asset_id"], name)["sensor"])
        except ThinDataError:
            continue
    return sorted(out)


def _dominant_window(result: Any) -> dict[str, Any] | None:
    """The anomaly window with the most points (ties: higher max score, then earlier)."""
    if result.windows.empty:
        return None
    w = result.windows.assign(neg_score=-result.windows["max_score"].round(4))
    w = w.sort_values(["points", "neg_score", "start"], ascending=[False, True, True])
    return w.iloc[0].to_dict()
