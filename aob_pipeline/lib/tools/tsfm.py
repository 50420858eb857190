"""TSFM tools: the supported analyses and models, forecasting a sensor, and anomaly detection over a window.

The numerical work lives in ``aob_pipeline.lib.timeseries`` (the same code the scenarios' answer functions and
the anomaly benchmark call); these tools resolve the asset and sensor, read the window through
``ctx.query`` and shape the result for an agent. Errors: ``unknown_asset``, ``unknown_sensor``,
``start_after_end``, ``empty_window`` (no reading at all) and ``not_enough_data`` (fewer than two days of
readings, or under half of the 15-minute slots filled); the hint gives the sensor's data range.
"""

from __future__ import annotations

from typing import Any, cast

from aob_pipeline.lib import timeseries
from aob_pipeline.lib.tools._common import (
    ASSET_SCHEMA,
    DEFAULT_PAGE_SIZE,
    PAGE_SCHEMA,
    PAGE_SIZE_SCHEMA,
    fmt_ts,
    load_sensor_window,
    object_schema,
    page_slice,
    parse_window,
    resolve_asset,
    resolve_sensor,
    rounded,
    sensor_data_range,
    timestamp_schema,
)
from aob_pipeline.lib.tools.base import ToolContext, ToolError, ToolSpec

SENSOR_SCHEMA = {
    "type": "string",
    "minLength": 1,
    "description": "Sensor name as listed by iot_list_sensors, e.g. 'Supply Temperature' (case-insensitive).",
}

ANALYSES = [
    {
        "name": "forecasting",
        "tool": "tsfm_forecast",
        "description": "Forecast a sensor up to 7 days (672 steps of 15 minutes) past a history window, with a "
                       "prediction interval at a chosen level (default 90 %).",
    },
    {
        "name": "anomaly_detection",
        "tool": "tsfm_detect_anomalies",
        "method": timeseries.ANOMALY_METHOD,
        "description": "Flag readings outside conformal bounds around a robust seasonal baseline (the median of "
                       "the same time of day over the previous 7 days, with past anomalies removed); "
                       "consecutive anomalies are merged into windows. Daily cycles are never flagged.",
    },
]


def list_models(ctx: ToolContext) -> dict[str, Any]:
    return {
        "analyses": ANALYSES,
        "models": [
            {"name": m.name, "description": m.description, "default": m.name == timeseries.DEFAULT_FORECAST_MODEL}
            for m in timeseries.FORECAST_MODELS.values()
        ],
        "cadence_minutes": int(timeseries.STEP.total_seconds() // 60),
        "season_length": timeseries.DAILY_SEASON,
        "max_horizon": timeseries.MAX_HORIZON,
        "min_history_readings": timeseries.MIN_OBSERVED_POINTS,
    }


def _window_series(ctx: ToolContext, asset: str, sensor: str, start: str, end: str):
    record = resolve_asset(ctx, asset)
    sensor_rec = resolve_sensor(ctx, record, sensor)
    s, e = parse_window(start, end)
    frame = load_sensor_window(ctx, record, sensor_rec["sensor"], s, e)
    return record, sensor_rec, s, e, frame


def _not_enough(ctx: ToolContext, record: dict[str, Any], sensor: str, exc: Exception) -> ToolError:
    first, last, n = sensor_data_range(ctx, record["asset_id"], sensor)
    return ToolError(
        "not_enough_data",
        f"{sensor} on {record['name']} ({record['asset_id']}): {exc}",
        f"widen the window to at least two full days; {sensor} has {n} readings from {fmt_ts(first)} to {fmt_ts(last)}",
    )


def forecast(
    ctx: ToolContext,
    asset: str,
    sensor: str,
    start: str,
    end: str,
    horizon: int = timeseries.DAILY_SEASON,
    model: str = timeseries.DEFAULT_FORECAST_MODEL,
    level: float = 90,
) -> dict[str, Any]:
    record, sensor_rec, s, e, frame = _window_series(ctx, asset, sensor, start, end)
    name = sensor_rec["sensor"]
    try:
        result = timeseries.forecast(frame["ts"], frame["value"], s, e, horizon=horizon, model=model, level=level,
                               plausible_range=(sensor_rec.get("min_value"), sensor_rec.get("max_value")))
    except timeseries.NotEnoughDataError as exc:
        raise _not_enough(ctx, record, name, exc) from None
    except ValueError as exc:
        raise ToolError("invalid_arguments", str(exc)) from None
    fc = result.frame
    hist = result.history
    rows = [
        {"ts": fmt_ts(t), "mean": rounded(m), "lo": rounded(lo), "hi": rounded(hi)}
        for t, m, lo, hi in zip(fc["ts"], fc["mean"], fc["lo"], fc["hi"])
    ]
    i_max, i_min = int(fc["mean"].to_numpy().argmax()), int(fc["mean"].to_numpy().argmin())
    return {
        "asset_id": record["asset_id"],
        "name": record["name"],
        "sensor": name,
        "unit": sensor_rec.get("unit"),
        "model": result.model,
        "horizon": int(horizon),
        "level": level,
        "history": {
            "start": fmt_ts(hist.index[0]),
            "end": fmt_ts(hist.index[-1]),
            "slots": len(hist),
            "readings": hist.n_observed,
            "interpolated": hist.interpolated,
            "filled_from_daily_profile": hist.profile_filled,
            "last_value": rounded(hist.raw[hist.observed][-1]),
        },
        "interval_calibration": {
            "method": "split-conformal scale from back-tests on the end of the history",
            "backtests": result.calibration_windows,
            "scale": rounded(result.interval_scale),
        },
        "forecast": rows,
        "summary": {
            "first_ts": rows[0]["ts"],
            "last_ts": rows[-1]["ts"],
            "mean": rounded(fc["mean"].mean()),
            "max": rounded(fc["mean"].iloc[i_max]),
            "max_ts": fmt_ts(fc["ts"].iloc[i_max]),
            "min": rounded(fc["mean"].iloc[i_min]),
            "min_ts": fmt_ts(fc["ts"].iloc[i_min]),
            "last_mean": rounded(fc["mean"].iloc[-1]),
            "mean_interval_width": rounded((fc["hi"] - fc["lo"]).mean()),
        },
    }


def detect_anomalies(
    ctx: ToolContext,
    asset: str,
    sensor: str,
    start: str,
    end: str,
    alpha: float = 0.01,
    page: int | None = None,
    page_size: int | None = None,
) -> dict[str, Any]:
    record, sensor_rec, s, e, frame = _window_series(ctx, asset, sensor, start, end)
    name = sensor_rec["sensor"]
    try:
        result = timeseries.detect_anomalies(frame["ts"], frame["value"], s, e, alpha=alpha)
    except timeseries.NotEnoughDataError as exc:
        raise _not_enough(ctx, record, name, exc) from None
    except ValueError as exc:
        raise ToolError("invalid_arguments", str(exc)) from None
    found = result.anomalies
    page, size, pages, offset = page_slice(len(found), page, page_size or DEFAULT_PAGE_SIZE)
    shown = found.iloc[offset:offset + size]
    anomalies = [
        {"ts": fmt_ts(r.ts), "value": rounded(r.value), "expected": rounded(r.expected),
         "lower": rounded(r.lower), "upper": rounded(r.upper), "score": rounded(r.score)}
        for r in shown.itertuples(index=False)
    ]
    windows = [
        {"start": fmt_ts(w.start), "end": fmt_ts(w.end), "points": int(cast(int, w.points)),
         "max_score": rounded(w.max_score), "direction": w.direction}
        for w in result.windows.itertuples(index=False)
    ]
    return {
        "asset_id": record["asset_id"],
        "name": record["name"],
        "sensor": name,
        "unit": sensor_rec.get("unit"),
        "method": result.method,
        "alpha": result.alpha,
        "start": fmt_ts(s),
        "end": fmt_ts(e),
        "points_checked": len(result.points),
        "count": len(found),
        "window_count": len(windows),
        "windows": windows,
        "page": page,
        "page_size": size,
        "pages": pages,
        "anomalies": anomalies,
    }


HISTORY_ARGS = {
    "asset": ASSET_SCHEMA,
    "sensor": SENSOR_SCHEMA,
    "start": timestamp_schema("History window start (inclusive)"),
    "end": timestamp_schema("History window end (exclusive)"),
}

TOOLS: list[ToolSpec] = [
    ToolSpec(
        name="tsfm_list_models",
        group="tsfm",
        description=(
            "List the time-series analyses (forecasting, anomaly detection) and the forecasting models this "
            "service supports, with what each does. Returns {analyses:[{name, tool, description}], "
            "models:[{name, description, default}], cadence_minutes, season_length, max_horizon, "
            "min_history_readings}. Use it to choose a model before tsfm_forecast."
        ),
        parameters=object_schema({}),
        func=list_models,
    ),
    ToolSpec(
        name="tsfm_forecast",
        group="tsfm",
        description=(
            "Forecast one sensor of one asset from its readings in the history window [start, end) (at least two "
            "days of 15-minute readings). The forecast starts one step (15 minutes) after the last reading in the "
            "window and runs for `horizon` steps (default 96 = one day, at most 672). Returns {asset_id, name, "
            "sensor, unit, model, horizon, level, history:{start, end, readings, ...}, interval_calibration, "
            "forecast:[{ts, mean, lo, hi}], summary:{mean, max, max_ts, min, min_ts, last_mean, ...}}; lo/hi bound "
            "the prediction interval at `level` % (calibrated on back-tests), all clipped to the sensor's plausible "
            "range. Errors: unknown_asset, "
            "unknown_sensor, start_after_end, empty_window, not_enough_data."
        ),
        parameters=object_schema({
            **HISTORY_ARGS,
            "horizon": {"type": "integer", "minimum": 1, "maximum": timeseries.MAX_HORIZON,
                        "description": "Steps of 15 minutes to forecast (default 96 = 24 hours)."},
            "model": {"type": "string", "enum": list(timeseries.FORECAST_MODELS),
                      "description": f"Forecasting model (default {timeseries.DEFAULT_FORECAST_MODEL}); see tsfm_list_models."},
            "level": {"type": "number", "minimum": 50, "exclusiveMaximum": 100,
                      "description": "Prediction-interval level in percent (default 90)."},
        }, ["asset", "sensor", "start", "end"]),
        func=forecast,
    ),
    ToolSpec(
        name="tsfm_detect_anomalies",
        group="tsfm",
        description=(
            "Detect anomalies in one sensor of one asset over the window [start, end) (at least two days of "
            "readings; longer windows learn the normal daily pattern better). Each reading is compared with a "
            "robust seasonal baseline (same time of day over the previous 7 days) and flagged when it leaves the "
            "conformal bounds at error rate `alpha` for at least 45 minutes, or lies far outside them. Returns "
            "{method, alpha, points_checked, count, window_count, windows:[{start, end, points, max_score, "
            "direction (high|low|mixed)}], anomalies:[{ts, value, expected, lower, upper, score}], page, pages}; "
            "windows merge consecutive anomalies and are usually what to report; anomalies are paged by time. "
            "Errors: unknown_asset, unknown_sensor, start_after_end, empty_window, not_enough_data."
        ),
        parameters=object_schema({
            **HISTORY_ARGS,
            "alpha": {"type": "number", "exclusiveMinimum": 0, "maximum": 0.2,
                      "description": "Per-reading false-alarm rate of the conformal bounds (default 0.01)."},
            "page": PAGE_SCHEMA,
            "page_size": PAGE_SIZE_SCHEMA,
        }, ["asset", "sensor", "start", "end"]),
        func=detect_anomalies,
    ),
]
