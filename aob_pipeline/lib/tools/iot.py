"""IoT tools: sites, assets, sensors, sensor history over a window, and the world's current time.

Sensor history never dumps a long series: it returns summary statistics over the whole window and one
page of rows, optionally resampled to hourly or daily means.
"""

from __future__ import annotations

from typing import Any

from aob_pipeline.lib.tools._common import (
    ASSET_SCHEMA,
    DEFAULT_PAGE_SIZE,
    EQUIPMENT_CLASSES,
    PAGE_SCHEMA,
    PAGE_SIZE_SCHEMA,
    asset_sensors,
    assets_frame,
    empty_window_error,
    fmt_ts,
    object_schema,
    page_slice,
    parse_window,
    plain,
    records,
    resolve_asset,
    resolve_class,
    resolve_sensor,
    resolve_site,
    rounded,
    sites_frame,
    timestamp_schema,
    window_sql,
    world_now,
)
from aob_pipeline.lib.tools.base import ToolContext, ToolError, ToolSpec

RESAMPLE_BUCKETS = {"hourly": "hour", "daily": "day"}


def list_sites(ctx: ToolContext) -> dict[str, Any]:
    sites = sites_frame(ctx)
    counts = ctx.query("SELECT site_id, count(*) AS assets FROM assets GROUP BY site_id")
    per_site = dict(zip(counts["site_id"], counts["assets"]))
    out = []
    for row in records(sites):
        out.append({
            "site_id": row["site_id"],
            "name": row["name"],
            "city": row.get("city"),
            "timezone": row.get("timezone"),
            "asset_count": int(per_site.get(row["site_id"], 0)),
        })
    return {"count": len(out), "sites": out}


def list_assets(ctx: ToolContext, site_id: str | None = None, equipment_class: str | None = None) -> dict[str, Any]:
    df = assets_frame(ctx)
    filters: dict[str, Any] = {}
    if site_id is not None:
        site = resolve_site(ctx, site_id)["site_id"]
        df = df[df["site_id"] == site]
        filters["site_id"] = site
    if equipment_class is not None:
        cls = resolve_class(equipment_class, EQUIPMENT_CLASSES)
        df = df[df["equipment_class"] == cls]
        filters["equipment_class"] = cls
    assets = records(df, ["asset_id", "name", "equipment_class", "site_id"])
    return {"filters": filters, "count": len(assets), "assets": assets}


def get_asset(ctx: ToolContext, asset: str) -> dict[str, Any]:
    record = resolve_asset(ctx, asset)
    site = sites_frame(ctx)
    site_row = site[site["site_id"] == record["site_id"]]
    rng = ctx.query(
        "SELECT min(ts) AS first_ts, max(ts) AS last_ts, count(*) AS readings FROM telemetry WHERE asset_id = ?",
        [record["asset_id"]],
    ).iloc[0]
    wo = ctx.query(
        "SELECT count(*) AS n, max(finished_at) AS last FROM work_orders WHERE asset_id = ?", [record["asset_id"]]
    ).iloc[0]
    out = dict(record)
    if out.get("install_date"):
        out["install_date"] = out["install_date"][:10]
    out["site_name"] = plain(site_row["name"].iloc[0]) if len(site_row) else None
    out["sensor_count"] = len(asset_sensors(ctx, record["asset_id"]))
    out["telemetry"] = {
        "first_ts": fmt_ts(rng["first_ts"]),
        "last_ts": fmt_ts(rng["last_ts"]),
        "readings": int(rng["readings"]),
    }
    out["work_orders"] = {"count": int(wo["n"]), "last_finished_at": fmt_ts(wo["last"])}
    return out


def list_sensors(ctx: ToolContext, asset: str) -> dict[str, Any]:
    record = resolve_asset(ctx, asset)
    df = asset_sensors(ctx, record["asset_id"])
    sensors = records(df, ["sensor", "unit", "calculated", "formula", "component", "measurement", "description"])
    return {
        "asset_id": record["asset_id"],
        "name": record["name"],
        "equipment_class": record["equipment_class"],
        "count": len(sensors),
        "sensors": sensors,
    }


def sensor_history(
    ctx: ToolContext,
    asset: str,
    sensor: str,
    start: str,
    end: str,
    resample: str = "raw",
    page: int = 1,
    page_size: int = DEFAULT_PAGE_SIZE,
) -> dict[str, Any]:
    record = resolve_asset(ctx, asset)
    sensor_row = resolve_sensor(ctx, record, sensor)
    s, e = parse_window(start, end)
    if s is None or e is None:  # the schema requires both; keep the guarantee local too
        raise ToolError("invalid_arguments", "arguments 'start' and 'end' are both required")
    name = sensor_row["sensor"]
    cond, params = window_sql("ts", s, e)
    base_params = [record["asset_id"], name, *params]
    where = f"asset_id = ? AND sensor = ? AND {cond}"
    stats = ctx.query(
        f"""SELECT count(*) AS n, min(value) AS min, max(value) AS max, avg(value) AS mean,
                   stddev_samp(value) AS std, min(ts) AS first_ts, max(ts) AS last_ts,
                   arg_min(value, ts) AS first_value, arg_max(value, ts) AS last_value
            FROM telemetry WHERE {where}""",
        base_params,
    ).iloc[0]
    readings = int(stats["n"])
    if readings == 0:
        raise empty_window_error(ctx, record, name, s, e)
    summary = {
        "count": readings,
        "min": rounded(stats["min"]),
        "max": rounded(stats["max"]),
        "mean": rounded(stats["mean"]),
        "std": rounded(stats["std"]),
        "first_ts": fmt_ts(stats["first_ts"]),
        "last_ts": fmt_ts(stats["last_ts"]),
        "first_value": rounded(stats["first_value"]),
        "last_value": rounded(stats["last_value"]),
    }
    if resample == "raw":
        count = readings
        page, page_size, pages, offset = page_slice(count, page, page_size)
        rows = records(ctx.query(
            f"SELECT ts, value FROM telemetry WHERE {where} ORDER BY ts LIMIT ? OFFSET ?",
            [*base_params, page_size, offset],
        ))
    elif resample in RESAMPLE_BUCKETS:
        unit = RESAMPLE_BUCKETS[resample]
        count = int(ctx.query(
            f"SELECT count(DISTINCT date_trunc('{unit}', ts)) AS n FROM telemetry WHERE {where}", base_params
        )["n"].iloc[0])
        page, page_size, pages, offset = page_slice(count, page, page_size)
        df = ctx.query(
            f"""SELECT date_trunc('{unit}', ts) AS ts, avg(value) AS value, min(value) AS min, max(value) AS max,
                       count(*) AS readings
                FROM telemetry WHERE {where} GROUP BY 1 ORDER BY 1 LIMIT ? OFFSET ?""",
            [*base_params, page_size, offset],
        )
        rows = [
            {"ts": fmt_ts(r["ts"]), "value": rounded(r["value"]), "min": rounded(r["min"]),
             "max": rounded(r["max"]), "readings": int(r["readings"])}
            for r in df.to_dict("records")
        ]
    else:  # the schema's enum stops this first
        raise ToolError("invalid_arguments", f"argument 'resample': unknown value {resample!r}",
                        "use raw, hourly or daily")
    return {
        "asset_id": record["asset_id"],
        "name": record["name"],
        "sensor": name,
        "unit": sensor_row["unit"],
        "start": fmt_ts(s),
        "end": fmt_ts(e),
        "resample": resample,
        "count": count,
        "summary": summary,
        "page": page,
        "page_size": page_size,
        "pages": pages,
        "rows": rows,
    }


def current_time(ctx: ToolContext) -> dict[str, Any]:
    meta = ctx.query("SELECT key, value FROM world_meta")
    values = dict(zip(meta["key"], meta["value"]))
    out: dict[str, Any] = {"now": fmt_ts(world_now(ctx))}
    for key in ("telemetry_start", "telemetry_end"):
        if key in values:
            out[key] = fmt_ts(values[key]) or values[key]
    return out


TOOLS: list[ToolSpec] = [
    ToolSpec(
        name="iot_list_sites",
        group="iot",
        description=(
            "List the sites (campuses) that hold assets. Returns {count, sites:[{site_id, name, city, timezone, "
            "asset_count}]}. Use it first when a request names a site or you need a site_id for iot_list_assets."
        ),
        parameters=object_schema({}),
        func=list_sites,
    ),
    ToolSpec(
        name="iot_list_assets",
        group="iot",
        description=(
            "List assets (chillers and air-handling units), optionally only those of one site and/or one class. "
            "Returns {filters, count, assets:[{asset_id, name, equipment_class, site_id}]}. Use it to find an "
            "asset's id or to answer 'which chillers are at site X'."
        ),
        parameters=object_schema({
            "site_id": {"type": "string", "description": "Site id or name, e.g. 'MAIN' (case-insensitive)."},
            "equipment_class": {"type": "string", "description": "Asset class: 'Chiller' or 'AHU' (case-insensitive)."},
        }),
        func=list_assets,
    ),
    ToolSpec(
        name="iot_get_asset",
        group="iot",
        description=(
            "Get one asset's record: asset_id, name, equipment_class, site_id, site_name, install_date, "
            "manufacturer, model, capacity with capacity_unit (tons for chillers, CFM for AHUs), sensor_count, "
            "the span of its telemetry {first_ts, last_ts, readings} and its work orders {count, last_finished_at}. "
            "Accepts the asset's id or name."
        ),
        parameters=object_schema({"asset": ASSET_SCHEMA}, ["asset"]),
        func=get_asset,
    ),
    ToolSpec(
        name="iot_list_sensors",
        group="iot",
        description=(
            "List the sensors (meters) of an asset. Returns {asset_id, name, equipment_class, count, "
            "sensors:[{sensor, unit, calculated, formula, component, measurement, description}]}; calculated "
            "sensors carry their formula in terms of other sensors. Call it before iot_sensor_history to get "
            "exact sensor names."
        ),
        parameters=object_schema({"asset": ASSET_SCHEMA}, ["asset"]),
        func=list_sensors,
    ),
    ToolSpec(
        name="iot_sensor_history",
        group="iot",
        description=(
            "Readings of one sensor of one asset in the half-open window [start, end) (15-minute cadence, "
            "site-local time). Returns {asset_id, name, sensor, unit, start, end, resample, count, summary:{count, "
            "min, max, mean, std, first_ts, last_ts, first_value, last_value}, page, page_size, pages, rows}. "
            "summary is computed over every raw reading in the window (values in the sensor's unit, rounded to 4 "
            "decimals); count is the number of rows over all pages. resample='raw' gives rows [{ts, value}]; "
            "'hourly' or 'daily' give one row per hour or day [{ts (bucket start), value (mean), min, max, "
            "readings}]. Rows are paged (page_size at most 500): use the summary for questions about the whole "
            "window and page only when individual readings matter. Errors: unknown_asset, unknown_sensor, "
            "start_after_end, empty_window (the hint gives the sensor's data range)."
        ),
        parameters=object_schema({
            "asset": ASSET_SCHEMA,
            "sensor": {"type": "string", "minLength": 1,
                       "description": "Sensor name as listed by iot_list_sensors, e.g. 'Supply Temperature' "
                                      "(case-insensitive)."},
            "start": timestamp_schema("Window start (inclusive)"),
            "end": timestamp_schema("Window end (exclusive)"),
            "resample": {"type": "string", "enum": ["raw", "hourly", "daily"],
                         "description": "raw readings (default), or hourly / daily means."},
            "page": PAGE_SCHEMA,
            "page_size": PAGE_SIZE_SCHEMA,
        }, ["asset", "sensor", "start", "end"]),
        func=sensor_history,
    ),
    ToolSpec(
        name="iot_current_time",
        group="iot",
        description=(
            "The current date and time in the world ('now'), plus the span of recorded telemetry "
            "{now, telemetry_start, telemetry_end}. Use it to turn 'last week' or 'yesterday' into timestamps."
        ),
        parameters=object_schema({}),
        func=current_time,
    ),
]
