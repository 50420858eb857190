"""Heuristic skills of the IoT intents: sites, assets, sensors and telemetry (``iot_*`` tools)."""

from __future__ import annotations

import statistics
from typing import Any

from aob_pipeline.lib.agents.heuristic.catalog import Catalog
from aob_pipeline.lib.agents.heuristic.language import parse_date
from aob_pipeline.lib.agents.heuristic.skills._common import (
    PAGE_SIZE,
    CannotAnswer,
    Outcome,
    Toolbox,
    ToolFailed,
    _asset,
    _round,
    _sensor,
    _window,
    _words,
    skill,
)
from aob_pipeline.lib.agents.heuristic.understanding import Part, Request


@skill("list_sites", answers=("site_ids",))
def _list_sites(part, req, tb, facts, catalog):
    result = tb.call("iot_list_sites", {})
    ids = sorted(s["site_id"] for s in result["sites"])
    return Outcome(ids, "sites", f"iot_list_sites lists {len(ids)} sites")


def _asset_filters(req: Request) -> dict[str, Any]:
    cls = next((c for c in req.classes if c != "HVAC"), None)
    return {"site_id": req.sites[0] if req.sites else None, "equipment_class": cls}


@skill("list_assets", answers=("asset_ids",))
def _list_assets(part, req, tb, facts, catalog):
    filters = _asset_filters(req)
    result = tb.call("iot_list_assets", filters)
    ids = sorted(a["asset_id"] for a in result["assets"])
    where = ", ".join(f"{k}={v}" for k, v in filters.items() if v) or "no filter"
    return Outcome(ids, "assets", f"iot_list_assets ({where}) returns {len(ids)} assets")


@skill("count_assets", answers=("asset_count",))
def _count_assets(part, req, tb, facts, catalog):
    filters = _asset_filters(req)
    result = tb.call("iot_list_assets", filters)
    where = ", ".join(f"{k}={v}" for k, v in filters.items() if v) or "no filter"
    return Outcome(int(result["count"]), "asset_count", f"iot_list_assets ({where}) counts the assets")


@skill("asset_attribute", answers=("asset_attribute",))
def _asset_attribute(part, req, tb, facts, catalog):
    asset = _asset(req, facts, part)
    result = tb.call("iot_get_asset", {"asset": asset["asset_id"]})
    attribute = part.options.get("attribute", "model")
    value = result.get(attribute)
    unit = result.get("capacity_unit") if attribute == "capacity" else None
    return Outcome(value, attribute, f"iot_get_asset for {asset['asset_id']} gives its {attribute.replace('_', ' ')}",
                   unit=unit)


@skill("list_sensors", answers=("sensor_names",))
def _list_sensors(part, req, tb, facts, catalog):
    asset = _asset(req, facts, part)
    result = tb.call("iot_list_sensors", {"asset": asset["asset_id"]})
    rows = result["sensors"]
    calculated = part.options.get("calculated")
    if calculated is not None:
        rows = [s for s in rows if bool(s.get("calculated")) == calculated]
    names = sorted(s["sensor"] for s in rows)
    kind = {True: "calculated ", False: "measured "}.get(calculated, "")
    return Outcome(names, "sensors", f"iot_list_sensors for {asset['asset_id']} lists {len(names)} {kind}sensors",
                   facts={"sensors": names, "asset": asset})


@skill("count_sensors", answers=("sensor_count",))
def _count_sensors(part, req, tb, facts, catalog):
    asset = _asset(req, facts, part)
    result = tb.call("iot_list_sensors", {"asset": asset["asset_id"]})
    return Outcome(int(result["count"]), "sensor_count", f"iot_list_sensors for {asset['asset_id']} counts its sensors")


@skill("sensor_unit", answers=("sensor_unit",))
def _sensor_unit(part, req, tb, facts, catalog):
    asset, sensor = _asset(req, facts, part), _sensor(req)
    result = tb.call("iot_list_sensors", {"asset": asset["asset_id"]})
    for s in result["sensors"]:
        if s["sensor"].lower() == sensor.lower():
            return Outcome(s["unit"], "unit", f"iot_list_sensors for {asset['asset_id']}: {sensor} is in {s['unit']}")
    raise CannotAnswer(f"{asset['name']} has no sensor {sensor!r}")


@skill("current_time", answers=("current_time",))
def _current_time(part, req, tb, facts, catalog):
    result = tb.call("iot_current_time", {})
    return Outcome(result["now"], "now", "iot_current_time gives the monitoring system's clock")


def _history(tb: Toolbox, asset_id: str, sensor: str, start: str | None, end: str | None, resample: str = "raw",
             rows: bool = False) -> dict[str, Any]:
    args = {"asset": asset_id, "sensor": sensor, "start": start, "end": end, "resample": resample}
    if rows:
        return tb.all_pages("iot_sensor_history", args, "rows")
    return tb.call("iot_sensor_history", {**args, "page_size": PAGE_SIZE})


@skill("telemetry_stat", answers=("telemetry_stat",))
def _telemetry_stat(part, req, tb, facts, catalog):
    asset = _asset(req, facts, part)
    start, end, words = _window(req, catalog)
    stat = part.options.get("stat", "mean")
    key = {"last_value": "last_value", "first_value": "first_value"}.get(stat, stat)
    if "sensors" in part.uses and facts.get("sensors"):
        out: dict[str, Any] = {}
        for sensor in facts["sensors"]:
            try:
                summary = _history(tb, asset["asset_id"], sensor, start, end)["summary"]
            except ToolFailed:
                continue
            out[sensor] = _round(summary.get(key))
        return Outcome(out, f"{stat}_by_sensor",
                       f"iot_sensor_history of {len(out)} sensors of {asset['asset_id']} over {start} to {end} ({words})")
    sensor = _sensor(req)
    result = _history(tb, asset["asset_id"], sensor, start, end)
    value = result["summary"].get(key)
    if stat == "count":
        value = int(value or 0)
    return Outcome(_round(value), f"{sensor.lower().replace(' ', '_')}_{stat}",
                   f"iot_sensor_history of {asset['asset_id']} {sensor} from {start} to {end} ({words}): "
                   f"{result['summary'].get('count')} readings", unit=result.get("unit"),
                   facts={"asset": asset, "sensor": sensor})


@skill("daily_means", answers=("daily_means",))
def _daily_means(part, req, tb, facts, catalog):
    asset, sensor = _asset(req, facts, part), _sensor(req)
    start, end, _ = _window(req, catalog, default_days=2)
    result = _history(tb, asset["asset_id"], sensor, start, end, "daily", rows=True)
    values = [_round(r["value"]) for r in result["rows"]]
    return Outcome(values, "daily_means", f"iot_sensor_history (daily) of {asset['asset_id']} {sensor} from {start} "
                                          f"to {end}: {len(values)} days", unit=result.get("unit"))


@skill("peak_hour", answers=("peak_hour",))
def _peak_hour(part, req, tb, facts, catalog):
    asset, sensor = _asset(req, facts, part), _sensor(req)
    start, end, _ = _window(req, catalog)
    result = _history(tb, asset["asset_id"], sensor, start, end, "hourly", rows=True)
    rows = [r for r in result["rows"] if r.get("value") is not None]
    if not rows:
        raise CannotAnswer("no hourly data in the window")
    pick = max if part.options.get("extreme") != "min" else min
    best = pick(rows, key=lambda r: r["value"])
    return Outcome(best["ts"], "hour", f"iot_sensor_history (hourly) of {asset['asset_id']} {sensor} from {start} to {end}")


@skill("extreme_times", answers=("extreme_reading_times",))
def _extreme_times(part, req, tb, facts, catalog):
    asset, sensor = _asset(req, facts, part), _sensor(req)
    start, end, _ = _window(req, catalog)
    rows = _history(tb, asset["asset_id"], sensor, start, end, rows=True)["rows"]
    if not rows:
        raise CannotAnswer("no readings in the window")
    pick = max if part.options.get("extreme") != "min" else min
    target = pick(r["value"] for r in rows)
    return Outcome([r["ts"] for r in rows if r["value"] == target], "times",
                   f"iot_sensor_history (raw) of {asset['asset_id']} {sensor} from {start} to {end}: {len(rows)} readings")


@skill("readings_beyond", answers=("readings_beyond",))
def _readings_beyond(part, req, tb, facts, catalog):
    asset, sensor = _asset(req, facts, part), _sensor(req)
    start, end, _ = _window(req, catalog)
    if req.threshold is None:
        raise CannotAnswer("no threshold given")
    op, limit = req.threshold
    rows = _history(tb, asset["asset_id"], sensor, start, end, rows=True)["rows"]
    test = {">": lambda v: v > limit, ">=": lambda v: v >= limit, "<": lambda v: v < limit, "<=": lambda v: v <= limit}[op]
    n = sum(1 for r in rows if r["value"] is not None and test(r["value"]))
    return Outcome(n, "readings", f"iot_sensor_history (raw) of {asset['asset_id']} {sensor} from {start} to {end}: "
                                  f"{len(rows)} readings checked against {op} {limit:g}")


def _status_sensor(part: Part, req: Request, catalog: Catalog, asset: dict[str, Any]) -> str:
    names = catalog.sensor_names(asset["asset_id"])
    status = [n for n in names if "status" in n.lower()]
    if req.sensors and "status" in req.sensors[0].lower():
        return req.sensors[0]
    if not status:
        raise CannotAnswer(f"{asset['name']} has no status sensor to count running hours from")
    clause = _words(part.clause)
    status.sort(key=lambda n: (-len(_words(n) & clause), "run" not in n.lower(), n))
    return status[0]


@skill("running_hours", answers=("running_hours",))
def _running_hours(part, req, tb, facts, catalog):
    asset = _asset(req, facts, part)
    sensor = _status_sensor(part, req, catalog, asset)
    start, end, _ = _window(req, catalog)
    rows = _history(tb, asset["asset_id"], sensor, start, end, rows=True)["rows"]
    stamps = [parse_date(r["ts"]) for r in rows]
    gaps = [(b - a).total_seconds() / 3600 for a, b in zip(stamps, stamps[1:]) if a and b]
    step = statistics.median(gaps) if gaps else 0.25
    step = round(step * 4) / 4 or 0.25
    hours = sum(1 for r in rows if (r["value"] or 0) >= 0.5) * step
    return Outcome(_round(hours, 3), "hours", f"iot_sensor_history of {asset['asset_id']} {sensor} from {start} to "
                                              f"{end}: {len(rows)} readings of {step:g} h", unit="hours")


@skill("mean_difference", answers=("mean_difference",))
def _mean_difference(part, req, tb, facts, catalog):
    asset = _asset(req, facts, part)
    a, b = _sensor(req, 0), _sensor(req, 1)
    start, end, _ = _window(req, catalog)
    ma = _history(tb, asset["asset_id"], a, start, end)["summary"]["mean"]
    mb = _history(tb, asset["asset_id"], b, start, end)["summary"]["mean"]
    return Outcome(_round(ma - mb), "difference", f"iot_sensor_history means of {a} and {b} on {asset['asset_id']} "
                                                  f"from {start} to {end}")


def _means_by_asset(req: Request, tb: Toolbox, catalog: Catalog) -> tuple[dict[str, float], str, str | None, str | None]:
    sensor = _sensor(req)
    start, end, _ = _window(req, catalog)
    assets = tb.call("iot_list_assets", _asset_filters(req))["assets"]
    means: dict[str, float] = {}
    for a in assets:
        try:
            summary = _history(tb, a["asset_id"], sensor, start, end)["summary"]
        except ToolFailed:
            continue
        if summary.get("mean") is not None:
            means[a["asset_id"]] = _round(summary["mean"])
    if not means:
        raise CannotAnswer(f"no asset in scope has {sensor} readings in the window")
    return means, sensor, start, end


@skill("site_extreme", answers=("extreme_asset_by_mean",))
def _site_extreme(part, req, tb, facts, catalog):
    means, sensor, start, end = _means_by_asset(req, tb, catalog)
    pick = max if part.options.get("extreme") != "min" else min
    best = pick(means.values())
    ids = sorted(k for k, v in means.items() if v == best)
    record = catalog.asset(ids[0])
    return Outcome(ids, "asset", f"mean {sensor} of {len(means)} assets from {start} to {end} (iot_sensor_history)",
                   facts={"asset": record} if record else {})


@skill("site_means", answers=("asset_means",))
def _site_means(part, req, tb, facts, catalog):
    means, sensor, start, end = _means_by_asset(req, tb, catalog)
    return Outcome(means, "means", f"mean {sensor} of {len(means)} assets from {start} to {end} (iot_sensor_history)")
