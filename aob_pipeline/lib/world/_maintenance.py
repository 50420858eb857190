"""Work orders: preventive routes per asset over the whole history, and corrective work after each fault.

Preventive (PM) routes follow common chiller and AHU maintenance practice (monthly inspection, quarterly
filters and lubrication, annual tube brushing, coil cleaning and calibration...). Each route runs on its own
interval from the asset's commissioning (or the start of the history), on an anchor day per asset and route,
finished during working hours a few days after it falls due; a few percent are skipped.

Corrective (CM) work orders close the faults: finished when the fault is repaired, with the failure mode's
codes, a priority from the fault's severity (units down get at least priority 2) and a job duration drawn
around the mode's typical repair hours.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from aob_pipeline.lib.world._faults import Fault
from aob_pipeline.lib.world.catalogs import STATUS_SENSOR, Catalogs


@dataclass(frozen=True)
class Route:
    primary_code: str
    secondary_code: str
    description: str
    interval_months: int
    median_hours: float
    crew: int


PM_ROUTES: dict[str, tuple[Route, ...]] = {
    "Chiller": (
        Route("PM010", "PM010a", "Monthly chiller inspection: log pressures and temperatures, check oil level, sight glass and leaks", 1, 1.5, 1),
        Route("PM010", "PM010b", "Quarterly chiller inspection: clean strainers, inspect starter and terminations, vibration readings", 3, 4.0, 1),
        Route("PM040", "PM040a", "Semi-annual oil and refrigerant analysis", 6, 2.0, 1),
        Route("PM030", "PM030c", "Quarterly cooling tower inspection, basin and strainer cleaning", 3, 4.0, 2),
        Route("PM030", "PM030a", "Annual condenser tube brushing", 12, 16.0, 3),
        Route("PM040", "PM040b", "Eddy current test of condenser and evaporator tubes", 24, 10.0, 2),
        Route("PM040", "PM040c", "Annual compressor motor insulation resistance test", 12, 3.0, 1),
        Route("PM050", "PM050a", "Annual calibration of chiller sensors and controls", 12, 4.0, 1),
        Route("PM010", "PM010c", "Annual chiller inspection and safety control test", 12, 8.0, 2),
    ),
    "AHU": (
        Route("PM010", "PM010a", "Monthly AHU inspection: belts, bearings, drain pan and filter condition", 1, 1.5, 1),
        Route("PM020", "PM020a", "Quarterly filter replacement", 3, 2.5, 2),
        Route("PM060", "PM060a", "Quarterly lubrication of fan and motor bearings", 3, 1.0, 1),
        Route("PM070", "PM070a", "Semi-annual fan belt and sheave replacement", 6, 1.5, 1),
        Route("PM030", "PM030b", "Annual cooling coil cleaning and drain pan treatment", 12, 8.0, 2),
        Route("PM050", "PM050a", "Annual calibration of AHU sensors, actuators and dampers", 12, 4.0, 1),
        Route("PM010", "PM010c", "Annual AHU inspection: dampers, linkages, fan alignment", 12, 4.0, 1),
    ),
}

FILTER_CHANGE_CODES = frozenset({"PM020a"})
"""Preventive codes after which an AHU has clean filters."""

FILTER_REPAIR_MODES = frozenset({"FM-AH-01", "FM-AH-19"})
"""Corrective repairs that replace the filters."""

PM_SKIP_PROBABILITY = 0.03

COLLECTION = {"Chiller": "Chilled Water Plant", "AHU": "Air Handling"}


def _hours(rng: np.random.Generator, median: float, sigma: float, size: int) -> np.ndarray:
    return np.round(np.exp(rng.normal(np.log(median), sigma, size)), 2)


def preventive_work_orders(
    catalogs: Catalogs, assets: list, history_start: np.datetime64, now: np.datetime64, rng: np.random.Generator
) -> pd.DataFrame:
    """All PM work orders from each asset's first maintained month until ``now`` (vectorised per route)."""
    parts = []
    now_m = now.astype("datetime64[M]")
    for asset in assets:
        start = max(history_start, np.datetime64(asset.install_date, "s") + np.timedelta64(30, "D"))
        start_m = start.astype("datetime64[M]")
        for route in PM_ROUTES[asset.equipment_class]:
            phase = int(rng.integers(0, route.interval_months))
            anchor_day = int(rng.integers(1, 21))
            months = np.arange(start_m + phase, now_m + 1, route.interval_months)
            k = months.size
            delay = np.round(rng.gamma(1.5, 1.2, k)).astype("int64")
            hour = rng.integers(8, 16, k)
            minute = rng.integers(0, 60, k)
            skip = rng.random(k) < PM_SKIP_PROBABILITY
            duration = _hours(rng, route.median_hours, 0.3, k)
            labor = np.round(duration * route.crew * rng.uniform(0.8, 1.0, k), 2)
            finished = (
                months.astype("datetime64[D]") + (anchor_day - 1) + delay
            ).astype("datetime64[m]") + hour * np.timedelta64(60, "m") + minute * np.timedelta64(1, "m")
            keep = (~skip) & (finished >= start) & (finished < now)
            if not keep.any():
                continue
            code = catalogs.failure_code(route.secondary_code)
            parts.append(pd.DataFrame({
                "wo_description": route.description,
                "collection": f"{asset.site_id} {COLLECTION[asset.equipment_class]}",
                "primary_code": code.primary_code,
                "primary_code_description": code.primary_code_description,
                "secondary_code": code.secondary_code,
                "secondary_code_description": code.secondary_code_description,
                "asset_id": asset.asset_id,
                "equipment_name": asset.name,
                "preventive": True,
                "priority": 5 if route.interval_months == 1 else 4,
                "finished_at": finished[keep].astype("datetime64[ns]"),
                "duration_hours": duration[keep],
                "labor_hours": labor[keep],
            }))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def corrective_work_orders(
    catalogs: Catalogs, faults: list[Fault], now: np.datetime64, rng: np.random.Generator
) -> tuple[pd.DataFrame, list[int]]:
    """One CM work order per repaired fault (repair at or before ``now``); returns the frame and fault indices."""
    rows, fault_index = [], []
    draws = rng.normal(0.0, 0.45, len(faults)), rng.uniform(0.7, 1.0, len(faults))
    for i, fault in enumerate(faults):
        if fault.end > now:
            continue
        mode = fault.mode
        asset = catalogs.asset(fault.asset_id)
        code = catalogs.failure_code(mode.secondary_code)
        sev = fault.severity
        priority = 1 if sev >= 0.85 else 2 if sev >= 0.65 else 3 if sev >= 0.45 else 4
        unit_down = any(
            e.sensor == STATUS_SENSOR[asset.equipment_class] and e.direction == "decrease"
            for e in mode.effects_for(asset.equipment_class)
        )
        if unit_down:
            priority = min(priority, 2)
        duration = round(float(np.exp(np.log(mode.repair_hours) + draws[0][i])), 2)
        crew = 1 if mode.repair_hours < 4 else 2 if mode.repair_hours < 20 else 3
        rows.append({
            "wo_description": f"{mode.failure_mode} on {asset.name}: {mode.recommended_action}",
            "collection": f"{asset.site_id} {COLLECTION[asset.equipment_class]}",
            "primary_code": code.primary_code,
            "primary_code_description": code.primary_code_description,
            "secondary_code": code.secondary_code,
            "secondary_code_description": code.secondary_code_description,
            "asset_id": asset.asset_id,
            "equipment_name": asset.name,
            "preventive": False,
            "priority": priority,
            "finished_at": fault.end.astype("datetime64[ns]"),
            "duration_hours": duration,
            "labor_hours": round(duration * crew * float(draws[1][i]), 2),
        })
        fault_index.append(i)
    return pd.DataFrame(rows), fault_index


def filter_changes(pm: pd.DataFrame, faults: list[Fault], asset_id: str, now: np.datetime64) -> np.ndarray:
    """Times an AHU got clean filters: quarterly replacements, and repairs of filter failure modes that
    happen inside the telemetry window (earlier repairs are folded into the scheduled changes, so a world
    and its fault-free twin start the window with the same filters)."""
    times = []
    if len(pm):
        sel = (pm["asset_id"] == asset_id) & pm["secondary_code"].isin(FILTER_CHANGE_CODES)
        times.append(pm.loc[sel, "finished_at"].to_numpy(dtype="datetime64[ns]"))
    repaired = [
        f.end for f in faults
        if f.in_telemetry and f.asset_id == asset_id and f.mode.failure_mode_id in FILTER_REPAIR_MODES and f.end <= now
    ]
    times.append(np.array(repaired, dtype="datetime64[ns]"))
    return np.sort(np.concatenate(times))
