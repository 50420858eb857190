"""FMSR answer kinds: failure modes, their sensor effects, sensor metadata and the maintenance manual
(mirroring ``aob_pipeline.lib.tools.fmsr`` and ``aob_pipeline.lib.tools.knowledge``)."""

from __future__ import annotations

import math
import re
from typing import Any

import duckdb
import pandas as pd

from aob_pipeline.lib.scenarios.answers._common import (
    Answer,
    AnswerError,
    _asset,
    _check_choice,
    _df,
    _failure_mode,
    _mode_aliases,
    _sensor,
    answer_kind,
)
from aob_pipeline.lib.settings import ASSETS_DATA


@answer_kind("fmsr", reads=["assets", "sensors"], formats=["id_set"])
def sensor_inputs(con: duckdb.DuckDBPyConnection, asset: str, sensor: str) -> list[str]:
    """The other sensors of the asset that a calculated sensor's formula uses."""
    a = _asset(con, asset)
    row = _sensor(con, a["asset_id"], sensor)
    if not row["calculated"]:
        raise AnswerError(f"{row['sensor']} on {a['asset_id']} is measured, not calculated")
    formula = str(row["formula"] or "")
    names = _df(con, "SELECT sensor FROM sensors WHERE asset_id = ?", [a["asset_id"]])["sensor"]
    return sorted(n for n in names if n != row["sensor"] and re.search(re.escape(n), formula))


@answer_kind("fmsr", reads=["failure_modes", "failure_mode_sensors"], formats=["id_set"])
def failure_mode_ids(con: duckdb.DuckDBPyConnection, equipment_class: str, include_hvac: bool = False, detectability: str | None = None,
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


@answer_kind("fmsr", reads=["failure_modes", "failure_mode_sensors"], formats=["integer"])
def failure_mode_count(con: duckdb.DuckDBPyConnection, equipment_class: str, include_hvac: bool = False) -> int:
    """How many failure modes a class has (see failure_mode_ids)."""
    return len(failure_mode_ids(con, equipment_class, include_hvac).value)


@answer_kind("fmsr", reads=["failure_modes", "failure_mode_sensors"], formats=["id_set"])
def failure_mode_sensor_set(con: duckdb.DuckDBPyConnection, failure_mode: str, equipment_class: str | None = None) -> list[str]:
    """Sensors a failure mode moves (optionally only the given class's sensors)."""
    fm = _failure_mode(con, failure_mode)
    sql = "SELECT DISTINCT sensor FROM failure_mode_sensors WHERE failure_mode_id = ?"
    params: list[Any] = [fm["failure_mode_id"]]
    if equipment_class is not None:
        sql += " AND lower(equipment_class) = lower(?)"
        params.append(equipment_class)
    return sorted(_df(con, sql, params)["sensor"])


@answer_kind("fmsr", reads=["failure_modes", "failure_mode_sensors"], formats=["id_set"])
def sensor_failure_mode_ids(con: duckdb.DuckDBPyConnection, sensor: str, equipment_class: str) -> Answer:
    """Failure modes (any catalog class) with an effect on this sensor of the given asset class."""
    df = _df(con, """SELECT DISTINCT failure_mode_id FROM failure_mode_sensors
                     WHERE lower(sensor) = lower(?) AND lower(equipment_class) = lower(?)""", [sensor, equipment_class])
    ids = sorted(df["failure_mode_id"])
    return Answer(ids, _mode_aliases(con, ids))


@answer_kind("fmsr", reads=["failure_modes", "failure_mode_sensors"], formats=["label"])
def effect_direction(con: duckdb.DuckDBPyConnection, failure_mode: str, sensor: str) -> str:
    """Direction (increase|decrease|erratic) in which a failure mode moves a sensor."""
    fm = _failure_mode(con, failure_mode)
    df = _df(con, "SELECT DISTINCT direction FROM failure_mode_sensors WHERE failure_mode_id = ? AND lower(sensor) = lower(?)",
             [fm["failure_mode_id"], sensor])
    if len(df) != 1:
        raise AnswerError(f"{fm['failure_mode_id']} has {len(df)} directions for {sensor!r}")
    return str(df["direction"].iloc[0])


FAILURE_MODE_FIELDS = ("primary_code", "secondary_code", "detectability", "component", "equipment_class",
                       "failure_mode", "failure_mode_id")


@answer_kind("fmsr", reads=["failure_modes"], formats=["label"])
def failure_mode_field(con: duckdb.DuckDBPyConnection, failure_mode: str, field: str) -> str:
    """One field of a failure mode's catalog entry (codes, detectability, component, class, name or id)."""
    _check_choice("field", field, FAILURE_MODE_FIELDS)
    value = _failure_mode(con, failure_mode)[field]
    if value is None or (isinstance(value, float) and math.isnan(value)):
        raise AnswerError(f"failure mode {failure_mode!r} has no {field}")
    return str(value)


@answer_kind("fmsr", reads=["assets", "sensors", "failure_modes", "failure_mode_sensors"], formats=["id_set"])
def monitorable_sensors(con: duckdb.DuckDBPyConnection, failure_mode: str, asset: str) -> list[str]:
    """Sensors that reveal a failure mode and that the asset actually carries."""
    a = _asset(con, asset)
    wanted = set(failure_mode_sensor_set(con, failure_mode, a["equipment_class"]))
    carried = set(_df(con, "SELECT sensor FROM sensors WHERE asset_id = ?", [a["asset_id"]])["sensor"])
    return sorted(wanted & carried)


@answer_kind("fmsr", reads=["failure_modes", "failure_mode_sensors"], formats=["id_set"])
def shared_sensors(con: duckdb.DuckDBPyConnection, failure_mode_a: str, failure_mode_b: str) -> list[str]:
    """Sensors moved by both failure modes (the ones that cannot tell them apart alone)."""
    return sorted(set(failure_mode_sensor_set(con, failure_mode_a)) & set(failure_mode_sensor_set(con, failure_mode_b)))


@answer_kind("fmsr", reads=["failure_modes", "failure_mode_sensors"], formats=["id_set"])
def distinguishing_sensors(con: duckdb.DuckDBPyConnection, failure_mode_a: str, failure_mode_b: str) -> list[str]:
    """Sensors moved by failure_mode_a but not by failure_mode_b."""
    return sorted(set(failure_mode_sensor_set(con, failure_mode_a)) - set(failure_mode_sensor_set(con, failure_mode_b)))


@answer_kind("fmsr", reads=["assets", "sensors"], formats=["number"], tolerance={"abs": 1e-6})
def sensor_plausible_bound(con: duckdb.DuckDBPyConnection, asset: str, sensor: str, bound: str) -> float:
    """The lowest (bound=min) or highest (bound=max) physically plausible value of a sensor of an asset."""
    _check_choice("bound", bound, ("min", "max"))
    row = _sensor(con, _asset(con, asset)["asset_id"], sensor)
    value = row[f"{bound}_value"]
    if value is None or pd.isna(value):
        raise AnswerError(f"sensor {sensor!r} has no {bound}_value")
    return float(value)


@answer_kind("fmsr", reads=["failure_modes", "alert_rules"], formats=["id_set"])
def alert_rules_for_failure_mode(con: duckdb.DuckDBPyConnection, failure_mode: str) -> list[str]:
    """Alert rules mapped to the failure mode's primary code."""
    fm = _failure_mode(con, failure_mode)
    return sorted(_df(con, "SELECT rule_id FROM alert_rules WHERE primary_code = ?", [fm["primary_code"]])["rule_id"])


@answer_kind("fmsr", reads=["failure_modes"], formats=["id_set"])
def failure_modes_with_code(con: duckdb.DuckDBPyConnection, primary_code: str, equipment_class: str) -> Answer:
    """Failure modes of a catalog class whose typical primary code is ``primary_code``."""
    df = _df(con, "SELECT failure_mode_id FROM failure_modes WHERE upper(primary_code) = upper(?) "
                  "AND lower(equipment_class) = lower(?)", [primary_code, equipment_class])
    ids = sorted(df["failure_mode_id"])
    return Answer(ids, _mode_aliases(con, ids))


@answer_kind("fmsr", reads=["assets", "sensors", "failure_modes", "failure_mode_sensors"], formats=["text"])
def monitoring_recipe(con: duckdb.DuckDBPyConnection, failure_mode: str, asset: str) -> dict[str, Any]:
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


@answer_kind("fmsr", reads=[], formats=["label"])
def manual_section_for_failure_mode(con: duckdb.DuckDBPyConnection, failure_mode: str) -> str:
    """Id of the maintenance-manual section about a failure mode (given by id)."""
    return str(_manual_section(failure_mode)["section_id"])


@answer_kind("fmsr", reads=[], formats=["integer"])
def manual_procedure_step_count(con: duckdb.DuckDBPyConnection, failure_mode: str) -> int:
    """Number of procedure steps in the manual section about a failure mode (given by id)."""
    return len(_manual_section(failure_mode).get("procedure") or [])
