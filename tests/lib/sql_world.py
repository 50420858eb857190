"""A small hand-built world for the SQL-model and quality tests, with numbers worked out by hand.

Two days of telemetry (2024-07-01 and 2024-07-02, 15-minute cadence) for two chillers and one AHU:

- Chillers run 06:00-22:00 (64 buckets = 16 run hours a day). While running: Supply 44 degF, Setpoint 44,
  Return 54 (chilled-water dT 10), evaporator refrigerant 41 (approach 3), chilled-water flow 1200 gpm,
  Tonnage 500 (= 1200 * 10 / 24), Power 300 kW, Chiller Efficiency 0.6 kW/ton, 100 % loaded, condenser water
  85 in / 95 out (dT 10). Off: Run Status 0, flows, tonnage, power and efficiency 0.
- AHU runs 06:00-20:00 (56 buckets = 14 h). Supply air 55 degF on day 1 and 58 on day 2 against a
  55 setpoint (deviation 0, then +3), fan 10 kW at 20,000 CFM (0.5 W/CFM), filter dP 0.5 then 0.8 inH2O.
- Jitter: readings of Supply Temperature on CWC04001 are a few seconds off the grid (one at 10:59:58, which
  belongs to the 11:00 bucket); one extra reading (12:00:40) duplicates the 12:00 bucket and must be dropped
  by stg_telemetry; CWC04002 lost two Power Input readings (10:15 and 10:30 on day 1).
- Work orders on CWC04001: corrective on 2024-01-01, 01-11 and 01-31 (gaps 10 and 20 days: MTBF 15 days),
  preventive 2024-01-15 and 2024-02-15; CWC04002: one corrective 2024-03-01; AHU01001: one preventive.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from aob_pipeline.lib.world.store import with_mapping_tables

TELEMETRY_START = datetime(2024, 7, 1)
TELEMETRY_END = datetime(2024, 7, 3)
NOW = datetime(2024, 7, 3)
CHILLERS = ("CWC04001", "CWC04002")
AHU = "AHU01001"

CHILLER_SENSORS = [
    # sensor, component, measurement, unit, calculated, min, max
    ("Supply Temperature", "evaporator", "temperature", "degF", False, 32, 90),
    ("Return Temperature", "evaporator", "temperature", "degF", False, 32, 90),
    ("Setpoint Temperature", "controls", "temperature", "degF", False, 38, 55),
    ("Chilled Water Flow", "evaporator", "flow", "gpm", False, 0, 1800),
    ("Tonnage", "evaporator", "cooling load", "tons", True, 0, 650),
    ("Power Input", "compressor", "power", "kW", False, 0, 450),
    ("Chiller Efficiency", "chiller", "efficiency", "kW/ton", True, 0, 3),
    ("Chiller % Loaded", "chiller", "load", "%", True, 0, 130),
    ("Liquid Refrigerant Evaporator Temperature", "evaporator", "temperature", "degF", False, 15, 90),
    ("Condenser Water Supply Temperature", "condenser", "temperature", "degF", False, 40, 105),
    ("Condenser Water Return To Tower Temperature", "condenser", "temperature", "degF", False, 40, 115),
    ("Condenser Water Flow", "condenser", "flow", "gpm", False, 0, 2250),
    ("Run Status", "chiller", "status", "0/1", False, 0, 1),
]
AHU_SENSORS = [
    ("Supply Air Temperature", "cooling coil", "temperature", "degF", False, 35, 100),
    ("Supply Air Temperature Setpoint", "controls", "temperature", "degF", False, 50, 65),
    ("Supply Fan Speed", "supply fan", "speed", "%", False, 0, 100),
    ("Supply Fan Power", "supply fan", "power", "kW", False, 0, 30),
    ("Supply Airflow", "supply fan", "flow", "CFM", False, 0, 26000),
    ("Filter Differential Pressure", "filter bank", "pressure", "inH2O", False, 0, 2.5),
    ("Duct Static Pressure", "supply duct", "pressure", "inH2O", False, 0, 4),
    ("Duct Static Pressure Setpoint", "controls", "pressure", "inH2O", False, 0.5, 3),
    ("Supply Fan Status", "supply fan", "status", "0/1", False, 0, 1),
]

CHILLER_RUNNING = {
    "Supply Temperature": 44.0, "Return Temperature": 54.0, "Setpoint Temperature": 44.0,
    "Chilled Water Flow": 1200.0, "Tonnage": 500.0, "Power Input": 300.0, "Chiller Efficiency": 0.6,
    "Chiller % Loaded": 100.0, "Liquid Refrigerant Evaporator Temperature": 41.0,
    "Condenser Water Supply Temperature": 85.0, "Condenser Water Return To Tower Temperature": 95.0,
    "Condenser Water Flow": 1500.0, "Run Status": 1.0,
}
CHILLER_OFF = {
    **CHILLER_RUNNING, "Return Temperature": 45.0, "Chilled Water Flow": 0.0, "Tonnage": 0.0, "Power Input": 0.0,
    "Chiller Efficiency": 0.0, "Chiller % Loaded": 0.0, "Condenser Water Return To Tower Temperature": 85.0,
    "Condenser Water Flow": 0.0, "Run Status": 0.0,
}

FAILURE_CODES = [
    # category, primary, primary description, secondary, secondary description
    ("Maintenance", "MT010", "Oil Analysis", "MT010a", "Routine Oil Analysis"),
    ("Maintenance", "MT010", "Oil Analysis", "MT010b", "Oil Change"),
    ("Maintenance", "MT001", "Routine Maintenance", "MT001a", "Quarterly Inspection"),
    ("Controls", "CS005", "Control System Malfunction", "CS005a", "Flow Switch Failure"),
    ("Refrigerant", "RF001", "Refrigerant Leak", "RF001a", "Evaporator Tube Leak"),
    ("Electrical", "EL002", "Motor Failure", "EL002a", "Compressor Motor Winding"),
]


def _grid() -> pd.DatetimeIndex:
    return pd.date_range(TELEMETRY_START, TELEMETRY_END, freq="15min", inclusive="left")


def _telemetry() -> pd.DataFrame:
    grid = _grid()
    hours = grid.hour + grid.minute / 60.0
    frames = []
    for asset in CHILLERS:
        running = (hours >= 6) & (hours < 22)
        for sensor, *_ in CHILLER_SENSORS:
            values = np.where(running, CHILLER_RUNNING[sensor], CHILLER_OFF[sensor])
            frames.append(pd.DataFrame({"asset_id": asset, "sensor": sensor, "ts": grid, "value": values}))
    running = (hours >= 6) & (hours < 20)
    day2 = grid.day == 2
    ahu_values = {
        "Supply Air Temperature": np.where(running, np.where(day2, 58.0, 55.0), 75.0),
        "Supply Air Temperature Setpoint": np.full(len(grid), 55.0),
        "Supply Fan Speed": np.where(running, 70.0, 0.0),
        "Supply Fan Power": np.where(running, 10.0, 0.0),
        "Supply Airflow": np.where(running, 20000.0, 0.0),
        "Filter Differential Pressure": np.where(running, np.where(day2, 0.8, 0.5), 0.0),
        "Duct Static Pressure": np.where(running, 1.5, 0.0),
        "Duct Static Pressure Setpoint": np.full(len(grid), 1.5),
        "Supply Fan Status": running.astype(float),
    }
    for sensor, values in ahu_values.items():
        frames.append(pd.DataFrame({"asset_id": AHU, "sensor": sensor, "ts": grid, "value": values}))
    telemetry = pd.concat(frames, ignore_index=True)

    # Jitter on CWC04001 Supply Temperature: a few seconds either side of the grid.
    jittered = (telemetry.asset_id == "CWC04001") & (telemetry.sensor == "Supply Temperature")
    offsets = np.resize(np.array([3, -2, 0, 4], dtype="int64"), int(jittered.sum()))
    telemetry.loc[jittered, "ts"] = telemetry.loc[jittered, "ts"] + pd.to_timedelta(offsets, unit="s")
    eleven = jittered & ((telemetry.ts - pd.Timestamp("2024-07-01 11:00:00")).abs() < pd.Timedelta(minutes=1))
    telemetry.loc[eleven, "ts"] = pd.Timestamp("2024-07-01 10:59:58")
    # One extra reading in the 12:00 bucket of day 1 (further from the bucket time: must be dropped).
    extra = pd.DataFrame({"asset_id": ["CWC04001"], "sensor": ["Supply Temperature"],
                          "ts": [pd.Timestamp("2024-07-01 12:00:40")], "value": [47.0]})
    # Two lost Power Input readings on CWC04002.
    lost = (telemetry.asset_id == "CWC04002") & (telemetry.sensor == "Power Input") & telemetry.ts.isin(
        [pd.Timestamp("2024-07-01 10:15"), pd.Timestamp("2024-07-01 10:30")]
    )
    telemetry = pd.concat([telemetry[~lost], extra], ignore_index=True)
    return telemetry.sort_values(["asset_id", "sensor", "ts"], ignore_index=True)


def _failure_modes() -> pd.DataFrame:
    rows = []
    codes = [c[1] for c in FAILURE_CODES]
    for prefix, cls, count in (("CH", "Chiller", 20), ("AHU", "AHU", 20), ("HV", "HVAC", 13)):
        for n in range(1, count + 1):
            rows.append({
                "failure_mode_id": f"FM-{prefix}-{n:02d}", "equipment_class": cls, "component": "component",
                "failure_mode": f"{cls} mode {n}", "degradation_mechanism": "wear", "influencing_factors": "age",
                "detectability": "medium", "primary_code": codes[n % len(codes)], "secondary_code": None,
                "recommended_action": "inspect",
            })
    return pd.DataFrame(rows)


def _work_orders() -> pd.DataFrame:
    rows = [
        ("WO-001", "CWC04001", False, 2, "2024-01-01 08:00", "RF001", "RF001a", 6.0, 8.0),
        ("WO-002", "CWC04001", False, 1, "2024-01-11 08:00", "EL002", "EL002a", 10.0, 12.0),
        ("WO-003", "CWC04001", True, 4, "2024-01-15 09:00", "MT001", "MT001a", 2.0, 2.0),
        ("WO-004", "CWC04001", False, 3, "2024-01-31 08:00", "CS005", "CS005a", 3.0, 4.5),
        ("WO-005", "CWC04001", True, 4, "2024-02-15 09:00", "MT010", "MT010a", 1.5, 1.5),
        ("WO-006", "CWC04002", False, 2, "2024-03-01 14:00", "RF001", "RF001a", 5.0, 6.0),
        ("WO-007", "AHU01001", True, 5, "2024-02-01 10:00", "MT001", "MT001a", 1.0, 1.0),
    ]
    descriptions = {c[1]: c[2] for c in FAILURE_CODES}
    secondary = {c[3]: c[4] for c in FAILURE_CODES}
    names = {"CWC04001": "Chiller 1", "CWC04002": "Chiller 2", "AHU01001": "AHU 1"}
    return pd.DataFrame([
        {
            "wo_id": wo, "wo_description": ("PM " if prev else "Repair ") + descriptions[p], "collection": "HVAC",
            "primary_code": p, "primary_code_description": descriptions[p], "secondary_code": s,
            "secondary_code_description": secondary[s], "asset_id": asset, "equipment_name": names[asset],
            "preventive": prev, "priority": prio, "finished_at": pd.Timestamp(at), "duration_hours": dur,
            "labor_hours": lab,
        }
        for wo, asset, prev, prio, at, p, s, dur, lab in rows
    ])


def handbuilt_frames() -> dict[str, pd.DataFrame]:
    """Every world table (as in WORLD_TABLES), small and hand-checked."""
    frames: dict[str, pd.DataFrame] = {}
    frames["world_meta"] = pd.DataFrame({
        "key": ["seed", "scale", "source", "telemetry_start", "telemetry_end", "now"],
        "value": ["1", "handbuilt", "handbuilt", TELEMETRY_START.isoformat(), TELEMETRY_END.isoformat(), NOW.isoformat()],
    })
    frames["sites"] = pd.DataFrame({
        "site_id": ["MAIN", "EAST"], "name": ["Main Campus", "East Campus"], "city": ["Yorktown", "Albany"],
        "timezone": ["America/New_York"] * 2, "latitude": [41.2, 42.6], "longitude": [-73.8, -73.7],
    })
    frames["assets"] = pd.DataFrame({
        "asset_id": [*CHILLERS, AHU], "name": ["Chiller 1", "Chiller 2", "AHU 1"],
        "equipment_class": ["Chiller", "Chiller", "AHU"], "site_id": ["MAIN", "EAST", "MAIN"],
        "install_date": pd.to_datetime(["2014-07-03", "2018-01-01", "2020-07-03"]).date,
        "manufacturer": ["Trane", "Carrier", "Daikin"], "model": ["CVHE", "19XR", "Vision"],
        "capacity": [500.0, 500.0, 20000.0], "capacity_unit": ["tons", "tons", "CFM"],
    })
    sensor_rows = []
    for asset, catalog in ((CHILLERS[0], CHILLER_SENSORS), (CHILLERS[1], CHILLER_SENSORS), (AHU, AHU_SENSORS)):
        for sensor, component, measurement, unit, calculated, low, high in catalog:
            sensor_rows.append({
                "asset_id": asset, "sensor": sensor, "component": component, "measurement": measurement,
                "unit": unit, "calculated": calculated, "formula": "see catalog" if calculated else None,
                "min_value": float(low), "max_value": float(high), "description": sensor,
            })
    frames["sensors"] = pd.DataFrame(sensor_rows)
    frames["telemetry"] = _telemetry()
    frames["failure_modes"] = _failure_modes()
    frames["failure_mode_sensors"] = pd.DataFrame({
        "failure_mode_id": ["FM-CH-01", "FM-CH-01", "FM-AHU-01"], "equipment_class": ["Chiller", "Chiller", "AHU"],
        "sensor": ["Chiller Efficiency", "Power Input", "Filter Differential Pressure"],
        "direction": ["increase", "increase", "increase"], "shape": ["ramp", "ramp", "ramp"],
        "magnitude": [0.2, 40.0, 0.6], "rationale": ["fouling", "fouling", "loading"],
    })
    frames["failure_codes"] = pd.DataFrame(
        FAILURE_CODES,
        columns=["category", "primary_code", "primary_code_description", "secondary_code", "secondary_code_description"],
    )
    frames["alert_rules"] = pd.DataFrame({
        "rule_id": ["RUL001", "RUL002"], "rule_name": ["Chiller - High kW per Ton", "Chiller - Low Supply Temperature"],
        "equipment_class": ["Chiller", "Chiller"], "sensor": ["Chiller Efficiency", "Supply Temperature"],
        "operator": [">", "<"], "threshold": [0.8, 40.0], "min_duration_minutes": [30, 30],
        "rule_logic": ["kW/ton above 0.8 for 30 min", "supply below 40 degF for 30 min"], "primary_code": ["MT010", "CS005"],
    })
    work_orders = _work_orders()
    frames["work_orders"] = work_orders
    alerts = pd.DataFrame({
        "alert_id": ["AL-1", "AL-2", "AL-3"], "asset_id": ["CWC04001", "CWC04001", "CWC04002"],
        "equipment_name": ["Chiller 1", "Chiller 1", "Chiller 2"], "rule_id": ["RUL001", "RUL001", "RUL002"],
        "start_time": pd.to_datetime(["2024-07-01 13:00", "2024-07-02 13:00", "2024-07-01 07:00"]),
        "end_time": pd.to_datetime(["2024-07-01 14:00", "2024-07-02 13:30", "2024-07-01 07:45"]),
    })
    frames["alerts"] = alerts
    frames["anomalies"] = pd.DataFrame({
        "anomaly_id": ["AN-1"], "asset_id": ["CWC04001"], "kpi": ["Chiller Efficiency"],
        "ts": [pd.Timestamp("2024-07-02 15:00")], "value": [0.95], "upper_bound": [0.75], "lower_bound": [0.45],
        "anomaly_score": [2.5],
    })
    events = [
        {"event_id": f"E-{w.wo_id}", "event_group": "WORK_ORDER", "event_category": "PM" if w.preventive else "CM",
         "event_type": w.primary_code, "description": w.wo_description, "asset_id": w.asset_id,
         "equipment_name": w.equipment_name, "event_time": w.finished_at, "note": None}
        for w in work_orders.itertuples()
    ]
    events += [
        {"event_id": f"E-{a.alert_id}", "event_group": "alert ", "event_category": "ALERT", "event_type": a.rule_id,
         "description": "alert", "asset_id": a.asset_id, "equipment_name": a.equipment_name,
         "event_time": a.start_time, "note": None}
        for a in alerts.itertuples()
    ]
    events.append({"event_id": "E-AN-1", "event_group": "ANOMALY", "event_category": "ANOMALY",
                   "event_type": "Chiller Efficiency", "description": "kW/ton above band", "asset_id": "CWC04001",
                   "equipment_name": "Chiller 1", "event_time": pd.Timestamp("2024-07-02 15:00"), "note": None})
    frames["events"] = pd.DataFrame(events)
    frames["injected_faults"] = pd.DataFrame({
        "fault_id": ["F-1"], "asset_id": ["CWC04001"], "failure_mode_id": ["FM-CH-01"],
        "onset_ts": [pd.Timestamp("2024-07-02 12:00")], "end_ts": [pd.Timestamp("2024-07-02 18:00")],
        "severity": [0.5], "in_telemetry": [True], "wo_id": [None],
    })
    return dict(with_mapping_tables(frames))  # the mapping tables (alert rule → codes, …) stay empty here


def grid_points() -> int:
    """Number of 15-minute grid points in the telemetry window."""
    return len(_grid())

