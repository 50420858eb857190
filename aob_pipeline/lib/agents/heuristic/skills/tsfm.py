"""Heuristic skills of the TSFM intents: the forecasting service, forecasts and anomaly detection
(``tsfm_*`` tools)."""

from __future__ import annotations

import re
from typing import Any

from aob_pipeline.lib.agents.heuristic.skills._common import (
    Outcome,
    Toolbox,
    ToolFailed,
    _asset,
    _history_window,
    _round,
    _sensor,
    _words,
    skill,
)
from aob_pipeline.lib.agents.heuristic.understanding import Request


@skill("tsfm_capability", answers=("tsfm_capability",))
def _tsfm_capability(part, req, tb, facts, catalog):
    result = tb.call("tsfm_list_models", {})
    item = part.options.get("item", "models")
    if item == "models":
        value: Any = [m["name"] for m in result["models"]]
    elif item == "default_model":
        value = next((m["name"] for m in result["models"] if m.get("default")), None)
    else:
        value = result.get(item)
    return Outcome(value, item, "tsfm_list_models")


@skill("tsfm_recommend", answers=("tsfm_model_recommendation",))
def _tsfm_recommend(part, req, tb, facts, catalog):
    result = tb.call("tsfm_list_models", {})
    want = _words(req.text) | ({"trend"} if re.search(r"\bdrift|\btrend", req.text, re.IGNORECASE) else set())
    scored = sorted(result["models"], key=lambda m: (-len(want & _words(m.get("description", ""))),
                                                      not m.get("default"), m["name"]))
    best = scored[0]
    text = (f"I would choose {best['name']}: {best.get('description', '').strip()} "
            f"It matches the request's needs ({', '.join(sorted(want & _words(best.get('description', ''))))}).")
    return Outcome(text, "recommendation", "tsfm_list_models descriptions compared with the request")


def _model_choice(req: Request, tb: Toolbox) -> str | None:
    if not re.search(r"model|naive|arima|ets\b|theta|baseline", req.text, re.IGNORECASE):
        return None
    names = [m["name"] for m in tb.call("tsfm_list_models", {})["models"]]
    squashed = re.sub(r"[^a-z0-9]", "", req.text.lower())
    for name in sorted(names, key=len, reverse=True):
        if re.sub(r"[^a-z0-9]", "", name.lower()) in squashed:
            return name
    return None


@skill("forecast", answers=("forecast_stat", "forecast_horizon_end"))
def _forecast(part, req, tb, facts, catalog):
    asset, sensor = _asset(req, facts, part), _sensor(req)
    start, end, _ = _history_window(req, catalog)
    args = {"asset": asset["asset_id"], "sensor": sensor, "start": start, "end": end,
            "horizon": req.horizon or 96, "model": _model_choice(req, tb), "level": req.level}
    result = tb.call("tsfm_forecast", args)
    points = result["forecast"]
    summary = result.get("summary") or {}
    stat = part.options.get("stat", "mean")
    max_hi = max(p["hi"] for p in points) if points else None
    min_lo = min(p["lo"] for p in points) if points else None
    value = {"mean": summary.get("mean"), "max": summary.get("max"), "min": summary.get("min"),
             "last_mean": summary.get("last_mean"), "max_hi": max_hi, "min_lo": min_lo,
             "end_time": summary.get("last_ts")}.get(stat)
    return Outcome(_round(value), f"forecast_{stat}",
                   f"tsfm_forecast ({result.get('model')}, horizon {result.get('horizon')}, level {result.get('level')}) "
                   f"of {asset['asset_id']} {sensor} from history {start} to {end}", unit=result.get("unit"),
                   facts={"forecast": {"max_hi": _round(max_hi), "min_lo": _round(min_lo)}, "asset": asset,
                          "sensor": sensor})


def _detect(tb: Toolbox, asset_id: str, sensor: str, start: str, end: str, alpha: float | None) -> dict[str, Any]:
    return tb.all_pages("tsfm_detect_anomalies", {"asset": asset_id, "sensor": sensor, "start": start, "end": end,
                                                  "alpha": alpha}, "anomalies")


@skill("anomaly", answers=("anomaly_count", "has_anomaly", "first_anomaly_time"))
def _anomaly(part, req, tb, facts, catalog):
    asset, sensor = _asset(req, facts, part), _sensor(req)
    start, end, _ = _history_window(req, catalog)
    result = _detect(tb, asset["asset_id"], sensor, start, end, req.alpha)
    anomalies = result.get("anomalies") or []
    count = int(result.get("count") or len(anomalies))
    direction = None
    if anomalies:
        main = max(anomalies, key=lambda a: abs(a.get("score") or 0))
        direction = "increase" if main["value"] > main.get("upper", main["value"]) else "decrease"
    measure = part.options.get("measure", "yes_no")
    value: Any = {"count": count, "windows": int(result.get("window_count") or len(result.get("windows") or [])),
                  "first": anomalies[0]["ts"] if anomalies else "none", "yes_no": "yes" if count else "no"}[measure]
    key = {"count": "anomalous_readings", "windows": "anomaly_windows", "first": "first_anomaly",
           "yes_no": "anomalous"}[measure]
    new_facts = {"anomalous": count > 0, "direction": direction, "asset": asset, "sensor": sensor}
    outcome = Outcome(value, key, f"tsfm_detect_anomalies on {asset['asset_id']} {sensor} from {start} to {end}: "
                                  f"{count} anomalous readings in {result.get('window_count', 0)} windows", facts=new_facts)
    if direction and measure == "yes_no" and len(req.parts) > 1:
        outcome.value = {"anomalous": "yes", "direction": direction}
    return outcome


@skill("anomalous_sensors", answers=("anomalous_sensors",))
def _anomalous_sensors(part, req, tb, facts, catalog):
    asset = _asset(req, facts, part)
    start, end, _ = _history_window(req, catalog)
    sensors = req.sensors or catalog.sensor_names(asset["asset_id"])
    flagged = []
    for sensor in sensors:
        try:
            if int(_detect(tb, asset["asset_id"], sensor, start, end, req.alpha).get("count") or 0) > 0:
                flagged.append(sensor)
        except ToolFailed:
            continue
    return Outcome(sorted(flagged), "anomalous_sensors", f"tsfm_detect_anomalies on {len(sensors)} sensors of "
                                                          f"{asset['asset_id']} from {start} to {end}",
                   facts={"sensors": sorted(flagged), "asset": asset})
