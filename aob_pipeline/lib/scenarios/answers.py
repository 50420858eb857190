"""Named answer functions: each computes a scenario's expected answer from the warehouse.

A scenario's ``answer: {function, params, format}`` names one function here. The function receives a
DuckDB connection to the full warehouse (ground truth included) and the scenario's rendered parameters,
and computes the answer with its own SQL or pandas, never through the agents' tools, so the oracle test
checks the tools against an independent computation. TSFM answers call ``aob_pipeline.lib.timeseries`` on the
same readings (the tools' numerics are that module; the answer compares within a tolerance).

Conventions shared by every function:
- ``asset`` is an asset id or name (exact, case-insensitive); ``sensor`` a sensor name of that asset.
- ``start``/``end`` bound a half-open window ``[start, end)`` (ISO timestamps or dates).
- "now" is the world's current time (``world_meta`` key ``now``); analytics ignore records after it.
- When the world cannot answer (unknown asset, no readings in the window) a function raises
  ``AnswerError``; the scenario is then marked unanswerable with that reason.

Each function is registered with ``@answer_function(reads=..., formats=..., tolerance=...)``: the world
tables it reads (the Dagster asset's upstream dependencies), the answer formats it can back and its
default tolerance for numbers.
"""

from __future__ import annotations

import inspect
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from aob_pipeline.lib.scenarios.model import AnswerSpec
from aob_pipeline.lib.settings import ASSETS_DATA


class AnswerError(ValueError):
    """The current world cannot answer the scenario (the reason says why)."""


class ThinDataError(AnswerError):
    """The window holds no readings, or too few for the analysis (the tools answer empty_window or
    not_enough_data in the same case)."""


@dataclass(frozen=True)
class Answer:
    """An expected answer with optional aliases (id -> names an agent may use instead, e.g. asset names)."""

    value: Any
    aliases: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class AnswerFunction:
    name: str
    func: Callable[..., Any]
    reads: tuple[str, ...]
    formats: tuple[str, ...]
    tolerance: dict[str, float] | None
    doc: str

    def parameters(self) -> dict[str, inspect.Parameter]:
        params = dict(inspect.signature(self.func).parameters)
        params.pop("con", None)
        return params


ANSWER_FUNCTIONS: dict[str, AnswerFunction] = {}


def answer_function(*, reads: Sequence[str], formats: Sequence[str], tolerance: dict[str, float] | None = None):
    """Register an answer function under its own name."""

    def wrap(func: Callable[..., Any]) -> Callable[..., Any]:
        if func.__name__ in ANSWER_FUNCTIONS:
            raise ValueError(f"answer function {func.__name__!r} registered twice")
        ANSWER_FUNCTIONS[func.__name__] = AnswerFunction(
            func.__name__, func, tuple(reads), tuple(formats), tolerance, inspect.getdoc(func) or ""
        )
        return func

    return wrap


# ------------------------------------------------------------------------------------------ helpers


def _df(con: Any, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
    return con.execute(sql, list(params)).df()


def _scalar(con: Any, sql: str, params: Sequence[Any] = ()) -> Any:
    rows = con.execute(sql, list(params)).fetchall()
    return rows[0][0] if rows else None


def world_now(con: Any) -> datetime:
    """The world's current time from ``world_meta``."""
    value = _scalar(con, "SELECT value FROM world_meta WHERE key = 'now'")
    if value is None:
        raise AnswerError("world_meta has no 'now'")
    ts = pd.Timestamp(value)
    return (ts.tz_localize(None) if ts.tzinfo else ts).to_pydatetime()


def world_telemetry_start(con: Any) -> datetime | None:
    """The first telemetry timestamp from ``world_meta`` (None when the world has no telemetry)."""
    value = _scalar(con, "SELECT value FROM world_meta WHERE key = 'telemetry_start'")
    if value in (None, ""):
        return None
    ts = pd.Timestamp(value)
    return None if pd.isna(ts) else (ts.tz_localize(None) if ts.tzinfo else ts).to_pydatetime()


def _ts(value: Any, name: str) -> datetime:
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise AnswerError(f"parameter {name}={value!r} is not a timestamp") from None
    if pd.isna(ts):
        raise AnswerError(f"parameter {name}={value!r} is not a timestamp")
    return ts.to_pydatetime()


def _iso(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    ts = pd.Timestamp(value)
    return None if pd.isna(ts) else ts.strftime("%Y-%m-%dT%H:%M:%S")


def _asset(con: Any, asset: str) -> dict[str, Any]:
    df = _df(con, "SELECT * FROM assets WHERE lower(asset_id) = lower(?) OR lower(name) = lower(?)", [asset, asset])
    if len(df) != 1:
        raise AnswerError(f"no single asset has the id or name {asset!r}")
    return df.iloc[0].to_dict()


def _sensor(con: Any, asset_id: str, sensor: str) -> dict[str, Any]:
    df = _df(con, "SELECT * FROM sensors WHERE asset_id = ? AND lower(sensor) = lower(?)", [asset_id, sensor])
    if len(df) != 1:
        raise AnswerError(f"asset {asset_id} has no sensor {sensor!r}")
    return df.iloc[0].to_dict()


def _failure_mode(con: Any, failure_mode: str) -> dict[str, Any]:
    df = _df(con, "SELECT * FROM failure_modes WHERE lower(failure_mode_id) = lower(?) OR lower(failure_mode) = lower(?)",
             [failure_mode, failure_mode])
    if len(df) != 1:
        raise AnswerError(f"no single failure mode has the id or name {failure_mode!r}")
    return df.iloc[0].to_dict()


def _asset_aliases(con: Any, ids: Sequence[str]) -> dict[str, list[str]]:
    if not ids:
        return {}
    df = _df(con, "SELECT asset_id, name FROM assets")
    names = dict(zip(df["asset_id"], df["name"]))
    return {i: [names[i]] for i in ids if i in names}


def _mode_aliases(con: Any, ids: Sequence[str]) -> dict[str, list[str]]:
    if not ids:
        return {}
    df = _df(con, "SELECT failure_mode_id, failure_mode FROM failure_modes")
    names = dict(zip(df["failure_mode_id"], df["failure_mode"]))
    return {i: [names[i]] for i in ids if i in names}


def _readings(con: Any, asset: str, sensor: str, start: Any, end: Any) -> tuple[dict[str, Any], str, pd.DataFrame]:
    """(asset record, exact sensor name, readings ts/value in [start, end) ordered by time); AnswerError if none."""
    a = _asset(con, asset)
    s = _sensor(con, a["asset_id"], sensor)
    df = _df(con, "SELECT ts, value FROM telemetry WHERE asset_id = ? AND sensor = ? AND ts >= ? AND ts < ? ORDER BY ts",
             [a["asset_id"], s["sensor"], _ts(start, "start"), _ts(end, "end")])
    if df.empty:
        raise ThinDataError(f"no readings of {s['sensor']} on {a['asset_id']} in [{start}, {end})")
    return a, s["sensor"], df


def _wo_filter(con: Any, asset: str | None, start: Any, end: Any, preventive: bool | None,
               primary_code: str | None = None) -> tuple[str, list[Any]]:
    conds, params = ["TRUE"], []
    if asset is not None:
        conds.append("asset_id = ?")
        params.append(_asset(con, asset)["asset_id"])
    if start is not None:
        conds.append("finished_at >= ?")
        params.append(_ts(start, "start"))
    if end is not None:
        conds.append("finished_at < ?")
        params.append(_ts(end, "end"))
    if preventive is not None:
        conds.append("preventive = ?")
        params.append(bool(preventive))
    if primary_code is not None:
        conds.append("upper(primary_code) = upper(?)")
        params.append(primary_code)
    return " AND ".join(conds), params


def _check_choice(name: str, value: Any, allowed: Sequence[Any]) -> None:
    if value not in allowed:
        raise AnswerError(f"parameter {name}={value!r} is not one of {', '.join(map(str, allowed))}")


# ---------------------------------------------------------------------------------------------- IoT


@answer_function(reads=["sites"], formats=["id_set"])
def site_ids(con: Any) -> list[str]:
    """Every site id."""
    return sorted(_df(con, "SELECT site_id FROM sites")["site_id"])


@answer_function(reads=["assets", "sites"], formats=["id_set"])
def asset_ids(con: Any, site_id: str | None = None, equipment_class: str | None = None) -> Answer:
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


@answer_function(reads=["assets", "sites"], formats=["integer"])
def asset_count(con: Any, site_id: str | None = None, equipment_class: str | None = None) -> int:
    """How many assets (optionally of one site and/or class)."""
    return len(asset_ids(con, site_id, equipment_class).value)


ASSET_ATTRIBUTES = ("site_id", "install_date", "manufacturer", "model", "capacity", "capacity_unit", "equipment_class")


@answer_function(reads=["assets"], formats=["label", "number"])
def asset_attribute(con: Any, asset: str, attribute: str) -> Any:
    """One attribute of an asset's record (dates as YYYY-MM-DD, capacity as a number)."""
    _check_choice("attribute", attribute, ASSET_ATTRIBUTES)
    value = _asset(con, asset)[attribute]
    if attribute == "install_date":
        return pd.Timestamp(value).strftime("%Y-%m-%d")
    if attribute == "capacity":
        return float(value)
    return str(value)


@answer_function(reads=["assets", "sensors"], formats=["id_set"])
def sensor_names(con: Any, asset: str, calculated: bool | None = None) -> list[str]:
    """The sensor names of an asset (optionally only calculated or only measured ones)."""
    a = _asset(con, asset)
    sql = "SELECT sensor FROM sensors WHERE asset_id = ?"
    params: list[Any] = [a["asset_id"]]
    if calculated is not None:
        sql += " AND calculated = ?"
        params.append(bool(calculated))
    return sorted(_df(con, sql, params)["sensor"])


@answer_function(reads=["assets", "sensors"], formats=["integer"])
def sensor_count(con: Any, asset: str) -> int:
    """How many sensors an asset carries."""
    return len(sensor_names(con, asset))


@answer_function(reads=["assets", "sensors"], formats=["label"])
def sensor_unit(con: Any, asset: str, sensor: str) -> str:
    """The engineering unit of one sensor of an asset."""
    return str(_sensor(con, _asset(con, asset)["asset_id"], sensor)["unit"])


@answer_function(reads=["assets", "sensors"], formats=["id_set"])
def sensor_inputs(con: Any, asset: str, sensor: str) -> list[str]:
    """The other sensors of the asset that a calculated sensor's formula uses."""
    a = _asset(con, asset)
    row = _sensor(con, a["asset_id"], sensor)
    if not row["calculated"]:
        raise AnswerError(f"{row['sensor']} on {a['asset_id']} is measured, not calculated")
    formula = str(row["formula"] or "")
    names = _df(con, "SELECT sensor FROM sensors WHERE asset_id = ?", [a["asset_id"]])["sensor"]
    return sorted(n for n in names if n != row["sensor"] and re.search(re.escape(n), formula))


TELEMETRY_STATS = ("mean", "min", "max", "std", "count", "first_value", "last_value")


@answer_function(reads=["assets", "sensors", "telemetry"], formats=["number", "integer"], tolerance={"abs": 0.001})
def telemetry_stat(con: Any, asset: str, sensor: str, start: str, end: str, stat: str) -> float | int:
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


@answer_function(reads=["assets", "sensors", "telemetry"], formats=["list"], tolerance={"abs": 0.001})
def daily_means(con: Any, asset: str, sensor: str, start: str, end: str) -> list[float]:
    """Mean of a sensor per calendar day in [start, end), in date order (days without readings left out)."""
    _, _, df = _readings(con, asset, sensor, start, end)
    return [float(x) for x in df.groupby(df["ts"].dt.floor("D"))["value"].mean().sort_index()]


@answer_function(reads=["assets", "sensors", "telemetry"], formats=["label"])
def peak_hour(con: Any, asset: str, sensor: str, start: str, end: str) -> str:
    """Start of the clock hour with the highest mean reading in [start, end)."""
    _, _, df = _readings(con, asset, sensor, start, end)
    hourly = df.groupby(df["ts"].dt.floor("h"))["value"].mean().round(4)
    best = hourly[hourly == hourly.max()].index.min()
    return _iso(best)


@answer_function(reads=["assets", "sensors", "telemetry"], formats=["id_set"])
def extreme_reading_times(con: Any, asset: str, sensor: str, start: str, end: str, extreme: str = "max") -> list[str]:
    """Timestamps of the highest (or lowest) raw reading in [start, end); several when tied."""
    _check_choice("extreme", extreme, ("max", "min"))
    _, _, df = _readings(con, asset, sensor, start, end)
    target = df["value"].max() if extreme == "max" else df["value"].min()
    return sorted(_iso(t) for t in df.loc[df["value"] == target, "ts"])


_OPS = {">": lambda s, t: s > t, ">=": lambda s, t: s >= t, "<": lambda s, t: s < t, "<=": lambda s, t: s <= t}


@answer_function(reads=["assets", "sensors", "telemetry"], formats=["integer"])
def readings_beyond(con: Any, asset: str, sensor: str, start: str, end: str, op: str, threshold: float) -> int:
    """How many raw readings in [start, end) satisfy ``value OP threshold`` (OP one of > >= < <=)."""
    _check_choice("op", op, tuple(_OPS))
    _, _, df = _readings(con, asset, sensor, start, end)
    return int(_OPS[op](df["value"], float(threshold)).sum())


@answer_function(reads=["assets", "sensors", "telemetry"], formats=["number"], tolerance={"abs": 0.001})
def running_hours(con: Any, asset: str, start: str, end: str, sensor: str = "Run Status") -> float:
    """Hours the asset ran in [start, end): readings of its 0/1 status sensor (Run Status for chillers,
    Supply Fan Status for AHUs) equal to 1, each standing for 15 minutes."""
    _, _, df = _readings(con, asset, sensor, start, end)
    return float((df["value"] >= 0.5).sum() * 0.25)


@answer_function(reads=["world_meta"], formats=["label"])
def current_time(con: Any) -> str:
    """The world's current time, ISO."""
    return _iso(world_now(con))


@answer_function(reads=["assets", "sensors", "telemetry"], formats=["number"], tolerance={"abs": 0.002})
def mean_difference(con: Any, asset: str, sensor_a: str, sensor_b: str, start: str, end: str) -> float:
    """Mean of sensor_a minus mean of sensor_b over [start, end) (e.g. an approach temperature)."""
    _, _, a = _readings(con, asset, sensor_a, start, end)
    _, _, b = _readings(con, asset, sensor_b, start, end)
    return float(a["value"].mean() - b["value"].mean())


@answer_function(reads=["assets", "sites", "sensors", "telemetry"], formats=["json"], tolerance={"abs": 0.001})
def asset_means(con: Any, sensor: str, start: str, end: str, site_id: str | None = None,
                equipment_class: str | None = None) -> dict[str, float]:
    """Mean of one sensor over [start, end) for each asset of a site/class, keyed by asset id."""
    out = {}
    for asset_id in asset_ids(con, site_id, equipment_class).value:
        _, _, df = _readings(con, asset_id, sensor, start, end)
        out[asset_id] = float(df["value"].mean())
    if not out:
        raise AnswerError("no asset matches")
    return out


@answer_function(reads=["assets", "sites", "sensors", "telemetry"], formats=["id_set"])
def extreme_asset_by_mean(con: Any, sensor: str, start: str, end: str, site_id: str | None = None,
                          equipment_class: str | None = None, extreme: str = "max") -> Answer:
    """The asset(s) of a site/class whose mean of ``sensor`` over [start, end) is highest (or lowest)."""
    _check_choice("extreme", extreme, ("max", "min"))
    means = {k: round(v, 4) for k, v in asset_means(con, sensor, start, end, site_id, equipment_class).items()}
    target = max(means.values()) if extreme == "max" else min(means.values())
    ids = sorted(k for k, v in means.items() if v == target)
    return Answer(ids, _asset_aliases(con, ids))


# --------------------------------------------------------------------------------------------- FMSR


@answer_function(reads=["failure_modes", "failure_mode_sensors"], formats=["id_set"])
def failure_mode_ids(con: Any, equipment_class: str, include_hvac: bool = False, detectability: str | None = None,
                     component: str | None = None) -> Answer:
    """Failure modes of a class (Chiller, AHU, HVAC); with include_hvac, also HVAC modes whose sensor effects
    name this class's sensors; optionally only one detectability (high|medium|low) or component."""
    modes = _df(con, "SELECT * FROM failure_modes")
    cls = equipment_class.strip().lower()
    selected = modes["equipment_class"].str.lower() == cls
    if include_hvac and cls != "hvac":
        shared = _df(con, """SELECT DISTINCT e.failure_mode_id FROM failure_mode_sensors e
                             JOIN failure_modes m USING (failure_mode_id)
                             WHERE m.equipment_class = 'HVAC' AND lower(e.equipment_class) = ?""", [cls])
        selected |= modes["failure_mode_id"].isin(set(shared["failure_mode_id"]))
    if detectability is not None:
        selected &= modes["detectability"].str.lower() == detectability.lower()
    if component is not None:
        selected &= modes["component"].str.lower() == component.lower()
    ids = sorted(modes.loc[selected, "failure_mode_id"])
    return Answer(ids, _mode_aliases(con, ids))


@answer_function(reads=["failure_modes", "failure_mode_sensors"], formats=["integer"])
def failure_mode_count(con: Any, equipment_class: str, include_hvac: bool = False) -> int:
    """How many failure modes a class has (see failure_mode_ids)."""
    return len(failure_mode_ids(con, equipment_class, include_hvac).value)


@answer_function(reads=["failure_modes", "failure_mode_sensors"], formats=["id_set"])
def failure_mode_sensor_set(con: Any, failure_mode: str, equipment_class: str | None = None) -> list[str]:
    """Sensors a failure mode moves (optionally only the given class's sensors)."""
    fm = _failure_mode(con, failure_mode)
    sql = "SELECT DISTINCT sensor FROM failure_mode_sensors WHERE failure_mode_id = ?"
    params: list[Any] = [fm["failure_mode_id"]]
    if equipment_class is not None:
        sql += " AND lower(equipment_class) = lower(?)"
        params.append(equipment_class)
    return sorted(_df(con, sql, params)["sensor"])


@answer_function(reads=["failure_modes", "failure_mode_sensors"], formats=["id_set"])
def sensor_failure_mode_ids(con: Any, sensor: str, equipment_class: str) -> Answer:
    """Failure modes (any catalog class) with an effect on this sensor of the given asset class."""
    df = _df(con, """SELECT DISTINCT failure_mode_id FROM failure_mode_sensors
                     WHERE lower(sensor) = lower(?) AND lower(equipment_class) = lower(?)""", [sensor, equipment_class])
    ids = sorted(df["failure_mode_id"])
    return Answer(ids, _mode_aliases(con, ids))


@answer_function(reads=["failure_modes", "failure_mode_sensors"], formats=["label"])
def effect_direction(con: Any, failure_mode: str, sensor: str) -> str:
    """Direction (increase|decrease|erratic) in which a failure mode moves a sensor."""
    fm = _failure_mode(con, failure_mode)
    df = _df(con, "SELECT DISTINCT direction FROM failure_mode_sensors WHERE failure_mode_id = ? AND lower(sensor) = lower(?)",
             [fm["failure_mode_id"], sensor])
    if len(df) != 1:
        raise AnswerError(f"{fm['failure_mode_id']} has {len(df)} directions for {sensor!r}")
    return str(df["direction"].iloc[0])


FAILURE_MODE_FIELDS = ("primary_code", "secondary_code", "detectability", "component", "equipment_class",
                       "failure_mode", "failure_mode_id")


@answer_function(reads=["failure_modes"], formats=["label"])
def failure_mode_field(con: Any, failure_mode: str, field: str) -> str:
    """One field of a failure mode's catalog entry (codes, detectability, component, class, name or id)."""
    _check_choice("field", field, FAILURE_MODE_FIELDS)
    value = _failure_mode(con, failure_mode)[field]
    if value is None or (isinstance(value, float) and math.isnan(value)):
        raise AnswerError(f"failure mode {failure_mode!r} has no {field}")
    return str(value)


@answer_function(reads=["assets", "sensors", "failure_modes", "failure_mode_sensors"], formats=["id_set"])
def monitorable_sensors(con: Any, failure_mode: str, asset: str) -> list[str]:
    """Sensors that reveal a failure mode and that the asset actually carries."""
    a = _asset(con, asset)
    wanted = set(failure_mode_sensor_set(con, failure_mode, a["equipment_class"]))
    carried = set(_df(con, "SELECT sensor FROM sensors WHERE asset_id = ?", [a["asset_id"]])["sensor"])
    return sorted(wanted & carried)


@answer_function(reads=["failure_modes", "failure_mode_sensors"], formats=["id_set"])
def shared_sensors(con: Any, failure_mode_a: str, failure_mode_b: str) -> list[str]:
    """Sensors moved by both failure modes (the ones that cannot tell them apart alone)."""
    return sorted(set(failure_mode_sensor_set(con, failure_mode_a)) & set(failure_mode_sensor_set(con, failure_mode_b)))


@answer_function(reads=["failure_modes", "failure_mode_sensors"], formats=["id_set"])
def distinguishing_sensors(con: Any, failure_mode_a: str, failure_mode_b: str) -> list[str]:
    """Sensors moved by failure_mode_a but not by failure_mode_b."""
    return sorted(set(failure_mode_sensor_set(con, failure_mode_a)) - set(failure_mode_sensor_set(con, failure_mode_b)))


@answer_function(reads=["assets", "sensors"], formats=["number"], tolerance={"abs": 1e-6})
def sensor_plausible_bound(con: Any, asset: str, sensor: str, bound: str) -> float:
    """The lowest (bound=min) or highest (bound=max) physically plausible value of a sensor of an asset."""
    _check_choice("bound", bound, ("min", "max"))
    row = _sensor(con, _asset(con, asset)["asset_id"], sensor)
    value = row[f"{bound}_value"]
    if value is None or pd.isna(value):
        raise AnswerError(f"sensor {sensor!r} has no {bound}_value")
    return float(value)


@answer_function(reads=["failure_modes", "alert_rules"], formats=["id_set"])
def alert_rules_for_failure_mode(con: Any, failure_mode: str) -> list[str]:
    """Alert rules mapped to the failure mode's primary code."""
    fm = _failure_mode(con, failure_mode)
    return sorted(_df(con, "SELECT rule_id FROM alert_rules WHERE primary_code = ?", [fm["primary_code"]])["rule_id"])


@answer_function(reads=["failure_modes"], formats=["id_set"])
def failure_modes_with_code(con: Any, primary_code: str, equipment_class: str) -> Answer:
    """Failure modes of a catalog class whose typical primary code is ``primary_code``."""
    df = _df(con, "SELECT failure_mode_id FROM failure_modes WHERE upper(primary_code) = upper(?) "
                  "AND lower(equipment_class) = lower(?)", [primary_code, equipment_class])
    ids = sorted(df["failure_mode_id"])
    return Answer(ids, _mode_aliases(con, ids))


@answer_function(reads=["assets", "sensors", "failure_modes", "failure_mode_sensors"], formats=["text"])
def monitoring_recipe(con: Any, failure_mode: str, asset: str) -> dict[str, Any]:
    """What a monitoring recipe must name: the failure mode and every sensor of the asset that reveals it."""
    fm = _failure_mode(con, failure_mode)
    sensors = monitorable_sensors(con, failure_mode, asset)
    if not sensors:
        raise AnswerError(f"{asset} carries no sensor that reveals {fm['failure_mode_id']}")
    return {"must_mention": [[fm["failure_mode_id"], fm["failure_mode"]], *sensors]}


MANUALS_DIR = ASSETS_DATA / "manuals"


def _manual_sections() -> list[dict[str, Any]]:
    """Every section of the maintenance manual files (``assets_data/manuals/*.yaml``), read directly."""
    import yaml

    sections = []
    for path in sorted(MANUALS_DIR.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for section in doc.get("sections") or []:
            sections.append({**section, "equipment_class": section.get("equipment_class", doc.get("equipment_class"))})
    return sections


def _manual_section(failure_mode: str) -> dict[str, Any]:
    hits = [s for s in _manual_sections() if str(s.get("failure_mode_id", "")).lower() == failure_mode.lower()]
    if len(hits) != 1:
        raise AnswerError(f"the manual has {len(hits)} sections for failure mode {failure_mode!r}")
    return hits[0]


@answer_function(reads=[], formats=["label"])
def manual_section_for_failure_mode(con: Any, failure_mode: str) -> str:
    """Id of the maintenance-manual section about a failure mode (given by id)."""
    return str(_manual_section(failure_mode)["section_id"])


@answer_function(reads=[], formats=["integer"])
def manual_procedure_step_count(con: Any, failure_mode: str) -> int:
    """Number of procedure steps in the manual section about a failure mode (given by id)."""
    return len(_manual_section(failure_mode).get("procedure") or [])


# --------------------------------------------------------------------------------------------- TSFM


@answer_function(reads=[], formats=["id_set", "label", "integer"])
def tsfm_capability(con: Any, item: str) -> Any:
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


@answer_function(reads=[], formats=["text"])
def tsfm_model_recommendation(con: Any, purpose: str) -> dict[str, Any]:
    """What a model recommendation must name: for a daily-cycle series with drift (seasonal_with_trend) any
    model that removes the daily cycle and models the rest; for a baseline, a non-seasonal-decomposition one."""
    from aob_pipeline.lib import timeseries as tsfm

    _check_choice("purpose", purpose, MODEL_PURPOSES)
    wanted = [m.name for m in tsfm.FORECAST_MODELS.values() if m.seasonal == (purpose == "seasonal_with_trend")]
    if not wanted:
        raise AnswerError(f"no model fits purpose {purpose!r}")
    return {"must_mention": [sorted(wanted)]}


FORECAST_STATS = ("mean", "max", "min", "last_mean", "max_hi", "min_lo")


def _forecast(con: Any, asset: str, sensor: str, start: str, end: str, horizon: int, model: str, level: float):
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


@answer_function(reads=["assets", "sensors", "telemetry"], formats=["number"], tolerance={"abs": 0.002, "rel": 1e-4})
def forecast_stat(con: Any, asset: str, sensor: str, start: str, end: str, stat: str = "mean", horizon: int = 96,
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


@answer_function(reads=["assets", "sensors", "telemetry"], formats=["label"])
def forecast_horizon_end(con: Any, asset: str, sensor: str, start: str, end: str, horizon: int = 96) -> str:
    """Timestamp of the last forecast slot: horizon steps of 15 minutes after the last reading's slot."""
    from aob_pipeline.lib import timeseries as tsfm

    _, _, df = _readings(con, asset, sensor, start, end)
    last_slot = pd.Timestamp(df["ts"].iloc[-1]).round(tsfm.STEP)
    return _iso(last_slot + int(horizon) * tsfm.STEP)


def _anomalies(con: Any, asset: str, sensor: str, start: str, end: str, alpha: float):
    from aob_pipeline.lib import timeseries as tsfm

    _, _, df = _readings(con, asset, sensor, start, end)
    try:
        return tsfm.detect_anomalies(df["ts"], df["value"], _ts(start, "start"), _ts(end, "end"), alpha=alpha)
    except tsfm.NotEnoughDataError as exc:
        raise ThinDataError(f"anomaly detection on {sensor} of {asset}: {exc}") from None


@answer_function(reads=["assets", "sensors", "telemetry"], formats=["integer"])
def anomaly_count(con: Any, asset: str, sensor: str, start: str, end: str, alpha: float = 0.01,
                  unit: str = "points") -> int:
    """How many anomalous readings (unit=points) or anomaly windows (unit=windows) in [start, end)."""
    _check_choice("unit", unit, ("points", "windows"))
    result = _anomalies(con, asset, sensor, start, end, alpha)
    return int(len(result.anomalies) if unit == "points" else len(result.windows))


@answer_function(reads=["assets", "sensors", "telemetry"], formats=["label"])
def has_anomaly(con: Any, asset: str, sensor: str, start: str, end: str, alpha: float = 0.01) -> str:
    """'yes' when the sensor shows at least one anomaly in [start, end), else 'no'."""
    return "yes" if anomaly_count(con, asset, sensor, start, end, alpha) > 0 else "no"


@answer_function(reads=["assets", "sensors", "telemetry"], formats=["label"])
def first_anomaly_time(con: Any, asset: str, sensor: str, start: str, end: str, alpha: float = 0.01) -> str:
    """Timestamp (15-minute slot) of the first anomalous reading in [start, end), or 'none'."""
    found = _anomalies(con, asset, sensor, start, end, alpha).anomalies
    return "none" if found.empty else _iso(found["ts"].iloc[0])


@answer_function(reads=["assets", "sensors", "telemetry"], formats=["id_set"])
def anomalous_sensors(con: Any, asset: str, start: str, end: str, sensors: list[str] | None = None,
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


# ----------------------------------------------------------------------------------------------- WO


@answer_function(reads=["assets", "work_orders"], formats=["integer"])
def work_order_count(con: Any, asset: str | None = None, start: str | None = None, end: str | None = None,
                     preventive: bool | None = None, primary_code: str | None = None) -> int:
    """How many work orders finished in [start, end) (optionally one asset, preventive or corrective, one code)."""
    where, params = _wo_filter(con, asset, start, end, preventive, primary_code)
    return int(_scalar(con, f"SELECT count(*) FROM work_orders WHERE {where}", params))


@answer_function(reads=["assets", "work_orders"], formats=["id_set"])
def work_order_ids(con: Any, asset: str | None = None, start: str | None = None, end: str | None = None,
                   preventive: bool | None = None, primary_code: str | None = None,
                   max_priority: int | None = None) -> list[str]:
    """Ids of the work orders finished in [start, end) matching the filters (max_priority: priority <= it)."""
    where, params = _wo_filter(con, asset, start, end, preventive, primary_code)
    if max_priority is not None:
        where += " AND priority <= ?"
        params.append(int(max_priority))
    return sorted(_df(con, f"SELECT wo_id FROM work_orders WHERE {where}", params)["wo_id"])


@answer_function(reads=["assets", "work_orders"], formats=["id_set"])
def top_priority_work_orders(con: Any, asset: str | None = None, start: str | None = None, end: str | None = None,
                             preventive: bool | None = None) -> list[str]:
    """The matching work orders with the highest priority (the smallest priority number present)."""
    where, params = _wo_filter(con, asset, start, end, preventive)
    df = _df(con, f"SELECT wo_id, priority FROM work_orders WHERE {where} AND priority IS NOT NULL", params)
    if df.empty:
        raise AnswerError("no matching work order with a priority")
    return sorted(df.loc[df["priority"] == df["priority"].min(), "wo_id"])


@answer_function(reads=["assets", "work_orders"], formats=["label"])
def latest_work_order(con: Any, asset: str, preventive: bool | None = None) -> str:
    """The most recently finished work order of an asset (ties: the larger id)."""
    where, params = _wo_filter(con, asset, None, None, preventive)
    wo = _scalar(con, f"SELECT wo_id FROM work_orders WHERE {where} ORDER BY finished_at DESC, wo_id DESC LIMIT 1", params)
    if wo is None:
        raise AnswerError(f"{asset} has no matching work order")
    return str(wo)


@answer_function(reads=["assets", "work_orders"], formats=["number"], tolerance={"abs": 0.0005})
def corrective_share(con: Any, asset: str | None = None, start: str | None = None, end: str | None = None) -> float:
    """Share of work orders finished in [start, end) that are corrective (0..1)."""
    where, params = _wo_filter(con, asset, start, end, None)
    total, corrective = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE NOT preventive) FROM work_orders WHERE {where}", params).fetchall()[0]
    if not total:
        raise AnswerError("no work orders in the window")
    return corrective / total


def _code_counts(con: Any, asset: str | None, start: Any, end: Any, preventive: bool | None) -> dict[str, int]:
    where, params = _wo_filter(con, asset, start, end, preventive)
    df = _df(con, f"SELECT primary_code, count(*) AS n FROM work_orders WHERE {where} AND primary_code IS NOT NULL "
                  "GROUP BY 1", params)
    return {str(c): int(n) for c, n in zip(df["primary_code"], df["n"])}


@answer_function(reads=["assets", "work_orders"], formats=["id_set"])
def top_primary_codes(con: Any, asset: str | None = None, start: str | None = None, end: str | None = None,
                      preventive: bool | None = None) -> list[str]:
    """The most frequent primary code(s) among matching work orders (all of them when tied)."""
    counts = _code_counts(con, asset, start, end, preventive)
    if not counts:
        raise AnswerError("no coded work orders match")
    top = max(counts.values())
    return sorted(c for c, n in counts.items() if n == top)


@answer_function(reads=["assets", "work_orders"], formats=["json"])
def code_counts(con: Any, asset: str | None = None, start: str | None = None, end: str | None = None,
                preventive: bool | None = None) -> dict[str, int]:
    """Number of matching work orders per primary code."""
    counts = _code_counts(con, asset, start, end, preventive)
    if not counts:
        raise AnswerError("no coded work orders match")
    return dict(sorted(counts.items()))


@answer_function(reads=["assets", "work_orders"], formats=["number"], tolerance={"abs": 0.01})
def work_order_hours(con: Any, measure: str, aggregate: str, asset: str | None = None, start: str | None = None,
                     end: str | None = None, preventive: bool | None = None) -> float:
    """Sum or mean (aggregate) of labor_hours or duration_hours (measure) over matching work orders."""
    _check_choice("measure", measure, ("labor_hours", "duration_hours"))
    _check_choice("aggregate", aggregate, ("sum", "mean"))
    where, params = _wo_filter(con, asset, start, end, preventive)
    df = _df(con, f"SELECT {measure} AS v FROM work_orders WHERE {where} AND {measure} IS NOT NULL", params)
    if df.empty:
        raise AnswerError("no matching work orders with hours")
    return float(df["v"].sum() if aggregate == "sum" else df["v"].mean())


@answer_function(reads=["assets", "events"], formats=["json"])
def event_counts(con: Any, asset: str, start: str | None = None, end: str | None = None) -> dict[str, int]:
    """Events of an asset in [start, end) per group (WORK_ORDER, ALERT, ANOMALY; zero included)."""
    a = _asset(con, asset)
    conds, params = ["asset_id = ?"], [a["asset_id"]]
    if start is not None:
        conds.append("event_time >= ?")
        params.append(_ts(start, "start"))
    if end is not None:
        conds.append("event_time < ?")
        params.append(_ts(end, "end"))
    df = _df(con, f"SELECT event_group, count(*) AS n FROM events WHERE {' AND '.join(conds)} GROUP BY 1", params)
    got = dict(zip(df["event_group"], df["n"]))
    return {g: int(got.get(g, 0)) for g in ("WORK_ORDER", "ALERT", "ANOMALY")}


def event_kpi(event_type: Any) -> str:
    """The KPI an anomaly event names: 'KPI Cooling Load above upper bound' (upstream's events) → 'Cooling Load';
    a bare KPI (generated worlds) is itself."""
    text = str(event_type or "").strip()
    text = re.sub(r"^KPI\s+", "", text)
    return re.sub(r"\s+(?:above|below)\s+(?:the\s+)?(?:upper|lower)\s+bound$", "", text, flags=re.I).strip()


@answer_function(reads=["assets", "events"], formats=["json"])
def alert_anomaly_breakdown(con: Any, asset: str, start: str, end: str) -> dict[str, dict[str, int]]:
    """Alerts per rule id and anomalies per KPI of an asset in [start, end): {alerts: {rule: n}, anomalies:
    {kpi: n}} (keys sorted)."""
    a = _asset(con, asset)
    df = _df(con, "SELECT event_group, event_type FROM events WHERE asset_id = ? AND event_time >= ? AND event_time < ? "
                  "AND event_group IN ('ALERT', 'ANOMALY')", [a["asset_id"], _ts(start, "start"), _ts(end, "end")])
    alerts: dict[str, int] = {}
    anomalies: dict[str, int] = {}
    for group, event_type in zip(df["event_group"], df["event_type"]):
        if group == "ALERT":
            alerts[str(event_type)] = alerts.get(str(event_type), 0) + 1
        else:
            kpi = event_kpi(event_type)
            anomalies[kpi] = anomalies.get(kpi, 0) + 1
    return {"alerts": dict(sorted(alerts.items())), "anomalies": dict(sorted(anomalies.items()))}


@answer_function(reads=["assets", "events"], formats=["integer"])
def event_days(con: Any, asset: str, start: str | None = None, end: str | None = None,
               groups: list[str] | None = None) -> int:
    """Days (calendar dates of event_time) in [start, end) on which the asset had at least one event of
    ``groups`` (default all: WORK_ORDER, ALERT, ANOMALY)."""
    a = _asset(con, asset)
    groups = list(groups or ("WORK_ORDER", "ALERT", "ANOMALY"))
    for g in groups:
        _check_choice("groups", g, ("WORK_ORDER", "ALERT", "ANOMALY"))
    conds, params = ["asset_id = ?", f"event_group IN ({', '.join('?' for _ in groups)})"], [a["asset_id"], *groups]
    if start is not None:
        conds.append("event_time >= ?")
        params.append(_ts(start, "start"))
    if end is not None:
        conds.append("event_time < ?")
        params.append(_ts(end, "end"))
    return int(_scalar(con, f"SELECT count(DISTINCT CAST(event_time AS DATE)) FROM events WHERE {' AND '.join(conds)}",
                       params))


@answer_function(reads=["assets", "events"], formats=["text"])
def event_summary(con: Any, asset: str, start: str | None = None, end: str | None = None) -> dict[str, Any]:
    """What a summary of an asset's events must mention: the asset and the count of each event group."""
    a = _asset(con, asset)
    counts = event_counts(con, asset, start, end)
    return {"must_mention": [[a["name"], a["asset_id"]], *[str(n) for n in counts.values()]]}


def _alert_events(con: Any, asset: str, start: Any, end: Any) -> pd.DataFrame:
    a = _asset(con, asset)
    return _df(con, "SELECT event_type, event_time FROM events WHERE asset_id = ? AND event_group = 'ALERT' "
                    "AND event_time >= ? AND event_time < ?", [a["asset_id"], _ts(start, "start"), _ts(end, "end")])


@answer_function(reads=["assets", "events"], formats=["integer"])
def alert_count(con: Any, asset: str, start: str, end: str, rule_id: str | None = None) -> int:
    """Alert events of an asset in [start, end) (optionally of one rule)."""
    df = _alert_events(con, asset, start, end)
    if rule_id is not None:
        df = df[df["event_type"].str.upper() == rule_id.upper()]
    return int(len(df))


@answer_function(reads=["assets", "events"], formats=["id_set"])
def top_alert_rules(con: Any, asset: str, start: str, end: str) -> list[str]:
    """The rule(s) that fired most often on an asset in [start, end) (all of them when tied; none if no alert)."""
    df = _alert_events(con, asset, start, end)
    if df.empty:  # no alert fired: the right answer is an empty set
        return []
    counts = Counter(df["event_type"])
    top = max(counts.values())
    return sorted(r for r, n in counts.items() if n == top)


def _markov(con: Any, asset: str) -> tuple[str, dict[str, float]]:
    """(last code, next-code probabilities): first-order Markov chain over primary-code sequences of the
    asset's class, up to now, with add-one smoothing over the codes seen."""
    a = _asset(con, asset)
    now = world_now(con)
    df = _df(con, """SELECT w.asset_id, w.primary_code FROM work_orders w JOIN assets x USING (asset_id)
                     WHERE x.equipment_class = ? AND w.primary_code IS NOT NULL AND w.finished_at <= ?
                     ORDER BY w.asset_id, w.finished_at, w.wo_id""", [a["equipment_class"], now])
    own = df[df["asset_id"] == a["asset_id"]]
    if own.empty:
        raise AnswerError(f"{asset} has no coded work order up to now")
    last = own["primary_code"].iloc[-1]
    states = sorted(set(df["primary_code"]))
    transitions: Counter[str] = Counter()
    for _, codes in df.groupby("asset_id")["primary_code"]:
        seq = list(codes)
        transitions.update(b for x, b in zip(seq, seq[1:]) if x == last)
    total = sum(transitions.values())
    return last, {s: (transitions.get(s, 0) + 1) / (total + len(states)) for s in states}


@answer_function(reads=["assets", "work_orders", "world_meta"], formats=["id_set"])
def likely_next_codes(con: Any, asset: str) -> list[str]:
    """The most likely primary code(s) of the asset's next work order (Markov chain, see _markov)."""
    _, probs = _markov(con, asset)
    top = max(round(p, 4) for p in probs.values())
    return sorted(c for c, p in probs.items() if round(p, 4) == top)


@answer_function(reads=["assets", "work_orders", "world_meta"], formats=["number"], tolerance={"abs": 0.0005})
def next_code_probability(con: Any, asset: str, primary_code: str | None = None) -> float:
    """Probability that the next work order carries ``primary_code`` (default: the most likely code)."""
    _, probs = _markov(con, asset)
    if primary_code is None:
        return max(probs.values())
    if primary_code not in probs:
        raise AnswerError(f"code {primary_code} never occurs in the class's history")
    return probs[primary_code]


@answer_function(reads=["assets", "work_orders"], formats=["label"])
def last_work_order_code(con: Any, asset: str) -> str:
    """Primary code of the asset's last coded work order up to now (what the Markov model conditions on)."""
    return _markov(con, asset)[0]


@answer_function(reads=["assets", "alerts", "work_orders", "world_meta"], formats=["json"],
                 tolerance={"abs": 0.0005})
def alert_followup_stats(con: Any, asset: str | None = None, rule_id: str | None = None,
                         within_days: int = 30) -> dict[str, Any]:
    """For alerts started up to now: how many, how many were followed by a corrective work order on the same
    asset finishing within ``within_days`` days after the alert's start (and by now), and that share
    (None when no alert matches)."""
    now = world_now(con)
    conds, params = ["start_time <= ?"], [now]
    if asset is not None:
        conds.append("asset_id = ?")
        params.append(_asset(con, asset)["asset_id"])
    if rule_id is not None:
        conds.append("upper(rule_id) = upper(?)")
        params.append(rule_id)
    alerts = _df(con, f"SELECT alert_id, asset_id, start_time FROM alerts WHERE {' AND '.join(conds)}", params)
    if alerts.empty:  # a right answer says there were no such alerts, so no rate can be given
        return {"alerts": 0, "followed_by_corrective": 0, "probability": None}
    wos = _df(con, "SELECT asset_id, finished_at FROM work_orders WHERE NOT preventive AND finished_at <= ?", [now])
    by_asset = {k: g["finished_at"].sort_values().to_numpy() for k, g in wos.groupby("asset_id")}
    followed = 0
    for asset_id, start_time in zip(alerts["asset_id"], alerts["start_time"]):
        times = by_asset.get(asset_id)
        if times is None:
            continue
        lo, hi = pd.Timestamp(start_time), pd.Timestamp(start_time) + pd.Timedelta(days=int(within_days))
        if any(lo <= pd.Timestamp(t) <= hi for t in times):
            followed += 1
    return {"alerts": int(len(alerts)), "followed_by_corrective": followed, "probability": followed / len(alerts)}


@answer_function(reads=["assets", "work_orders"], formats=["json"])
def corrective_bundles(con: Any, start: str, end: str, asset: str | None = None, window_days: int = 7,
                       rule: str = "span") -> dict[str, Any]:
    """Corrective work orders finished in [start, end) grouped per asset into bundles by the WO tools' own rule
    (``aob_pipeline.lib.tools.wo.bundle_by_window``): ``span`` (every pair within window_days) or ``gap``
    (upstream AssetOpsBench's rule: each within window_days of the previous one); bundles of two or more count.
    Returns {count, bundles: [[wo ids in time order]...]} ordered by asset then time."""
    from aob_pipeline.lib.tools.wo import BUNDLE_RULES, bundle_by_window

    _check_choice("rule", rule, BUNDLE_RULES)
    where, params = _wo_filter(con, asset, start, end, False)
    df = _df(con, f"SELECT asset_id, wo_id, finished_at FROM work_orders WHERE {where} "
                  "ORDER BY asset_id, finished_at, wo_id", params)
    bundles: list[list[str]] = []
    for _, g in df.groupby("asset_id", sort=True):
        for group in bundle_by_window(list(zip(g["wo_id"], g["finished_at"])), float(window_days), rule):
            bundles.append([wo for wo, _ in group])
    return {"count": len(bundles), "bundles": bundles}


@answer_function(reads=["failure_codes"], formats=["id_set"])
def primary_codes_in_category(con: Any, category: str) -> list[str]:
    """Primary failure codes of a code category."""
    df = _df(con, "SELECT DISTINCT primary_code FROM failure_codes WHERE lower(category) = lower(?)", [category])
    if df.empty:
        raise AnswerError(f"no code category {category!r}")
    return sorted(df["primary_code"])


@answer_function(reads=["failure_codes"], formats=["id_set"])
def secondary_codes(con: Any, primary_code: str) -> list[str]:
    """Secondary codes under a primary code."""
    df = _df(con, "SELECT secondary_code FROM failure_codes WHERE upper(primary_code) = upper(?)", [primary_code])
    if df.empty:
        raise AnswerError(f"no primary code {primary_code!r}")
    return sorted(df["secondary_code"])


@answer_function(reads=["failure_codes"], formats=["label"])
def code_description(con: Any, code: str) -> str:
    """Description of a primary or secondary failure code."""
    df = _df(con, """SELECT DISTINCT primary_code_description AS d FROM failure_codes WHERE upper(primary_code) = upper(?)
                     UNION SELECT secondary_code_description FROM failure_codes WHERE upper(secondary_code) = upper(?)""",
             [code, code])
    if len(df) != 1:
        raise AnswerError(f"code {code!r} has {len(df)} descriptions")
    return str(df["d"].iloc[0])


@answer_function(reads=["assets", "work_orders", "world_meta"], formats=["number"], tolerance={"abs": 0.01})
def days_since_last_work_order(con: Any, asset: str, preventive: bool | None = None) -> float:
    """Days from the asset's most recent matching work order (finished up to now) to now."""
    now = world_now(con)
    where, params = _wo_filter(con, asset, None, now, preventive)
    last = _scalar(con, f"SELECT max(finished_at) FROM work_orders WHERE {where}", params)
    if last is None:
        raise AnswerError(f"{asset} has no matching work order before now")
    return (pd.Timestamp(now) - pd.Timestamp(last)) / pd.Timedelta(days=1)


@answer_function(reads=["assets", "sites", "work_orders"], formats=["list"])
def rank_assets_by_work_orders(con: Any, start: str, end: str, site_id: str | None = None,
                               equipment_class: str | None = None, preventive: bool | None = None) -> Answer:
    """Asset ids of a site/class ordered by matching work-order count, most first (ties: asset id)."""
    counts = {a: work_order_count(con, a, start, end, preventive) for a in asset_ids(con, site_id, equipment_class).value}
    ranked = sorted(counts, key=lambda a: (-counts[a], a))
    return Answer(ranked, _asset_aliases(con, ranked))


@answer_function(reads=["assets", "sites", "work_orders"], formats=["id_set"])
def assets_with_most_work_orders(con: Any, start: str, end: str, site_id: str | None = None,
                                 equipment_class: str | None = None, preventive: bool | None = None) -> Answer:
    """The asset(s) of a site/class with the most matching work orders (all when tied)."""
    counts = {a: work_order_count(con, a, start, end, preventive) for a in asset_ids(con, site_id, equipment_class).value}
    if not counts:
        raise AnswerError("no asset matches")
    top = max(counts.values())
    ids = sorted(a for a, n in counts.items() if n == top)
    return Answer(ids, _asset_aliases(con, ids))


@answer_function(reads=["assets", "work_orders"], formats=["number"], tolerance={"abs": 0.01})
def mean_days_between_work_orders(con: Any, asset: str, start: str | None = None, end: str | None = None,
                                  preventive: bool | None = None) -> float:
    """Mean gap in days between consecutive matching work orders of an asset (by finish time)."""
    where, params = _wo_filter(con, asset, start, end, preventive)
    times = _df(con, f"SELECT finished_at FROM work_orders WHERE {where} ORDER BY finished_at", params)["finished_at"]
    if len(times) < 2:
        raise AnswerError("fewer than two matching work orders")
    return float((pd.Timestamp(times.iloc[-1]) - pd.Timestamp(times.iloc[0])) / pd.Timedelta(days=1) / (len(times) - 1))


# ------------------------------------------------------------------------------------ end to end


@answer_function(reads=["assets", "sensors", "telemetry", "failure_modes", "failure_mode_sensors"], formats=["json"])
def anomaly_failure_modes(con: Any, asset: str, sensor: str, start: str, end: str, alpha: float = 0.01) -> Answer:
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


@answer_function(reads=["assets", "sensors", "telemetry", "failure_modes", "failure_mode_sensors"], formats=["json"])
def anomaly_manual_sections(con: Any, asset: str, sensor: str, start: str, end: str, alpha: float = 0.01) -> Answer:
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


@answer_function(reads=["assets", "sensors", "telemetry", "failure_modes"], formats=["json"])
def anomaly_work_order_decision(con: Any, asset: str, sensor: str, start: str, end: str, failure_mode: str,
                                alpha: float = 0.01) -> dict[str, Any]:
    """Create a corrective work order (with the failure mode's primary code) only if the sensor shows an
    anomaly in [start, end): {create, primary_code (None when not created)}."""
    anomalous = anomaly_count(con, asset, sensor, start, end, alpha) > 0
    code = failure_mode_field(con, failure_mode, "primary_code")
    return {"create": anomalous, "primary_code": code if anomalous else None}


@answer_function(reads=["assets", "work_orders", "failure_modes"], formats=["json"])
def failure_mode_work_orders(con: Any, failure_mode: str, asset: str, start: str | None = None,
                             end: str | None = None) -> dict[str, Any]:
    """The failure mode's primary code and how many corrective work orders of the asset carry it in [start, end)."""
    code = failure_mode_field(con, failure_mode, "primary_code")
    return {"primary_code": code, "work_orders": work_order_count(con, asset, start, end, False, code)}


@answer_function(reads=["assets", "sensors", "telemetry", "failure_modes", "failure_mode_sensors"], formats=["json"],
                 tolerance={"abs": 0.001})
def failure_mode_sensor_means(con: Any, failure_mode: str, asset: str, start: str, end: str) -> dict[str, float]:
    """Mean over [start, end) of every sensor of the asset that reveals the failure mode, keyed by sensor."""
    out = {}
    for name in monitorable_sensors(con, failure_mode, asset):
        _, _, df = _readings(con, asset, name, start, end)
        out[name] = float(df["value"].mean())
    if not out:
        raise AnswerError(f"{asset} carries no sensor revealing {failure_mode}")
    return out


@answer_function(reads=["assets", "sensors", "telemetry"], formats=["json"], tolerance={"abs": 0.002, "rel": 1e-4})
def forecast_vs_history_max(con: Any, asset: str, sensor: str, start: str, end: str, horizon: int = 96,
                            level: float = 90) -> dict[str, Any]:
    """Whether the next ``horizon`` steps may exceed the highest reading of the history [start, end): the
    highest upper bound of the forecast against that maximum: {forecast_max_hi, history_max, exceeds}."""
    hi = forecast_stat(con, asset, sensor, start, end, "max_hi", horizon, "auto_ets", level)
    top = telemetry_stat(con, asset, sensor, start, end, "max")
    return {"forecast_max_hi": hi, "history_max": top, "exceeds": bool(hi > top)}


@answer_function(reads=["assets", "sensors", "telemetry", "work_orders"], formats=["json"])
def anomaly_and_corrective_history(con: Any, asset: str, sensor: str, start: str, end: str, wo_start: str,
                                   alpha: float = 0.01) -> dict[str, Any]:
    """Whether the sensor shows anomalies in [start, end) and how many corrective work orders the asset had
    from wo_start up to end: {anomalous, corrective_work_orders}."""
    return {"anomalous": anomaly_count(con, asset, sensor, start, end, alpha) > 0,
            "corrective_work_orders": work_order_count(con, asset, wo_start, end, False)}


@answer_function(reads=["assets", "sensors", "failure_modes", "failure_mode_sensors"], formats=["integer"])
def detectable_failure_mode_count(con: Any, asset: str) -> int:
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


@answer_function(reads=["assets", "work_orders", "failure_modes"], formats=["json"])
def latest_corrective_failure_modes(con: Any, asset: str) -> Answer:
    """The asset's latest corrective work order, its primary code and the failure modes of the asset's class
    (its own catalog class) that carry that code: {wo_id, primary_code, failure_modes}."""
    a = _asset(con, asset)
    wo = latest_work_order(con, asset, preventive=False)
    code = _scalar(con, "SELECT primary_code FROM work_orders WHERE wo_id = ?", [wo])
    ids = failure_modes_with_code(con, code, a["equipment_class"]).value
    return Answer({"wo_id": wo, "primary_code": code, "failure_modes": ids}, _mode_aliases(con, ids))


@answer_function(reads=["assets", "work_orders", "world_meta", "failure_modes"], formats=["json"])
def next_code_failure_modes(con: Any, asset: str) -> Answer:
    """The most likely next primary code(s) of the asset and the failure modes of its class carrying them:
    {next_codes, failure_modes}."""
    a = _asset(con, asset)
    codes = likely_next_codes(con, asset)
    ids = sorted({fm for c in codes for fm in failure_modes_with_code(con, c, a["equipment_class"]).value})
    return Answer({"next_codes": codes, "failure_modes": ids}, _mode_aliases(con, ids))


@answer_function(reads=["assets", "sites", "sensors", "telemetry", "work_orders", "world_meta"], formats=["json"])
def top_power_asset_next_codes(con: Any, start: str, end: str, site_id: str | None = None,
                               equipment_class: str | None = None, sensor: str = "Power Input") -> Answer:
    """The asset of a site/class with the highest mean ``sensor`` over [start, end) and its most likely next
    work-order code(s): {asset_id, next_codes}."""
    top = extreme_asset_by_mean(con, sensor, start, end, site_id, equipment_class, "max").value
    if len(top) != 1:
        raise AnswerError(f"{len(top)} assets tie for the highest mean {sensor}")
    return Answer({"asset_id": top[0], "next_codes": likely_next_codes(con, top[0])}, _asset_aliases(con, top))


# -------------------------------------------------------------------------------------- robustness


def _final(con: Any, final: dict[str, Any] | None) -> dict[str, Any]:
    if final is None:
        return {}
    spec = AnswerSpec.model_validate(final)
    value, aliases, tolerance = compute_answer(con, spec)
    out: dict[str, Any] = {"final": value, "final_format": spec.format}
    if tolerance:
        out["final_tolerance"] = tolerance
    return out


@answer_function(reads=["assets", "sensors"], formats=["clarification"])
def clarify_missing_sensor(con: Any, asset: str, sensor: str, final: dict[str, Any] | None = None) -> dict[str, Any]:
    """The asset lacks the requested sensor: a right answer says so, naming the sensor, and (when the operator
    replies with an alternative) answers ``final`` (a nested answer spec)."""
    a = _asset(con, asset)
    has = _df(con, "SELECT count(*) AS n FROM sensors WHERE asset_id = ? AND lower(sensor) = lower(?)",
              [a["asset_id"], sensor])["n"].iloc[0]
    if has:
        raise AnswerError(f"{a['asset_id']} does carry {sensor!r}: not a missing-sensor case in this world")
    return {"behaviour": "state_missing", "must_mention": [sensor], **_final(con, final)}


@answer_function(reads=[], formats=["clarification"])
def clarify_vague_request(con: Any, final: dict[str, Any] | None = None,
                          must_mention: list[Any] | None = None) -> dict[str, Any]:
    """The request is too vague to act on: a right answer asks a clarifying question first, then answers
    ``final`` after the operator's reply."""
    return {"behaviour": "ask_clarification", "must_mention": list(must_mention or []), **_final(con, final)}


CONFLICT_WORDS = ["conflict", "conflicting", "contradict", "contradicts", "contradictory", "inconsistent",
                  "disagree", "discrepancy"]


@answer_function(reads=[], formats=["clarification"])
def note_conflicting_logs(con: Any, final: dict[str, Any] | None = None,
                          must_mention: list[Any] | None = None) -> dict[str, Any]:
    """The request quotes records that contradict each other: a right answer points out the conflict (one of
    the conflict words), resolves it from the data and gives ``final``."""
    return {"behaviour": "note_conflict", "must_mention": [CONFLICT_WORDS, *(must_mention or [])], **_final(con, final)}


# ------------------------------------------------------------------------------------------ driver


def _check_params(fn: AnswerFunction, params: dict[str, Any]) -> None:
    sig = fn.parameters()
    unknown = sorted(set(params) - set(sig))
    if unknown:
        raise AnswerError(f"answer function {fn.name}: unknown parameter(s) {', '.join(unknown)} "
                          f"(takes {', '.join(sig) or 'none'})")
    missing = sorted(n for n, p in sig.items() if p.default is inspect.Parameter.empty and n not in params)
    if missing:
        raise AnswerError(f"answer function {fn.name}: missing parameter(s) {', '.join(missing)}")


def get_answer_function(name: str) -> AnswerFunction:
    if name not in ANSWER_FUNCTIONS:
        import difflib

        near = difflib.get_close_matches(name, list(ANSWER_FUNCTIONS), n=3)
        raise AnswerError(f"no answer function {name!r}" + (f" (close: {', '.join(near)})" if near else ""))
    return ANSWER_FUNCTIONS[name]


def compute_answer(con: Any, spec: AnswerSpec) -> tuple[Any, dict[str, list[str]], dict[str, float] | None]:
    """(expected value, aliases, tolerance) for a rendered answer spec; AnswerError when unanswerable."""
    fn = get_answer_function(spec.function)
    if spec.format not in fn.formats:
        raise AnswerError(f"answer function {fn.name} backs format(s) {', '.join(fn.formats)}, not {spec.format!r}")
    _check_params(fn, spec.params)
    result = fn.func(con, **spec.params)
    aliases: dict[str, list[str]] = {}
    if isinstance(result, Answer):
        result, aliases = result.value, dict(result.aliases)
    tolerance = spec.tolerance.as_dict() if spec.tolerance is not None else (dict(fn.tolerance) if fn.tolerance else None)
    if spec.format == "integer" and isinstance(result, float) and result.is_integer():
        result = int(result)
    return result, aliases, tolerance


def tables_read(names: Sequence[str] | None = None) -> list[str]:
    """World tables the answer functions read (all, or only the named functions): the asset's upstreams."""
    fns = ANSWER_FUNCTIONS.values() if names is None else [get_answer_function(n) for n in names]
    return sorted({t for f in fns for t in f.reads})
