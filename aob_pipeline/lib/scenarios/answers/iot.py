"""IoT answer kinds: sites, assets, sensors and telemetry (mirroring ``aob_pipeline.lib.tools.iot``)."""

from __future__ import annotations

from typing import Any

import duckdb
import pandas as pd

from aob_pipeline.lib.scenarios.answers._common import (
    Answer,
    AnswerError,
    _asset,
    _asset_aliases,
    _check_choice,
    _df,
    _iso,
    _readings,
    _sensor,
    answer_kind,
    world_now,
)


@answer_kind("iot", reads=["sites"], formats=["id_set"])
def site_ids(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Every site id."""
    return sorted(_df(con, "SELECT site_id FROM sites")["site_id"])


@answer_kind("iot", reads=["assets", "sites"], formats=["id_set"])
def asset_ids(con: duckdb.DuckDBPyConnection, site_id: str | None = None, equipment_class: str | None = None) -> Answer:
    """Asset ids, optionally of one site (id or name) and/or one class (Chiller, AHU)."""
    conds, params = ["TRUE"], []
    if site_id is not None:
        site = _df(con, "SELECT site_id FROM sites WHERE lower(site_id) = lower(?) OR lower(name) = lower(?)",
                   [site_id, site_id])
        if len(site) != 1:
            raise AnswerError(f"no site {site_id!r}")
        conds.append("site_id = ?")
        params.append(site["site_id"].iloc[0])
    if equipment_class is not None:
        conds.append("lower(equipment_class) = lower(?)")
        params.append(equipment_class)
    ids = sorted(_df(con, f"SELECT asset_id FROM assets WHERE {' AND '.join(conds)}", params)["asset_id"])
    return Answer(ids, _asset_aliases(con, ids))


@answer_kind("iot", reads=["assets", "sites"], formats=["integer"])
def asset_count(con: duckdb.DuckDBPyConnection, site_id: str | None = None, equipment_class: str | None = None) -> int:
    """How many assets (optionally of one site and/or class)."""
    return len(asset_ids(con, site_id, equipment_class).value)


ASSET_ATTRIBUTES = ("site_id", "install_date", "manufacturer", "model", "capacity", "capacity_unit", "equipment_class")


@answer_kind("iot", reads=["assets"], formats=["label", "number"])
def asset_attribute(con: duckdb.DuckDBPyConnection, asset: str, attribute: str) -> Any:
    """One attribute of an asset's record (dates as YYYY-MM-DD, capacity as a number)."""
    _check_choice("attribute", attribute, ASSET_ATTRIBUTES)
    value = _asset(con, asset)[attribute]
    if attribute == "install_date":
        return pd.Timestamp(value).strftime("%Y-%m-%d")
    if attribute == "capacity":
        return float(value)
    return str(value)


@answer_kind("iot", reads=["assets", "sensors"], formats=["id_set"])
def sensor_names(con: duckdb.DuckDBPyConnection, asset: str, calculated: bool | None = None) -> list[str]:
    """The sensor names of an asset (optionally only calculated or only measured ones)."""
    a = _asset(con, asset)
    sql = "SELECT sensor FROM sensors WHERE asset_id = ?"
    params: list[Any] = [a["asset_id"]]
    if calculated is not None:
        sql += " AND calculated = ?"
        params.append(bool(calculated))
    return sorted(_df(con, sql, params)["sensor"])


@answer_kind("iot", reads=["assets", "sensors"], formats=["integer"])
def sensor_count(con: duckdb.DuckDBPyConnection, asset: str) -> int:
    """How many sensors an asset carries."""
    return len(sensor_names(con, asset))


@answer_kind("iot", reads=["assets", "sensors"], formats=["label"])
def sensor_unit(con: duckdb.DuckDBPyConnection, asset: str, sensor: str) -> str:
    """The engineering unit of one sensor of an asset."""
    return str(_sensor(con, _asset(con, asset)["asset_id"], sensor)["unit"])


TELEMETRY_STATS = ("mean", "min", "max", "std", "count", "first_value", "last_value")


@answer_kind("iot", reads=["assets", "sensors", "telemetry"], formats=["number", "integer"], tolerance={"abs": 0.001})
def telemetry_stat(con: duckdb.DuckDBPyConnection, asset: str, sensor: str, start: str, end: str, stat: str) -> float | int:
    """One statistic of a sensor's raw readings in [start, end): mean, min, max, std (sample), count,
    first_value or last_value."""
    _check_choice("stat", stat, TELEMETRY_STATS)
    _, _, df = _readings(con, asset, sensor, start, end)
    v = df["value"]
    if stat == "count":
        return int(len(v))
    if stat == "first_value":
        return float(v.iloc[0])
    if stat == "last_value":
        return float(v.iloc[-1])
    if stat == "std":
        if len(v) < 2:
            raise AnswerError("a standard deviation needs two readings")
        return float(v.std(ddof=1))
    return float(getattr(v, stat)())


@answer_kind("iot", reads=["assets", "sensors", "telemetry"], formats=["list"], tolerance={"abs": 0.001})
def daily_means(con: duckdb.DuckDBPyConnection, asset: str, sensor: str, start: str, end: str) -> list[float]:
    """Mean of a sensor per calendar day in [start, end), in date order (days without readings left out)."""
    _, _, df = _readings(con, asset, sensor, start, end)
    return [float(x) for x in df.groupby(df["ts"].dt.floor("D"))["value"].mean().sort_index()]


@answer_kind("iot", reads=["assets", "sensors", "telemetry"], formats=["label"])
def peak_hour(con: duckdb.DuckDBPyConnection, asset: str, sensor: str, start: str, end: str) -> str | None:
    """Start of the clock hour with the highest mean reading in [start, end)."""
    _, _, df = _readings(con, asset, sensor, start, end)
    hourly = df.groupby(df["ts"].dt.floor("h"))["value"].mean().round(4)
    best = hourly[hourly == hourly.max()].index.min()
    return _iso(best)


@answer_kind("iot", reads=["assets", "sensors", "telemetry"], formats=["id_set"])
def extreme_reading_times(con: duckdb.DuckDBPyConnection, asset: str, sensor: str, start: str, end: str, extreme: str = "max") -> list[str]:
    """Timestamps of the highest (or lowest) raw reading in [start, end); several when tied."""
    _check_choice("extreme", extreme, ("max", "min"))
    _, _, df = _readings(con, asset, sensor, start, end)
    target = df["value"].max() if extreme == "max" else df["value"].min()
    return sorted(s for t in df.loc[df["value"] == target, "ts"] if (s := _iso(t)) is not None)  # ts is NOT NULL


_OPS = {">": lambda s, t: s > t, ">=": lambda s, t: s >= t, "<": lambda s, t: s < t, "<=": lambda s, t: s <= t}


@answer_kind("iot", reads=["assets", "sensors", "telemetry"], formats=["integer"])
def readings_beyond(con: duckdb.DuckDBPyConnection, asset: str, sensor: str, start: str, end: str, op: str, threshold: float) -> int:
    """How many raw readings in [start, end) satisfy ``value OP threshold`` (OP one of > >= < <=)."""
    _check_choice("op", op, tuple(_OPS))
    _, _, df = _readings(con, asset, sensor, start, end)
    return int(_OPS[op](df["value"], float(threshold)).sum())


@answer_kind("iot", reads=["assets", "sensors", "telemetry"], formats=["number"], tolerance={"abs": 0.001})
def running_hours(con: duckdb.DuckDBPyConnection, asset: str, start: str, end: str, sensor: str = "Run Status") -> float:
    """Hours the asset ran in [start, end): readings of its 0/1 status sensor (Run Status for chillers,
    Supply Fan Status for AHUs) equal to 1, each standing for 15 minutes."""
    _, _, df = _readings(con, asset, sensor, start, end)
    return float((df["value"] >= 0.5).sum() * 0.25)


@answer_kind("iot", reads=["world_meta"], formats=["label"])
def current_time(con: duckdb.DuckDBPyConnection) -> str | None:
    """The world's current time, ISO."""
    return _iso(world_now(con))


@answer_kind("iot", reads=["assets", "sensors", "telemetry"], formats=["number"], tolerance={"abs": 0.002})
def mean_difference(con: duckdb.DuckDBPyConnection, asset: str, sensor_a: str, sensor_b: str, start: str, end: str) -> float:
    """Mean of sensor_a minus mean of sensor_b over [start, end) (e.g. an approach temperature)."""
    _, _, a = _readings(con, asset, sensor_a, start, end)
    _, _, b = _readings(con, asset, sensor_b, start, end)
    return float(a["value"].mean() - b["value"].mean())


@answer_kind("iot", reads=["assets", "sites", "sensors", "telemetry"], formats=["json"], tolerance={"abs": 0.001})
def asset_means(con: duckdb.DuckDBPyConnection, sensor: str, start: str, end: str, site_id: str | None = None,
                equipment_class: str | None = None) -> dict[str, float]:
    """Mean of one sensor over [start, end) for each asset of a site/class, keyed by asset id."""
    out = {}
    for asset_id in asset_ids(con, site_id, equipment_class).value:
        _, _, df = _readings(con, asset_id, sensor, start, end)
        out[asset_id] = float(df["value"].mean())
    if not out:
        raise AnswerError("no asset matches")
    return out


@answer_kind("iot", reads=["assets", "sites", "sensors", "telemetry"], formats=["id_set"])
def extreme_asset_by_mean(con: duckdb.DuckDBPyConnection, sensor: str, start: str, end: str, site_id: str | None = None,
                          equipment_class: str | None = None, extreme: str = "max") -> Answer:
    """The asset(s) of a site/class whose mean of ``sensor`` over [start, end) is highest (or lowest)."""
    _check_choice("extreme", extreme, ("max", "min"))
    means = {k: round(v, 4) for k, v in asset_means(con, sensor, start, end, site_id, equipment_class).items()}
    target = max(means.values()) if extreme == "max" else min(means.values())
    ids = sorted(k for k, v in means.items() if v == target)
    return Answer(ids, _asset_aliases(con, ids))
