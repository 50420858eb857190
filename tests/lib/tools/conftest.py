"""Fixtures for the domain-tool tests.

Two worlds, each built once per session and stored through ``store_world`` (warehouse + Parquet snapshot):

- ``handmade``: a small world written by hand below, whose work-order sequences, alerts and bundles are
  chosen so that the Markov model, the alert statistics and the bundling have answers worked out by hand
  in the tests;
- ``world``: the generated ``tiny`` world (``generate_world(scale='tiny', seed=7)``) when the generator
  exists, else the hand-made one. Happy-path tests cross-check every tool against an independent pandas
  computation on the same frames, so they hold for either.

Each fixture yields a ``World(frames, settings, ctx)``; ``fresh_ctx`` gives a new ``ToolContext`` for tests
that record drafts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from aob_pipeline.lib.settings import Settings
from aob_pipeline.lib.tools.base import ToolContext
from aob_pipeline.lib.world.store import store_world, world_snapshot_dir

TELEMETRY_START = datetime(2020, 6, 1)
TELEMETRY_END = datetime(2020, 6, 4)
NOW = datetime(2020, 6, 4)


@dataclass
class World:
    frames: dict[str, pd.DataFrame]
    settings: Settings
    ctx: ToolContext
    source: str

    @property
    def snapshot_dir(self) -> Path:
        return world_snapshot_dir(self.settings)


# ------------------------------------------------------------------------------------ hand-made world

CHILLER_SENSORS = [
    # sensor, component, measurement, unit, calculated, formula, min, max
    ("Supply Temperature", "evaporator", "temperature", "degF", False, None, 35.0, 60.0),
    ("Return Temperature", "evaporator", "temperature", "degF", False, None, 40.0, 70.0),
    ("Chilled Water Flow", "evaporator", "flow", "gpm", False, None, 0.0, 3000.0),
    ("Power Input", "compressor", "power", "kW", False, None, 0.0, 800.0),
    ("Tonnage", "evaporator", "cooling load", "tons", True,
     "500 * Chilled Water Flow * (Return Temperature - Supply Temperature) / 12000", 0.0, 1200.0),
    ("Chiller Efficiency", "chiller", "efficiency", "kW/ton", True, "Power Input / Tonnage", 0.2, 2.0),
]
AHU_SENSORS = [
    ("Supply Air Temperature", "supply fan", "temperature", "degF", False, None, 45.0, 80.0),
    ("Supply Fan Speed", "supply fan", "speed", "%", False, None, 0.0, 100.0),
    ("Filter Differential Pressure", "filter", "pressure", "inH2O", False, None, 0.0, 3.0),
]


def handmade_frames() -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(11)
    frames: dict[str, pd.DataFrame] = {}
    frames["world_meta"] = pd.DataFrame({
        "key": ["seed", "scale", "source", "telemetry_start", "telemetry_end", "now"],
        "value": ["11", "handmade", "handmade", TELEMETRY_START.isoformat(), TELEMETRY_END.isoformat(),
                  NOW.isoformat()],
    })
    frames["sites"] = pd.DataFrame({
        "site_id": ["MAIN", "EAST", "NORTH"],
        "name": ["Main Campus", "East Campus", "North Yard"],
        "city": ["Yorktown", "Albany", "Buffalo"],
        "timezone": ["America/New_York"] * 3,
        "latitude": [41.2, 42.6, 42.9],
        "longitude": [-73.8, -73.7, -78.8],
    })
    assets = [
        ("CWC04006", "Chiller 6", "Chiller", "MAIN", 500.0, "tons"),
        ("CWC04009", "Chiller 9", "Chiller", "MAIN", 650.0, "tons"),
        ("CWC04013", "Chiller 13", "Chiller", "EAST", 400.0, "tons"),
        ("AHU01003", "AHU 3", "AHU", "MAIN", 20000.0, "CFM"),
        ("AHU01004", "AHU 4", "AHU", "EAST", 15000.0, "CFM"),  # no sensors wired, no work order yet
    ]
    frames["assets"] = pd.DataFrame({
        "asset_id": [a[0] for a in assets],
        "name": [a[1] for a in assets],
        "equipment_class": [a[2] for a in assets],
        "site_id": [a[3] for a in assets],
        "install_date": pd.to_datetime(["2010-05-01", "2012-07-15", "2015-03-01", "2011-01-10", "2020-05-01"]).date,
        "manufacturer": ["Trane", "Carrier", "York", "Daikin", "Daikin"],
        "model": ["CVHF", "19XR", "YK", "Vision", "Vision"],
        "capacity": [a[4] for a in assets],
        "capacity_unit": [a[5] for a in assets],
    })
    sensor_rows = []
    for asset_id, _, cls, *_ in assets:
        if asset_id == "AHU01004":
            continue
        spec = CHILLER_SENSORS if cls == "Chiller" else AHU_SENSORS
        for sensor, comp, meas, unit, calc, formula, lo, hi in spec:
            if asset_id == "CWC04013" and sensor in ("Power Input", "Chiller Efficiency"):
                continue  # Chiller 13 lacks a power meter: the 'missing sensor' case
            sensor_rows.append((asset_id, sensor, comp, meas, unit, calc, formula, lo, hi, f"{sensor} of the {comp}"))
    frames["sensors"] = pd.DataFrame(sensor_rows, columns=[
        "asset_id", "sensor", "component", "measurement", "unit", "calculated", "formula", "min_value", "max_value",
        "description"])

    stamps = pd.date_range(TELEMETRY_START, TELEMETRY_END, freq="15min", inclusive="left")
    tele = []
    for asset_id, sensor in frames["sensors"][["asset_id", "sensor"]].itertuples(index=False):
        ts = stamps
        if asset_id == "CWC04006":  # a four-hour gap on June 2
            ts = ts[(ts < "2020-06-02 08:00") | (ts >= "2020-06-02 12:00")]
        if asset_id == "CWC04009" and sensor == "Supply Temperature":  # only one day of data
            ts = ts[ts < "2020-06-02"]
        if asset_id == "AHU01003" and sensor == "Supply Fan Speed":  # a few seconds of jitter
            ts = ts + pd.to_timedelta(rng.integers(0, 8, len(ts)), unit="s")
        base = {"Supply Temperature": 44.0, "Return Temperature": 54.0, "Chilled Water Flow": 1200.0,
                "Power Input": 300.0, "Tonnage": 500.0, "Chiller Efficiency": 0.6,
                "Supply Air Temperature": 55.0, "Supply Fan Speed": 70.0, "Filter Differential Pressure": 0.8}[sensor]
        hours = (ts - ts[0]).total_seconds().to_numpy() / 3600.0
        values = base * (1 + 0.05 * np.sin(2 * np.pi * hours / 24)) + rng.normal(0, base * 0.01, len(ts))
        tele.append(pd.DataFrame({"asset_id": asset_id, "sensor": sensor, "ts": ts, "value": np.round(values, 3)}))
    frames["telemetry"] = pd.concat(tele, ignore_index=True)

    modes = [
        # id, class, component, name, detectability, primary, secondary
        ("FM-CH-01", "Chiller", "condenser", "Condenser Fouling", "high", "MT010", "MT010a"),
        ("FM-CH-02", "Chiller", "refrigerant circuit", "Refrigerant Leak", "medium", "RF020", "RF020a"),
        ("FM-CH-03", "Chiller", "compressor", "Compressor Bearing Wear", "low", "MT011", "MT011a"),
        ("FM-AHU-01", "AHU", "filter", "Filter Clogging", "high", "MT030", "MT030a"),
        ("FM-HV-01", "HVAC", "controls", "Temperature Sensor Drift", "medium", "CT040", "CT040a"),
        ("FM-HV-02", "HVAC", "motor", "Motor Overheating", "medium", "EL050", "EL050a"),
    ]
    frames["failure_modes"] = pd.DataFrame({
        "failure_mode_id": [m[0] for m in modes],
        "equipment_class": [m[1] for m in modes],
        "component": [m[2] for m in modes],
        "failure_mode": [m[3] for m in modes],
        "degradation_mechanism": [f"{m[3]} develops over weeks" for m in modes],
        "influencing_factors": ["load, water quality"] * len(modes),
        "detectability": [m[4] for m in modes],
        "primary_code": [m[5] for m in modes],
        "secondary_code": [m[6] for m in modes],
        "recommended_action": [f"inspect the {m[2]}" for m in modes],
    })
    effects = [
        ("FM-CH-01", "Chiller", "Power Input", "increase", "ramp", 40.0, "the compressor works against a higher head"),
        ("FM-CH-01", "Chiller", "Chiller Efficiency", "increase", "ramp", 0.15, "more kW per ton of cooling"),
        ("FM-CH-02", "Chiller", "Supply Temperature", "increase", "ramp", 3.0, "less refrigerant, less cooling"),
        ("FM-CH-02", "Chiller", "Tonnage", "decrease", "ramp", 60.0, "capacity falls with the charge"),
        ("FM-AHU-01", "AHU", "Filter Differential Pressure", "increase", "ramp", 0.9, "a loaded filter resists flow"),
        ("FM-AHU-01", "AHU", "Supply Fan Speed", "increase", "ramp", 10.0, "the fan speeds up to keep the flow"),
        ("FM-HV-01", "Chiller", "Supply Temperature", "erratic", "oscillation", 2.0, "a drifting sensor reads wrong"),
        ("FM-HV-01", "AHU", "Supply Air Temperature", "erratic", "oscillation", 2.5, "a drifting sensor reads wrong"),
        ("FM-HV-02", "AHU", "Supply Fan Speed", "decrease", "step", 15.0, "the drive derates a hot motor"),
    ]
    frames["failure_mode_sensors"] = pd.DataFrame(effects, columns=[
        "failure_mode_id", "equipment_class", "sensor", "direction", "shape", "magnitude", "rationale"])
    codes = [
        ("Mechanical", "MT010", "Condenser service", "MT010a", "Condenser tube cleaning"),
        ("Mechanical", "MT010", "Condenser service", "MT010b", "Condenser tube replacement"),
        ("Mechanical", "MT011", "Compressor repair", "MT011a", "Bearing replacement"),
        ("Mechanical", "MT030", "Filter service", "MT030a", "Filter replacement"),
        ("Refrigerant", "RF020", "Refrigerant leak repair", "RF020a", "Leak search and recharge"),
        ("Controls", "CT040", "Sensor calibration", "CT040a", "Recalibrate temperature sensor"),
        ("Electrical", "EL050", "Motor repair", "EL050a", "Motor rewind"),
        ("Preventive", "PM001", "Scheduled inspection", "PM001a", "Quarterly inspection"),
        ("Preventive", "PM002", "Annual overhaul", "PM002a", "Annual overhaul"),
    ]
    frames["failure_codes"] = pd.DataFrame(codes, columns=[
        "category", "primary_code", "primary_code_description", "secondary_code", "secondary_code_description"])
    frames["alert_rules"] = pd.DataFrame([
        ("RUL0001", "High supply temperature", "Chiller", "Supply Temperature", ">", 48.0, 30,
         "Supply Temperature > 48 degF for 30 min", "RF020"),
        ("RUL0002", "Poor chiller efficiency", "Chiller", "Chiller Efficiency", ">", 0.9, 60,
         "Chiller Efficiency > 0.9 kW/ton for 60 min", "MT010"),
        ("RUL0003", "Filter loaded", "AHU", "Filter Differential Pressure", ">", 1.5, 60,
         "Filter Differential Pressure > 1.5 inH2O for 60 min", "MT030"),
    ], columns=["rule_id", "rule_name", "equipment_class", "sensor", "operator", "threshold",
                "min_duration_minutes", "rule_logic", "primary_code"])

    descr = {c[1]: c[2] for c in codes}
    names = dict(zip(frames["assets"]["asset_id"], frames["assets"]["name"]))
    wos = [
        # wo_id, asset, code, preventive, priority, finished_at
        ("W601", "CWC04006", "PM001", True, 4, "2019-01-10 10:00"),
        ("W602", "CWC04006", "MT010", False, 2, "2019-03-01 10:00"),
        ("W603", "CWC04006", "PM001", True, 4, "2019-03-05 09:00"),
        ("W604", "CWC04006", "MT010", False, 2, "2019-03-06 15:00"),
        ("W605", "CWC04006", "RF020", False, 1, "2019-03-12 12:00"),
        ("W606", "CWC04006", "PM001", True, 4, "2020-05-20 08:00"),
        ("W607", "CWC04006", "MT011", False, 1, "2020-07-01 08:00"),  # after 'now': never counted
        ("W901", "CWC04009", "PM001", True, 4, "2019-02-01 10:00"),
        ("W902", "CWC04009", "PM001", True, 4, "2019-05-01 10:00"),
        ("W903", "CWC04009", "MT010", False, 3, "2019-05-03 10:00"),
        ("W904", "CWC04009", "PM002", True, 5, "2019-08-01 10:00"),
        ("W131", "CWC04013", "MT011", False, 2, "2019-04-01 10:00"),
        ("W132", "CWC04013", "PM001", True, 4, "2019-06-01 10:00"),
        ("W133", "CWC04013", "MT010", False, 3, "2019-06-02 10:00"),
        ("W031", "AHU01003", "PM001", True, 4, "2019-01-15 10:00"),
        ("W032", "AHU01003", "MT030", False, 3, "2019-09-01 10:00"),
        ("W033", "AHU01003", "MT030", False, 3, "2019-09-04 10:00"),
        ("W034", "AHU01003", "PM001", True, 4, "2020-01-15 10:00"),
    ]
    frames["work_orders"] = pd.DataFrame({
        "wo_id": [w[0] for w in wos],
        "wo_description": [f"{descr[w[2]]} on {names[w[1]]}" for w in wos],
        "collection": ["HVAC"] * len(wos),
        "primary_code": [w[2] for w in wos],
        "primary_code_description": [descr[w[2]] for w in wos],
        "secondary_code": [w[2] + "a" for w in wos],
        "secondary_code_description": [descr[w[2]] for w in wos],
        "asset_id": [w[1] for w in wos],
        "equipment_name": [names[w[1]] for w in wos],
        "preventive": [w[3] for w in wos],
        "priority": [w[4] for w in wos],
        "finished_at": pd.to_datetime([w[5] for w in wos]),
        "duration_hours": [2.5 + i * 0.25 for i in range(len(wos))],
        "labor_hours": [3.0 + i * 0.5 for i in range(len(wos))],
    })
    alerts = [
        ("AL1", "CWC04006", "RUL0001", "2019-02-25 08:00"),  # W602 after 4.0833 days
        ("AL2", "CWC04006", "RUL0001", "2019-06-01 08:00"),  # nothing within 30 days
        ("AL3", "CWC04009", "RUL0002", "2019-04-20 10:00"),  # W903 after 13 days
        ("AL4", "AHU01003", "RUL0003", "2019-08-30 10:00"),  # W032 after 2 days
        ("AL5", "CWC04006", "RUL0002", "2020-06-02 08:00"),  # W607 lies after 'now': not followed
        ("AL6", "CWC04006", "RUL0002", "2020-06-10 08:00"),  # after 'now': not counted at all
    ]
    frames["alerts"] = pd.DataFrame({
        "alert_id": [a[0] for a in alerts],
        "asset_id": [a[1] for a in alerts],
        "equipment_name": [names[a[1]] for a in alerts],
        "rule_id": [a[2] for a in alerts],
        "start_time": pd.to_datetime([a[3] for a in alerts]),
        "end_time": pd.to_datetime([a[3] for a in alerts]) + pd.Timedelta(hours=2),
    })
    frames["anomalies"] = pd.DataFrame({
        "anomaly_id": ["AN1", "AN2"],
        "asset_id": ["CWC04006", "CWC04006"],
        "kpi": ["Chiller Efficiency", "Tonnage"],
        "ts": pd.to_datetime(["2020-06-02 14:00", "2020-06-03 02:00"]),
        "value": [0.95, 610.0],
        "upper_bound": [0.8, 580.0],
        "lower_bound": [0.4, 300.0],
        "anomaly_score": [3.1, 2.2],
    })
    wo = frames["work_orders"]
    ev_wo = pd.DataFrame({
        "event_id": "E-" + wo["wo_id"], "event_group": "WORK_ORDER",
        "event_category": np.where(wo["preventive"], "PM", "CM"), "event_type": wo["primary_code"],
        "description": wo["wo_description"], "asset_id": wo["asset_id"], "equipment_name": wo["equipment_name"],
        "event_time": wo["finished_at"], "note": None,
    })
    al = frames["alerts"]
    ev_al = pd.DataFrame({
        "event_id": "E-" + al["alert_id"], "event_group": "ALERT", "event_category": "ALERT",
        "event_type": al["rule_id"], "description": "alert " + al["rule_id"], "asset_id": al["asset_id"],
        "equipment_name": al["equipment_name"], "event_time": al["start_time"], "note": None,
    })
    an = frames["anomalies"]
    ev_an = pd.DataFrame({
        "event_id": "E-" + an["anomaly_id"], "event_group": "ANOMALY", "event_category": "ANOMALY",
        "event_type": an["kpi"], "description": "anomaly of " + an["kpi"], "asset_id": an["asset_id"],
        "equipment_name": an["asset_id"].map(names), "event_time": an["ts"], "note": None,
    })
    frames["events"] = pd.concat([ev_wo, ev_al, ev_an], ignore_index=True)
    frames["injected_faults"] = pd.DataFrame({
        "fault_id": ["F1"], "asset_id": ["CWC04006"], "failure_mode_id": ["FM-CH-01"],
        "onset_ts": [datetime(2020, 6, 2, 12)], "end_ts": [datetime(2020, 6, 3)], "severity": [0.7],
        "in_telemetry": [True], "wo_id": [None],
    })
    return frames


# ------------------------------------------------------------------------------------------ fixtures

def _store(tmp_root: Path, frames: dict[str, pd.DataFrame], source: str) -> World:
    settings = Settings(home=tmp_root)
    store_world(settings, frames)
    return World(frames=frames, settings=settings, ctx=ToolContext(world_snapshot_dir(settings)), source=source)


def _generated_frames() -> dict[str, Any] | None:
    try:
        from aob_pipeline.lib.world.generate import generate_world
    except ImportError:
        return None
    return generate_world(scale="tiny", seed=7)


def _as_pandas(frames: dict[str, Any]) -> dict[str, pd.DataFrame]:
    return {k: (v if isinstance(v, pd.DataFrame) else v.to_pandas()) for k, v in frames.items()}


@pytest.fixture(scope="session")
def handmade(tmp_path_factory) -> World:
    world = _store(tmp_path_factory.mktemp("handmade_home"), handmade_frames(), "handmade")
    yield world
    world.ctx.close()


@pytest.fixture(scope="session")
def world(tmp_path_factory, handmade) -> World:
    frames = _generated_frames()
    if frames is None:
        yield handmade
        return
    built = _store(tmp_path_factory.mktemp("tiny_home"), _as_pandas(frames), "generated")
    # the frames the tests compare against are the stored tables (types cast to the schema)
    from aob_pipeline.lib.warehouse import connect
    from aob_pipeline.lib.world.schema import WORLD_TABLES

    with connect(built.settings.warehouse_path, read_only=True) as con:
        built.frames = {name: con.execute(f'SELECT * FROM "{name}"').df() for name in WORLD_TABLES}
    yield built
    built.ctx.close()


@pytest.fixture
def fresh_ctx(handmade) -> ToolContext:
    ctx = ToolContext(handmade.snapshot_dir)
    yield ctx
    ctx.close()


def rows_between(df: pd.DataFrame, column: str, start: Any, end: Any) -> pd.DataFrame:
    """Rows of ``df`` with ``start <= column < end`` (independent of the tools' SQL)."""
    col = pd.to_datetime(df[column])
    return df[(col >= pd.Timestamp(start)) & (col < pd.Timestamp(end))]


@pytest.fixture(scope="session")
def between():
    """``between(df, column, start, end)``: the rows of a frame in a half-open window."""
    return rows_between
