"""Oracle extractors of the TSFM answer kinds (``aob_pipeline.lib.scenarios.answers.tsfm``), read off
observations of the ``tsfm_*`` tools."""

from __future__ import annotations

from typing import Any

from aob_pipeline.lib.agents.oracle._common import _foreach
from aob_pipeline.lib.agents.oracle.agent import ExtractionError, ObservationBook, extractor


@extractor("tsfm_capability")
def _tsfm_capability(p, book):
    info = book.one("tsfm_list_models")
    item = p["item"]
    if item == "models":
        return sorted(m["name"] for m in info["models"])
    if item == "default_model":
        defaults = [m["name"] for m in info["models"] if m.get("default")]
        if len(defaults) != 1:
            raise ExtractionError(f"{len(defaults)} default models listed")
        return defaults[0]
    return int(info[item])


@extractor("tsfm_model_recommendation")
def _tsfm_model_recommendation(p, book):
    models = book.one("tsfm_list_models")["models"]
    if p["purpose"] == "baseline":
        pick = [m for m in models if "baseline" in m["description"].lower()]
    else:
        seasonal = [m for m in models if "daily cycle" in m["description"].lower() and "baseline" not in m["description"].lower()]
        pick = [m for m in seasonal if "trend" in m["description"].lower()] or seasonal
    if not pick:
        raise ExtractionError("no listed model fits the purpose")
    m = pick[0]
    return f"I would use {m['name']}: {m['description']}"


def _forecast_result(book: ObservationBook, p: dict[str, Any]) -> dict[str, Any]:
    return book.one("tsfm_forecast", asset=p.get("asset"), sensor=p.get("sensor"), start=p.get("start"), end=p.get("end"))


@extractor("forecast_stat")
def _forecast_stat(p, book):
    fc = _forecast_result(book, p)
    stat = p.get("stat", "mean")
    if stat == "max_hi":
        return max(float(r["hi"]) for r in fc["forecast"])
    if stat == "min_lo":
        return min(float(r["lo"]) for r in fc["forecast"])
    return float(fc["summary"][stat])


@extractor("forecast_horizon_end")
def _forecast_horizon_end(p, book):
    return _forecast_result(book, p)["summary"]["last_ts"]


def _detection(book: ObservationBook, p: dict[str, Any], sensor: str | None = None) -> dict[str, Any]:
    return book.one("tsfm_detect_anomalies", asset=p.get("asset"), sensor=sensor or p.get("sensor"),
                    start=p.get("start"), end=p.get("end"))


@extractor("anomaly_count")
def _anomaly_count(p, book):
    found = _detection(book, p)
    return int(found["window_count"] if p.get("unit", "points") == "windows" else found["count"])


@extractor("has_anomaly")
def _has_anomaly(p, book):
    return "yes" if int(_detection(book, p)["count"]) > 0 else "no"


@extractor("first_anomaly_time")
def _first_anomaly_time(p, book):
    found = _detection(book, p)
    if not found["count"]:
        return "none"
    if found.get("page", 1) != 1:
        raise ExtractionError("the first page of anomalies was not observed")
    return found["anomalies"][0]["ts"]


THIN_DATA_ERRORS = ("not_enough_data", "empty_window")


@extractor("anomalous_sensors")
def _anomalous_sensors(p, book):
    observed = _foreach(book, "tsfm_detect_anomalies") or book.matching("tsfm_detect_anomalies", ok=None)
    if not observed:
        raise ExtractionError("no anomaly detection was observed")
    out = set()
    for o in observed:
        if o.ok:
            if int(o.result["count"]) > 0:
                out.add(o.result["sensor"])
        elif (o.error or {}).get("code") not in THIN_DATA_ERRORS:
            raise ExtractionError(f"anomaly detection on {o.args.get('sensor')!r} failed: {o.error}")
    return sorted(out)
