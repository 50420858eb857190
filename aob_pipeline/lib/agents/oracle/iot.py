"""Oracle extractors of the IoT answer kinds (``aob_pipeline.lib.scenarios.answers.iot``), read off
observations of the ``iot_*`` tools."""

from __future__ import annotations

from typing import Any

from aob_pipeline.lib.agents.oracle._common import _foreach
from aob_pipeline.lib.agents.oracle.agent import ExtractionError, ObservationBook, _same, extractor


@extractor("site_ids")
def _site_ids(p, book):
    return sorted(s["site_id"] for s in book.one("iot_list_sites")["sites"])


@extractor("asset_ids")
def _asset_ids(p, book):
    return sorted(a["asset_id"] for a in book.one("iot_list_assets")["assets"])


@extractor("asset_count")
def _asset_count(p, book):
    return int(book.one("iot_list_assets")["count"])


@extractor("asset_attribute")
def _asset_attribute(p, book):
    record = book.one("iot_get_asset", asset=p["asset"])
    value = record[p["attribute"]]
    if p["attribute"] == "install_date":
        return str(value)[:10]
    if p["attribute"] == "capacity":
        return float(value)
    return str(value)


def _sensor_rows(book: ObservationBook, asset: str) -> list[dict[str, Any]]:
    return book.one("iot_list_sensors", asset=asset)["sensors"]


@extractor("sensor_names")
def _sensor_names(p, book):
    rows = _sensor_rows(book, p["asset"])
    if p.get("calculated") is not None:
        rows = [r for r in rows if bool(r["calculated"]) == bool(p["calculated"])]
    return sorted(r["sensor"] for r in rows)


@extractor("sensor_count")
def _sensor_count(p, book):
    return len(_sensor_rows(book, p["asset"]))


@extractor("sensor_unit")
def _sensor_unit(p, book):
    meta = book.matching("fmsr_sensor_metadata", asset=p["asset"], sensor=p["sensor"])
    if meta:
        return meta[-1].result["unit"]
    for row in _sensor_rows(book, p["asset"]):
        if _same(row["sensor"], p["sensor"]):
            return row["unit"]
    raise ExtractionError(f"sensor {p['sensor']!r} is not among the listed sensors")


def _history(book: ObservationBook, p: dict[str, Any], sensor: str | None = None, **extra: Any) -> dict[str, Any]:
    return book.one("iot_sensor_history", asset=p.get("asset"), sensor=sensor or p.get("sensor"),
                    start=p.get("start"), end=p.get("end"), **extra)


@extractor("telemetry_stat")
def _telemetry_stat(p, book):
    summary = _history(book, p)["summary"]
    return int(summary["count"]) if p["stat"] == "count" else float(summary[p["stat"]])


@extractor("daily_means")
def _daily_means(p, book):
    return [float(r["value"]) for r in _history(book, p, resample="daily")["rows"]]


@extractor("peak_hour")
def _peak_hour(p, book):
    rows = _history(book, p, resample="hourly")["rows"]
    top = max(r["value"] for r in rows)
    return min(r["ts"] for r in rows if r["value"] == top)


def _raw_rows(book: ObservationBook, p: dict[str, Any], sensor: str | None = None) -> list[dict[str, Any]]:
    result = _history(book, p, sensor=sensor)
    if len(result["rows"]) != result["count"]:
        raise ExtractionError(f"only {len(result['rows'])} of {result['count']} readings were fetched")
    return result["rows"]


@extractor("extreme_reading_times")
def _extreme_reading_times(p, book):
    rows = _raw_rows(book, p)
    pick = max if p.get("extreme", "max") == "max" else min
    target = pick(r["value"] for r in rows)
    return sorted(r["ts"] for r in rows if r["value"] == target)


_COMPARE = {">": lambda v, t: v > t, ">=": lambda v, t: v >= t, "<": lambda v, t: v < t, "<=": lambda v, t: v <= t}


@extractor("readings_beyond")
def _readings_beyond(p, book):
    return sum(1 for r in _raw_rows(book, p) if _COMPARE[p["op"]](r["value"], float(p["threshold"])))


@extractor("running_hours")
def _running_hours(p, book):
    return sum(0.25 for r in _raw_rows(book, p, sensor=p.get("sensor", "Run Status")) if r["value"] >= 0.5)


@extractor("current_time")
def _current_time(p, book):
    return book.one("iot_current_time")["now"]


@extractor("mean_difference")
def _mean_difference(p, book):
    a = _history(book, p, sensor=p["sensor_a"])["summary"]["mean"]
    b = _history(book, p, sensor=p["sensor_b"])["summary"]["mean"]
    return float(a) - float(b)


def _means_by_asset(p: dict[str, Any], book: ObservationBook) -> dict[str, float]:
    out = {}
    for o in _foreach(book, "iot_sensor_history"):
        if o.ok and _same(o.args.get("sensor"), p["sensor"]):
            out[o.result["asset_id"]] = float(o.result["summary"]["mean"])
    if not out:
        raise ExtractionError("no per-asset sensor history was observed")
    return out


@extractor("asset_means")
def _asset_means(p, book):
    return dict(sorted(_means_by_asset(p, book).items()))


@extractor("extreme_asset_by_mean")
def _extreme_asset_by_mean(p, book):
    means = {k: round(v, 4) for k, v in _means_by_asset(p, book).items()}
    target = (max if p.get("extreme", "max") == "max" else min)(means.values())
    return sorted(k for k, v in means.items() if v == target)
