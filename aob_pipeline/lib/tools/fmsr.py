"""FMSR tools: failure modes, and which sensors reveal which failure modes (and why).

Relevance comes only from the failure-mode catalog's sensor effects (``failure_mode_sensors``): each
effect names the class whose sensor moves, the direction (increase, decrease, erratic), the shape (step,
ramp, spike, oscillation), the magnitude in the sensor's unit and a rationale. HVAC modes concern parts
shared by chillers and AHUs; they apply to a class exactly where their effects name that class's sensors.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from aob_pipeline.lib.tools._common import (
    ASSET_SCHEMA,
    CATALOG_CLASSES,
    asset_sensors,
    close_matches,
    fmt_ts,
    match_name,
    normalise_key,
    object_schema,
    plain,
    records,
    resolve_asset,
    resolve_class,
    resolve_sensor,
    rounded,
    sensor_data_range,
)
from aob_pipeline.lib.tools.base import ToolContext, ToolError, ToolSpec

EFFECT_COLUMNS = ["sensor", "equipment_class", "direction", "shape", "magnitude", "unit", "rationale"]


# ------------------------------------------------------------------------------------------ catalog

def failure_modes_frame(ctx: ToolContext) -> pd.DataFrame:
    key = "fmsr.failure_modes"
    if key not in ctx.cache:
        ctx.cache[key] = ctx.query("SELECT * FROM failure_modes ORDER BY failure_mode_id")
    return ctx.cache[key]


def effects_frame(ctx: ToolContext) -> pd.DataFrame:
    """Catalog effects joined with the sensor's unit where assets of that class carry the sensor."""
    key = "fmsr.effects"
    if key not in ctx.cache:
        ctx.cache[key] = ctx.query(
            """
            WITH units AS (
                SELECT a.equipment_class, s.sensor, min(s.unit) AS unit
                FROM sensors s JOIN assets a USING (asset_id)
                GROUP BY 1, 2
            )
            SELECT e.failure_mode_id, e.equipment_class, e.sensor, e.direction, e.shape, e.magnitude,
                   e.rationale, u.unit, m.failure_mode, m.component, m.equipment_class AS mode_class
            FROM failure_mode_sensors e
            JOIN failure_modes m USING (failure_mode_id)
            LEFT JOIN units u ON u.equipment_class = e.equipment_class AND u.sensor = e.sensor
            ORDER BY e.failure_mode_id, e.equipment_class, e.sensor
            """
        )
    return ctx.cache[key]


def class_sensor_names(ctx: ToolContext, equipment_class: str | None) -> list[str]:
    """Sensor names known for a class (from its assets and from the catalog); all names when class is None."""
    key = f"fmsr.sensor_names.{equipment_class}"
    if key not in ctx.cache:
        if equipment_class is None or equipment_class == "HVAC":
            df = ctx.query("SELECT sensor FROM sensors UNION SELECT sensor FROM failure_mode_sensors")
        else:
            df = ctx.query(
                """SELECT s.sensor FROM sensors s JOIN assets a USING (asset_id) WHERE a.equipment_class = ?
                   UNION SELECT sensor FROM failure_mode_sensors WHERE equipment_class = ?""",
                [equipment_class, equipment_class],
            )
        ctx.cache[key] = sorted(df["sensor"])
    return ctx.cache[key]


def resolve_failure_mode(ctx: ToolContext, value: Any, field: str = "failure_mode") -> dict[str, Any]:
    """A catalog entry by id ('FM-CH-01') or name, ignoring case and punctuation; ``unknown_failure_mode`` else."""
    if not isinstance(value, str) or not value.strip():
        raise ToolError("invalid_arguments", f"argument '{field}' must be a failure-mode id or name, got {value!r}")
    df = failure_modes_frame(ctx)
    key = normalise_key(value)
    hit = df[df["failure_mode_id"].map(normalise_key) == key]
    if len(hit) != 1:
        hit = df[df["failure_mode"].map(normalise_key) == key]
    if len(hit) == 1:
        return records(hit)[0]
    labels = {str(r.failure_mode): f"{r.failure_mode} ({r.failure_mode_id})" for r in df.itertuples()}
    ids = {str(r.failure_mode_id): f"{r.failure_mode} ({r.failure_mode_id})" for r in df.itertuples()}
    near = [labels.get(n) or ids[n] for n in close_matches(value, list(labels) + list(ids))]
    near = list(dict.fromkeys(near))
    hint = (f"close matches: {'; '.join(near)}. " if near else "") + \
        "Call fmsr_list_failure_modes with equipment_class Chiller, AHU or HVAC to see the catalog"
    raise ToolError("unknown_failure_mode", f"no failure mode has the id or name {value.strip()!r}", hint)


def _effects(df: pd.DataFrame) -> list[dict[str, Any]]:
    out = records(df, EFFECT_COLUMNS)
    for row in out:
        row["magnitude"] = rounded(row["magnitude"])
    return out


def _mode_summary(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row.get(k) for k in ("failure_mode_id", "failure_mode", "component", "equipment_class", "detectability")}


# -------------------------------------------------------------------------------------------- tools

def list_failure_modes(ctx: ToolContext, equipment_class: str, include_hvac: bool = False) -> dict[str, Any]:
    cls = resolve_class(equipment_class, CATALOG_CLASSES)
    modes = failure_modes_frame(ctx)
    selected = modes[modes["equipment_class"] == cls]
    if include_hvac and cls != "HVAC":
        effects = effects_frame(ctx)
        shared = set(effects[(effects["mode_class"] == "HVAC") & (effects["equipment_class"] == cls)]["failure_mode_id"])
        selected = modes[(modes["equipment_class"] == cls) | modes["failure_mode_id"].isin(shared)]
    out = [_mode_summary(r) for r in records(selected)]
    return {"equipment_class": cls, "include_hvac": bool(include_hvac), "count": len(out), "failure_modes": out}


def failure_mode_sensors(ctx: ToolContext, failure_mode: str, asset: str | None = None) -> dict[str, Any]:
    mode = resolve_failure_mode(ctx, failure_mode)
    effects = effects_frame(ctx)
    rows = effects[effects["failure_mode_id"] == mode["failure_mode_id"]]
    out: dict[str, Any] = {
        "failure_mode_id": mode["failure_mode_id"],
        "failure_mode": mode["failure_mode"],
        "equipment_class": mode["equipment_class"],
        "detectability": mode.get("detectability"),
    }
    record = None
    if asset is not None:
        record = resolve_asset(ctx, asset)
        rows = rows[rows["equipment_class"] == record["equipment_class"]]
        carried = set(asset_sensors(ctx, record["asset_id"])["sensor"])
        sensors = _effects(rows)
        for s in sensors:
            s["on_asset"] = s["sensor"] in carried
        out["asset_id"] = record["asset_id"]
    else:
        sensors = _effects(rows)
    out["count"] = len(sensors)
    out["sensors"] = sensors
    if not sensors:
        applies = sorted(set(effects[effects["failure_mode_id"] == mode["failure_mode_id"]]["equipment_class"]))
        out["note"] = (
            f"the catalog lists no effect of this mode on {record['equipment_class']} sensors; it affects "
            f"{', '.join(applies)} sensors"
            if record is not None and applies else
            "the catalog lists no telemetry signature for this mode: it is found by inspection, not by sensors"
        )
    return out


def sensor_failure_modes(
    ctx: ToolContext, sensor: str, equipment_class: str | None = None, asset: str | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    cls: str | None = None
    if equipment_class is not None:
        cls = resolve_class(equipment_class, CATALOG_CLASSES)
    if asset is not None:
        record = resolve_asset(ctx, asset)
        if cls is not None and cls not in (record["equipment_class"], "HVAC"):
            raise ToolError("invalid_arguments",
                            f"asset {record['name']} is a {record['equipment_class']}, not a {cls}",
                            "give either asset or equipment_class, or make them agree")
        cls = record["equipment_class"]
        name = resolve_sensor(ctx, record, sensor)["sensor"]
        out["asset_id"] = record["asset_id"]
    else:
        if not isinstance(sensor, str) or not sensor.strip():
            raise ToolError("invalid_arguments", f"argument 'sensor' must be a sensor name, got {sensor!r}")
        names = class_sensor_names(ctx, cls)
        name = match_name(sensor, names)
        if name is None:
            near = close_matches(sensor, names)
            where = f"{cls} " if cls else ""
            hint = (f"close matches: {', '.join(near)}; " if near else "") + \
                "call iot_list_sensors on an asset to see its sensor names"
            raise ToolError("unknown_sensor", f"no {where}sensor is named {sensor.strip()!r}", hint)
    effects = effects_frame(ctx)
    rows = effects[effects["sensor"] == name]
    if cls == "HVAC":
        rows = rows[rows["mode_class"] == "HVAC"]
    elif cls is not None:
        rows = rows[rows["equipment_class"] == cls]
    modes = []
    for r in records(rows):
        modes.append({
            "failure_mode_id": r["failure_mode_id"],
            "failure_mode": r["failure_mode"],
            "equipment_class": r["mode_class"],
            "component": r["component"],
            "sensor_class": r["equipment_class"],
            "direction": r["direction"],
            "shape": r["shape"],
            "magnitude": rounded(r["magnitude"]),
            "unit": r["unit"],
            "rationale": r["rationale"],
        })
    out.update({"sensor": name, "equipment_class": cls, "count": len(modes), "failure_modes": modes})
    return out


def sensor_metadata(ctx: ToolContext, asset: str, sensor: str) -> dict[str, Any]:
    record = resolve_asset(ctx, asset)
    row = resolve_sensor(ctx, record, sensor)
    name = row["sensor"]
    all_sensors = records(asset_sensors(ctx, record["asset_id"]))
    formula = row.get("formula") or ""
    depends_on = sorted(s["sensor"] for s in all_sensors if s["sensor"] != name and s["sensor"] in formula)
    used_by = sorted(s["sensor"] for s in all_sensors
                     if s["sensor"] != name and s.get("calculated") and name in (s.get("formula") or ""))
    first, last, n = sensor_data_range(ctx, record["asset_id"], name)
    effects = effects_frame(ctx)
    modes = sorted(set(effects[(effects["sensor"] == name)
                               & (effects["equipment_class"] == record["equipment_class"])]["failure_mode_id"]))
    return {
        "asset_id": record["asset_id"],
        "name": record["name"],
        "equipment_class": record["equipment_class"],
        "sensor": name,
        "component": row.get("component"),
        "measurement": row.get("measurement"),
        "unit": row["unit"],
        "calculated": bool(row["calculated"]),
        "formula": row.get("formula"),
        "depends_on": depends_on,
        "used_by": used_by,
        "plausible_range": {"min": plain(row.get("min_value")), "max": plain(row.get("max_value"))},
        "description": row.get("description"),
        "data": {"first_ts": fmt_ts(first), "last_ts": fmt_ts(last), "readings": n},
        "failure_mode_ids": modes,
    }


def failure_mode_details(ctx: ToolContext, failure_mode: str) -> dict[str, Any]:
    mode = resolve_failure_mode(ctx, failure_mode)
    codes = ctx.query(
        """SELECT primary_code, primary_code_description, secondary_code, secondary_code_description, category
           FROM failure_codes WHERE primary_code = ? ORDER BY secondary_code""",
        [mode.get("primary_code")],
    )
    primary_desc = plain(codes["primary_code_description"].iloc[0]) if len(codes) else None
    category = plain(codes["category"].iloc[0]) if len(codes) else None
    sec = codes[codes["secondary_code"] == mode.get("secondary_code")]
    secondary_desc = plain(sec["secondary_code_description"].iloc[0]) if len(sec) else None
    effects = effects_frame(ctx)
    rows = effects[effects["failure_mode_id"] == mode["failure_mode_id"]]
    rules = ctx.query(
        "SELECT rule_id, rule_name, equipment_class, sensor FROM alert_rules WHERE primary_code = ? ORDER BY rule_id",
        [mode.get("primary_code")],
    )
    out = dict(mode)
    out.update({
        "code_category": category,
        "primary_code_description": primary_desc,
        "secondary_code_description": secondary_desc,
        "applies_to": sorted(set(rows["equipment_class"])) or (
            [mode["equipment_class"]] if mode["equipment_class"] != "HVAC" else []),
        "sensors": _effects(rows),
        "alert_rules": records(rules),
    })
    return out


FAILURE_MODE_SCHEMA = {
    "type": "string",
    "minLength": 1,
    "description": "Failure-mode id (e.g. 'FM-CH-01') or exact name, case-insensitive.",
}

TOOLS: list[ToolSpec] = [
    ToolSpec(
        name="fmsr_list_failure_modes",
        group="fmsr",
        description=(
            "List the failure modes of the catalog for one equipment class: 'Chiller', 'AHU' or 'HVAC' (parts "
            "shared by chillers and AHUs, e.g. controls, valves, motors). Returns {equipment_class, include_hvac, "
            "count, failure_modes:[{failure_mode_id, failure_mode, component, equipment_class, detectability}]}. "
            "With include_hvac=true, HVAC modes whose catalog effects touch sensors of the given class are listed "
            "too (they can occur on that class)."
        ),
        parameters=object_schema({
            "equipment_class": {"type": "string",
                                "description": "'Chiller', 'AHU' or 'HVAC' (case-insensitive)."},
            "include_hvac": {"type": "boolean",
                             "description": "Also list HVAC modes that affect this class's sensors (default false)."},
        }, ["equipment_class"]),
        func=list_failure_modes,
    ),
    ToolSpec(
        name="fmsr_failure_mode_sensors",
        group="fmsr",
        description=(
            "Which sensors reveal a failure mode, from the catalog's sensor effects. Returns {failure_mode_id, "
            "failure_mode, equipment_class, detectability, count, sensors:[{sensor, equipment_class (class whose "
            "sensor it is), direction (increase|decrease|erratic), shape (step|ramp|spike|oscillation), magnitude "
            "(size of the full effect in the sensor's unit), unit, rationale (why the sensor moves)}]}. Give an "
            "asset to keep only effects on its class and to learn whether it carries each sensor (on_asset)."
        ),
        parameters=object_schema({
            "failure_mode": FAILURE_MODE_SCHEMA,
            "asset": {**ASSET_SCHEMA, "description": "Optional asset id or name: restrict to its class's sensors."},
        }, ["failure_mode"]),
        func=failure_mode_sensors,
    ),
    ToolSpec(
        name="fmsr_sensor_failure_modes",
        group="fmsr",
        description=(
            "Which failure modes a sensor can reveal, from the catalog's sensor effects, each explained. Returns "
            "{sensor, equipment_class, count, failure_modes:[{failure_mode_id, failure_mode, equipment_class "
            "(catalog class: Chiller, AHU or HVAC), component, sensor_class, direction, shape, magnitude, unit, "
            "rationale}]}. Give an asset (its class and sensor names are used) or an equipment_class; with "
            "neither, every class is searched. HVAC modes are included wherever their effect names this class's "
            "sensor; equipment_class='HVAC' keeps only HVAC modes."
        ),
        parameters=object_schema({
            "sensor": {"type": "string", "minLength": 1, "description": "Sensor name, e.g. 'Chiller Efficiency'."},
            "equipment_class": {"type": "string", "description": "'Chiller', 'AHU' or 'HVAC' (optional)."},
            "asset": {**ASSET_SCHEMA, "description": "Optional asset id or name; the sensor must be one of its sensors."},
        }, ["sensor"]),
        func=sensor_failure_modes,
    ),
    ToolSpec(
        name="fmsr_sensor_metadata",
        group="fmsr",
        description=(
            "Metadata of one sensor of an asset: component, measurement, unit, calculated flag and formula, "
            "depends_on (sensors its formula uses), used_by (calculated sensors that use it), plausible_range "
            "{min, max} in the sensor's unit, description, data {first_ts, last_ts, readings} and "
            "failure_mode_ids (catalog modes that move this sensor on the asset's class)."
        ),
        parameters=object_schema({
            "asset": ASSET_SCHEMA,
            "sensor": {"type": "string", "minLength": 1, "description": "Sensor name as listed by iot_list_sensors."},
        }, ["asset", "sensor"]),
        func=sensor_metadata,
    ),
    ToolSpec(
        name="fmsr_failure_mode_details",
        group="fmsr",
        description=(
            "The full catalog entry of a failure mode: failure_mode_id, equipment_class, component, failure_mode, "
            "degradation_mechanism, influencing_factors, detectability (high|medium|low), primary_code and "
            "secondary_code with their descriptions and code_category (the codes a corrective work order for it "
            "carries), recommended_action, applies_to (classes whose sensors it moves), sensors (its effects as in "
            "fmsr_failure_mode_sensors) and alert_rules mapped to its primary code."
        ),
        parameters=object_schema({"failure_mode": FAILURE_MODE_SCHEMA}, ["failure_mode"]),
        func=failure_mode_details,
    ),
]
