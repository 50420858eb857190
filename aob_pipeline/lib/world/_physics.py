"""Physics of the generated world: weather, schedules, chillers and AHUs, all as numpy arrays over a time grid.

Every function is vectorised over the telemetry grid (one value per 15-minute step). Random draws happen in
``draw_*_randomness`` only, before any fault is known, so a world with and without faults shares every random
number; the physics functions themselves are deterministic given their inputs (including the run mask, which
faults may change).

Units: degF, gpm, tons, kW, %, inH2O, CFM. Relations used (and documented in sensors.yaml):

- Tonnage = chilled-water flow x (return - supply) / 24   (500 lb/h per gpm, 12,000 Btu/h per ton)
- kW/ton from a DOE-2 style part-load curve  EIR(PLR) = 0.20 + 0.45 PLR + 0.35 PLR^2, worsened by about
  1.2 % per degF of entering condenser water above 85 degF and 1.5 % per degF of leaving water below 44 degF
- Condenser heat = tons + 0.2843 ton/kW x compressor kW;  condenser rise = heat x 24 / condenser flow
- Evaporator approach (supply - refrigerant) = 1 + 2.2 PLR degF; cooling tower approach to wet-bulb 2 + 5 PLR
- AHU mixed air = OA fraction x outdoor + (1 - OA fraction) x return; fan power ~ speed^3 (affinity law);
  filter pressure drop grows with dust loading and with airflow squared
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

CADENCE_MINUTES = 15
STEPS_PER_HOUR = 60 // CADENCE_MINUTES
STEPS_PER_DAY = 24 * STEPS_PER_HOUR
TONS_PER_KW = 0.2843  # 3412 Btu/h per kW / 12,000 Btu/h per ton


@dataclass(frozen=True)
class Timeline:
    """The telemetry grid: ``n`` steps of 15 minutes from ``start`` (site-local wall-clock time)."""

    start: np.datetime64
    n: int

    @property
    def ts(self) -> np.ndarray:
        return self.start + np.arange(self.n, dtype="int64") * np.timedelta64(CADENCE_MINUTES, "m")

    @property
    def end(self) -> np.datetime64:
        """Exclusive end of the grid (= the world's 'now')."""
        return self.start + np.timedelta64(self.n * CADENCE_MINUTES, "m")

    def calendar(self) -> dict[str, np.ndarray]:
        ts = self.ts.astype("datetime64[m]")
        days = ts.astype("datetime64[D]")
        minutes = (ts - days).astype("int64")
        years = ts.astype("datetime64[Y]")
        doy = (days - years.astype("datetime64[D]")).astype("int64") + 1 + minutes / 1440.0
        weekday = ((days.astype("int64") + 3) % 7)  # 1970-01-01 was a Thursday; Monday = 0
        return {"hour": minutes / 60.0, "doy": doy, "weekday": weekday}


def smooth_noise(rng: np.random.Generator, n: int, steps_per_point: int, phi: float = 0.85) -> np.ndarray:
    """Unit-variance AR(1) noise on a coarse grid, linearly interpolated to ``n`` steps (slow wander)."""
    points = n // steps_per_point + 3
    warm = 40
    white = rng.standard_normal(points + warm)
    ar = lfilter([np.sqrt(1.0 - phi * phi)], [1.0, -phi], white)[warm:]
    x = np.arange(n) / steps_per_point
    return np.interp(x, np.arange(points), ar)


def trailing_mean(x: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last ``window`` values (fewer at the start), along the last axis."""
    c = np.cumsum(x, axis=-1)
    out = np.empty_like(c)
    out[..., :window] = c[..., :window] / np.arange(1, min(window, x.shape[-1]) + 1)
    if x.shape[-1] > window:
        out[..., window:] = (c[..., window:] - c[..., :-window]) / window
    return out


# ------------------------------------------------------------------------------------------------ weather


def wet_bulb_f(dry_bulb_f: np.ndarray, rh_pct: np.ndarray) -> np.ndarray:
    """Wet-bulb temperature (Stull 2011, valid 5-99 %RH, -20..50 degC), degF."""
    t = (dry_bulb_f - 32.0) / 1.8
    rh = np.clip(rh_pct, 5.0, 99.0)
    tw = (
        t * np.arctan(0.151977 * np.sqrt(rh + 8.313659))
        + np.arctan(t + rh)
        - np.arctan(rh - 1.676331)
        + 0.00391838 * rh**1.5 * np.arctan(0.023101 * rh)
        - 4.686035
    )
    return np.minimum(tw * 1.8 + 32.0, dry_bulb_f)


def relative_humidity(dry_bulb_f: np.ndarray, dew_point_f: np.ndarray) -> np.ndarray:
    """Relative humidity (%) from dry-bulb and dew point (Magnus formula)."""
    t = (dry_bulb_f - 32.0) / 1.8
    td = (dew_point_f - 32.0) / 1.8
    return 100.0 * np.exp(17.625 * td / (243.04 + td) - 17.625 * t / (243.04 + t))


def site_weather(climate, cal: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Outdoor dry-bulb, dew point, relative humidity and wet-bulb for one site.

    Dry-bulb: season + daily cycle peaking at 15:00 + multi-day swings + short wander. Dew point: season +
    slow weather wander, capped at 4 degF above the summer dew point and 0.5 degF below the dry-bulb.
    """
    n = cal["hour"].shape[0]
    synoptic = smooth_noise(rng, n, steps_per_point=6 * STEPS_PER_HOUR, phi=0.9) * climate.weather_swing_f
    fast = smooth_noise(rng, n, steps_per_point=STEPS_PER_HOUR, phi=0.7) * 0.8
    moisture = smooth_noise(rng, n, steps_per_point=12 * STEPS_PER_HOUR, phi=0.85) * 4.0
    season = -np.cos(2 * np.pi * (cal["doy"] - climate.coldest_day_of_year) / 365.25)
    daily = np.cos(2 * np.pi * (cal["hour"] - 15.0) / 24.0)
    oat = climate.annual_mean_f + climate.annual_amplitude_f * season + climate.diurnal_amplitude_f * daily + synoptic + fast
    mid = (climate.summer_dew_point_f + climate.winter_dew_point_f) / 2.0
    half = (climate.summer_dew_point_f - climate.winter_dew_point_f) / 2.0
    dew = mid + half * season + moisture + 0.3 * synoptic
    dew = np.minimum(np.minimum(dew, climate.summer_dew_point_f + 4.0), oat - 0.5)
    rh = np.clip(relative_humidity(oat, dew), 3.0, 100.0)
    return {
        "oat": oat,
        "oat_smoothed": trailing_mean(oat, 4 * STEPS_PER_HOUR),
        "dew_point": dew,
        "rh": rh,
        "wet_bulb": wet_bulb_f(oat, rh),
        "sun": np.clip(np.sin(np.pi * (cal["hour"] - 6.0) / 14.0), 0.0, None),
        "design_oat": climate.annual_mean_f + climate.annual_amplitude_f + climate.diurnal_amplitude_f,
    }


def occupied(schedule: str, cal: dict[str, np.ndarray]) -> np.ndarray:
    """True in the hours a schedule (24x7, weekdays_06_20, extended_05_22) enables the equipment."""
    hour, weekday = cal["hour"], cal["weekday"]
    if schedule == "24x7":
        return np.ones(hour.shape, dtype=bool)
    if schedule == "weekdays_06_20":
        return (weekday < 5) & (hour >= 6) & (hour < 20)
    if schedule == "extended_05_22":
        return (weekday < 6) & (hour >= 5) & (hour < 22)
    raise ValueError(f"unknown schedule {schedule!r}")


def relax_when_off(on_value: np.ndarray, target: np.ndarray, run: np.ndarray, tau_steps: float) -> np.ndarray:
    """Where ``run`` is False, decay exponentially from the value at the last running step toward ``target``."""
    n = run.shape[0]
    idx = np.arange(n)
    last_on = np.maximum.accumulate(np.where(run, idx, -1))
    has_prior = last_on >= 0
    start = np.where(has_prior, on_value[np.maximum(last_on, 0)], target)
    decay = np.exp(-(idx - last_on) / tau_steps)
    off = target + (start - target) * np.where(has_prior, decay, 0.0)
    return np.where(run, on_value, off)


def _load_fraction(schedule: str, peak: float, occ: np.ndarray, weather: dict, wiggle: np.ndarray) -> np.ndarray:
    """Cooling demand as a fraction of design: internal gains + envelope (outdoor temperature) + solar."""
    span = max(weather["design_oat"] - 55.0, 10.0)
    envelope = np.clip((weather["oat_smoothed"] - 55.0) / span, 0.0, 1.15)
    if schedule == "24x7":
        internal, env_weight = np.full(occ.shape, 0.55), 0.30
    else:
        internal, env_weight = np.where(occ, 0.38, 0.12), 0.45
    return peak * (internal + env_weight * envelope + 0.10 * weather["sun"]) * (1.0 + wiggle)


# ------------------------------------------------------------------------------------------------ chillers


def draw_chiller_randomness(rng: np.random.Generator, n: int) -> dict[str, np.ndarray | float]:
    return {
        "wiggle": 0.06 * smooth_noise(rng, n, STEPS_PER_HOUR * 3, 0.8),
        "control": smooth_noise(rng, n, 2, 0.6),
        "flow": smooth_noise(rng, n, STEPS_PER_HOUR * 6, 0.8),
        "approach_offset": float(rng.uniform(0.0, 0.6)),
        "tower_offset": float(rng.uniform(-0.5, 1.0)),
        "min_condenser_f": float(rng.choice([65.0, 68.0, 70.0])),
    }


def chiller_enable(op, cal: dict, weather: dict) -> np.ndarray:
    """The Schedule point: time schedule and, for locked-out chillers, outdoor temperature above the lockout."""
    enable = occupied(op.schedule, cal)
    if op.low_ambient_lockout_f is not None:
        enable &= weather["oat_smoothed"] >= op.low_ambient_lockout_f
    return enable


def chiller_physics(asset, cal: dict, weather: dict, draws: dict, run: np.ndarray, enable: np.ndarray) -> dict[str, np.ndarray]:
    """Fault-free chiller signals for the given run mask. Keys are catalog sensor names plus ``plr``."""
    op = asset.operation
    cap = float(asset.capacity)
    occ = occupied(op.schedule, cal)
    plr = np.clip(_load_fraction(op.schedule, op.peak_load_fraction, occ, weather, draws["wiggle"]), 0.15, 1.08)
    setpoint = np.full(plr.shape, op.chilled_water_setpoint_f)

    chw_flow = 2.4 * cap * np.clip(0.55 + 0.45 * plr, 0.6, 1.0) * (1.0 + 0.01 * draws["flow"])
    tons = plr * cap
    supply = setpoint + 0.25 * draws["control"] + np.maximum(plr - 1.0, 0.0) * 12.0
    ret = supply + tons * 24.0 / chw_flow

    cws = np.maximum(draws["min_condenser_f"], weather["wet_bulb"] + 2.0 + 5.0 * plr + draws["tower_offset"])
    eir_ratio = (0.20 + 0.45 * plr + 0.35 * plr**2) / plr
    kw_per_ton = op.design_kw_per_ton * eir_ratio * (1.0 + 0.012 * (cws - 85.0)) * (1.0 + 0.015 * (44.0 - supply))
    power = kw_per_ton * tons
    cw_flow = 3.0 * cap * (1.0 + 0.004 * draws["flow"])
    cwr = cws + (tons + TONS_PER_KW * power) * 24.0 / cw_flow
    lret = supply - (1.0 + 2.2 * plr + draws["approach_offset"])

    # Off: the dedicated pumps stop, the water in the barrels drifts toward the plant-room temperature.
    room = np.clip(62.0 + 0.3 * (weather["oat_smoothed"] - 62.0), 55.0, 80.0)
    idle_cw = np.clip(weather["wet_bulb"] + 4.0, 45.0, 90.0)
    supply_all = relax_when_off(supply, room, run, tau_steps=8)
    ret_all = relax_when_off(ret, room + 0.5, run, tau_steps=8)
    off = ~run
    return {
        "plr": np.where(run, plr, 0.0),
        "Setpoint Temperature": setpoint,
        "Supply Temperature": supply_all,
        "Return Temperature": ret_all,
        "Chilled Water Flow": np.where(run, chw_flow, 0.0),
        "Power Input": np.where(run, power, 0.0),
        "Liquid Refrigerant Evaporator Temperature": np.where(off, supply_all - 0.6, lret),
        "Condenser Water Supply Temperature": relax_when_off(cws, idle_cw, run, tau_steps=6),
        "Condenser Water Return To Tower Temperature": relax_when_off(cwr, idle_cw + 0.5, run, tau_steps=6),
        "Condenser Water Flow": np.where(run, cw_flow, 0.0),
        "Run Status": run.astype(float),
        "Schedule": enable.astype(float),
    }


def chiller_calculated(values: dict[str, np.ndarray], capacity: float) -> dict[str, np.ndarray]:
    """The chiller's calculated points from (recorded) inputs, exactly as the sensors.yaml formulas say."""
    running = values["Run Status"] > 0.5
    tonnage = np.where(
        running & (values["Chilled Water Flow"] > 0),
        values["Chilled Water Flow"] * (values["Return Temperature"] - values["Supply Temperature"]) / 24.0,
        0.0,
    )
    tonnage = np.maximum(tonnage, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        efficiency = np.where(tonnage >= 5.0, values["Power Input"] / np.where(tonnage >= 5.0, tonnage, 1.0), 0.0)
    return {
        "Tonnage": tonnage,
        "Chiller Efficiency": efficiency,
        "Chiller % Loaded": 100.0 * tonnage / capacity,
    }


# ------------------------------------------------------------------------------------------------ AHUs


def draw_ahu_randomness(rng: np.random.Generator, n: int) -> dict[str, np.ndarray | float]:
    return {
        "wiggle": 0.08 * smooth_noise(rng, n, STEPS_PER_HOUR * 2, 0.8),
        "space": smooth_noise(rng, n, STEPS_PER_HOUR * 3, 0.8),
        "humidity": smooth_noise(rng, n, STEPS_PER_HOUR * 6, 0.8),
        "control": smooth_noise(rng, n, 2, 0.5),
        "static": smooth_noise(rng, n, 1, 0.5),
        "oat_bias": float(rng.normal(0.0, 0.5)),
        "filter_clean": float(rng.uniform(0.28, 0.38)),
        "filter_rate": float(rng.uniform(0.40, 0.60)),
    }


def filter_age_days(ts: np.ndarray, changes: np.ndarray, first_change_before: np.datetime64) -> np.ndarray:
    """Days since the most recent filter change at or before each grid time."""
    changes = np.sort(np.asarray(changes, dtype="datetime64[ns]"))
    if changes.size == 0:
        changes = np.array([first_change_before], dtype="datetime64[ns]")
    pos = np.searchsorted(changes, ts, side="right") - 1
    last = np.where(pos >= 0, changes[np.maximum(pos, 0)], first_change_before)
    return (ts - last).astype("timedelta64[s]").astype("int64") / 86400.0


def ahu_physics(asset, cal: dict, weather: dict, draws: dict, run: np.ndarray, filter_age: np.ndarray) -> dict[str, np.ndarray]:
    """Fault-free AHU signals for the given run mask. Keys are catalog sensor names plus ``zone_load``."""
    op = asset.operation
    cfm = float(asset.capacity)
    occ = occupied(op.schedule, cal)
    load = np.clip(_load_fraction(op.schedule, op.peak_load_fraction, occ, weather, draws["wiggle"]), 0.0, 1.1)
    flow_frac = np.clip(0.35 + 0.65 * load, 0.35, 1.0)
    loading = np.clip(filter_age / 90.0, 0.0, 2.0)

    oat = weather["oat"] + draws["oat_bias"]
    rat_on = 72.5 + 2.0 * load + 0.4 * draws["space"]
    rat = relax_when_off(rat_on, 72.0 + 0.35 * (weather["oat_smoothed"] - 72.0), run, tau_steps=16)
    # the cooling coil dries the air toward a 50 degF dew point; stopped, the space drifts to the outdoor dew point
    space_dew = np.where(run, 0.25 * weather["dew_point"] + 0.75 * 50.0, 0.7 * weather["dew_point"] + 0.3 * 50.0)
    space_dew = relax_when_off(space_dew, space_dew, run, tau_steps=16) + 0.8 * draws["humidity"] + 2.0 * load
    rah = np.clip(relative_humidity(rat, np.minimum(space_dew, rat - 2.0)), 10.0, 95.0)

    sat_sp = op.supply_air_setpoint_f + np.round(8.0 * np.clip((70.0 - weather["oat_smoothed"]) / 20.0, 0.0, 1.0)) / 2.0
    min_oa = op.min_outside_air_pct / 100.0
    economize = (oat < np.minimum(rat - 2.0, 65.0)) & (oat > 35.0)
    econ_frac = np.clip((rat - (sat_sp - 1.5)) / np.maximum(rat - oat, 1.0), min_oa, 1.0)
    oa_frac = np.where(economize, econ_frac, min_oa)
    mat_on = oa_frac * oat + (1.0 - oa_frac) * rat

    coil_drop = np.minimum(28.0 / flow_frac, np.maximum(mat_on - 48.0, 0.0))
    need = mat_on - sat_sp
    cool_valve = np.clip(100.0 * need * flow_frac / 28.0, 0.0, 100.0)
    heat_valve = np.clip(100.0 * (-need - 1.0) * flow_frac / 20.0, 0.0, 100.0)
    sat_on = sat_sp + 0.3 * draws["control"] + np.maximum(need - coil_drop, 0.0)

    speed = 100.0 * np.clip(flow_frac * (0.9 + 0.05 * loading), 0.2, 1.0)
    fan_kw = op.fan_design_kw * (speed / 90.0) ** 3 * (1.0 + 0.10 * loading)
    airflow = cfm * flow_frac * (1.0 - 0.03 * loading)
    filter_dp = (draws["filter_clean"] + draws["filter_rate"] * loading**1.4) * flow_frac**2
    static = op.duct_static_setpoint_inh2o + 0.04 * draws["static"]

    mat = np.where(run, mat_on, rat + 0.1 * (oat - rat))
    return {
        "zone_load": np.where(run, load, 0.0),
        "Outside Air Temperature": oat,
        "Return Air Temperature": rat,
        "Return Air Humidity": rah,
        "Supply Air Temperature Setpoint": sat_sp,
        "Mixed Air Temperature": mat,
        "Supply Air Temperature": relax_when_off(sat_on, mat, run, tau_steps=4),
        "Outside Air Damper Position": np.where(run, 100.0 * oa_frac, 0.0),
        "Cooling Valve Position": np.where(run, cool_valve, 0.0),
        "Heating Valve Position": np.where(run, heat_valve, 0.0),
        "Supply Fan Speed": np.where(run, speed, 0.0),
        "Supply Fan Power": np.where(run, fan_kw, 0.0),
        "Supply Airflow": np.where(run, airflow, 0.0),
        "Duct Static Pressure": np.where(run, static, 0.0),
        "Duct Static Pressure Setpoint": np.full(run.shape, op.duct_static_setpoint_inh2o),
        "Filter Differential Pressure": np.where(run, filter_dp, 0.0),
        "Supply Fan Status": run.astype(float),
        "Occupancy Schedule": occ.astype(float),
    }


PRODUCED_SENSORS = {
    "Chiller": frozenset({
        "Setpoint Temperature", "Supply Temperature", "Return Temperature", "Chilled Water Flow", "Power Input",
        "Liquid Refrigerant Evaporator Temperature", "Condenser Water Supply Temperature",
        "Condenser Water Return To Tower Temperature", "Condenser Water Flow", "Run Status", "Schedule",
        "Tonnage", "Chiller Efficiency", "Chiller % Loaded",
    }),
    "AHU": frozenset({
        "Outside Air Temperature", "Return Air Temperature", "Return Air Humidity", "Supply Air Temperature Setpoint",
        "Mixed Air Temperature", "Supply Air Temperature", "Outside Air Damper Position", "Cooling Valve Position",
        "Heating Valve Position", "Supply Fan Speed", "Supply Fan Power", "Supply Airflow", "Duct Static Pressure",
        "Duct Static Pressure Setpoint", "Filter Differential Pressure", "Supply Fan Status", "Occupancy Schedule",
    }),
}
"""Sensors the physics can produce per class; a catalog sensor outside these has no model."""

CALCULATED = {"Chiller": frozenset({"Tonnage", "Chiller Efficiency", "Chiller % Loaded"}), "AHU": frozenset()}

LIVE_ONLY_WHEN_RUNNING = {
    "Chiller": frozenset({"Chilled Water Flow", "Power Input", "Condenser Water Flow"}),
    "AHU": frozenset({
        "Outside Air Damper Position", "Cooling Valve Position", "Heating Valve Position", "Supply Fan Speed",
        "Supply Fan Power", "Supply Airflow", "Duct Static Pressure", "Filter Differential Pressure",
    }),
}
"""Measured points that read exactly zero when the unit is off (meters below their low-flow cut-off)."""
