"""Generate the seeded, physically plausible world: every table in ``WORLD_TABLES`` as pandas frames.

``generate_world(scale, seed)`` builds, in order:

1. the static tables from the catalogs (sites, assets, sensors, failure modes and codes, alert rules);
2. faults drawn from the 53 failure modes: a renewal process per asset over the maintenance history
   (2010 until the telemetry window) and inside the telemetry window (ground truth: ``injected_faults``);
3. preventive work orders per asset and route, corrective ones closing every repaired fault;
4. telemetry at a 15-minute cadence over the window ending at 'now' (2020-07-01 00:00, site-local time):
   weather with seasonal, daily and multi-day cycles drives the building load; chiller and AHU physics
   (see ``_physics``) tie the sensors together; fault signatures are applied (see ``_faults``); noise,
   dropped readings, outages and a few seconds of timestamp jitter make it look recorded;
5. alerts from the alert rules evaluated on the recorded telemetry, KPI anomalies, and the events timeline.

Everything is vectorised numpy over the telemetry grid and seeded through named random streams
(``numpy.random.SeedSequence([seed, crc32(stream name)])``): the same seed gives identical frames, byte for
byte, and a world built with ``inject_faults=False`` shares every random draw with the faulted one, so the
difference between the two is exactly the fault signatures (useful for tests and for expected answers).

Scales (see ``SCALES``), all with every catalog asset: ``tiny`` (7 days, one high-detectability fault per
asset starting in the first half of the window: for tests), ``small`` (
14 days), ``default`` (104 days, about 2.3 million readings and 4,200 work orders), ``large``
(one year).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from aob_pipeline.lib.world import _events, _faults, _maintenance, _physics
from aob_pipeline.lib.world._physics import CADENCE_MINUTES, Timeline
from aob_pipeline.lib.world.catalogs import STATUS_SENSOR, Catalogs, catalog_frames, load_catalogs
from aob_pipeline.lib.world.schema import WORLD_TABLES

TELEMETRY_END = np.datetime64("2020-07-01T00:00", "m")
"""'Now' in the generated world: the exclusive end of the telemetry window (site-local wall-clock time)."""

HISTORY_START = np.datetime64("2010-01-01T00:00", "m")
"""Start of the maintenance history (work orders and historical faults)."""

FAULT_RATE_PER_YEAR = {"Chiller": 9.0, "AHU": 9.0}
"""Mean fault arrivals per asset-year while no fault is active (faults on one asset never overlap)."""

DROP_PROBABILITY = 0.025
"""Share of single readings lost at random."""
OUTAGES_PER_DAY = 1 / 25
"""Asset-wide communication outages per asset and day (each 1-16 hours: every sensor of the asset missing)."""
SENSOR_OUTAGES_PER_DAY = 1 / 60
"""Single-sensor outages per asset and day (2-48 hours)."""
JITTER_PROBABILITY = 0.08
"""Share of timestamps logged 1-9 seconds late (applies to all sensors of the asset at that step)."""

GENERATOR_VERSION = "1"


@dataclass(frozen=True)
class ScaleSpec:
    name: str
    days: int
    window_faults: str = "natural"
    """'natural' (renewal process, as in the history) or 'one_detectable' (one high-detectability fault per
    asset in the first half of the window, so a test world always shows signatures)."""
    description: str = ""


SCALES: dict[str, ScaleSpec] = {
    s.name: s
    for s in (
        ScaleSpec("tiny", 7, window_faults="one_detectable",
                  description="all assets, 7 days, one clearly visible fault per asset (tests)"),
        ScaleSpec("small", 14, description="all assets, 14 days"),
        ScaleSpec("default", 104, description="all assets, 104 days: about 2.3 million readings"),
        ScaleSpec("large", 365, description="all assets, one year"),
    )
}


def _rng(seed: int, stream: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(stream.encode("utf-8"))]))


def select_assets(catalogs: Catalogs, spec: ScaleSpec) -> list:
    """Assets in the world, sorted by id. Every scale holds every catalog asset (scenarios name them all);
    scales differ in the length of the telemetry window and in how faults are drawn inside it."""
    if not any(a.site_id == "MAIN" for a in catalogs.assets):
        raise ValueError("assets.yaml: no asset at site MAIN")
    return sorted(catalogs.assets, key=lambda a: a.asset_id)


def _check_sensors(catalogs: Catalogs) -> None:
    problems = []
    for cls, produced in _physics.PRODUCED_SENSORS.items():
        for t in catalogs.sensors_for(cls):
            if t.sensor not in produced:
                problems.append(f"sensors.yaml: {cls} sensor {t.sensor!r} has no physics model in the generator")
            elif t.calculated != (t.sensor in _physics.CALCULATED[cls]):
                problems.append(f"sensors.yaml: {cls} sensor {t.sensor!r}: field 'calculated' disagrees with the generator")
    if problems:
        raise ValueError("; ".join(problems))


def generate_world(
    scale: str = "default",
    seed: int = 7,
    catalogs: Catalogs | None = None,
    *,
    inject_faults: bool = True,
) -> dict[str, pd.DataFrame]:
    """Build every table in ``WORLD_TABLES`` for ``scale`` and ``seed``.

    ``inject_faults=False`` gives the same world without any fault (no signatures, no corrective work orders,
    empty ``injected_faults``) — every other random draw is shared with the faulted world.
    """
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    spec = SCALES[scale]
    catalogs = catalogs or load_catalogs()
    _check_sensors(catalogs)
    assets = select_assets(catalogs, spec)
    now = TELEMETRY_END
    timeline = Timeline(start=now - np.timedelta64(spec.days * 24 * 60, "m"), n=spec.days * _physics.STEPS_PER_DAY)
    grid = timeline.ts.astype("datetime64[ns]")
    cal = timeline.calendar()

    faults = _faults.draw_faults(
        catalogs, assets, HISTORY_START, timeline.start, now, FAULT_RATE_PER_YEAR, _rng(seed, "faults"),
        spec.window_faults,
    ) if inject_faults else []

    pm = _maintenance.preventive_work_orders(catalogs, assets, HISTORY_START, now, _rng(seed, "maintenance"))
    cm, cm_fault_index = _maintenance.corrective_work_orders(catalogs, faults, now, _rng(seed, "corrective"))
    work_orders = _assemble_work_orders(pm, cm)
    fault_wo = {}
    if len(cm):
        cm_ids = work_orders.loc[~work_orders["preventive"]].set_index("_order")["wo_id"]
        for order, fi in enumerate(cm_fault_index):
            fault_wo[fi] = cm_ids[len(pm) + order]
    work_orders = work_orders.drop(columns="_order")

    weather = {s.site_id: _physics.site_weather(s.climate, cal, _rng(seed, f"weather:{s.site_id}")) for s in catalogs.sites}
    window_faults: dict[str, list] = {}
    for f in faults:
        if f.in_telemetry:
            window_faults.setdefault(f.asset_id, []).append(f)

    telemetry_parts, recorded, stamps = [], {}, {}
    for asset in assets:
        values, kept, ts = _simulate_asset(
            asset, catalogs, timeline, grid, cal, weather[asset.site_id], window_faults.get(asset.asset_id, []),
            pm, faults, seed,
        )
        recorded[asset.asset_id] = {s: np.where(kept[s], v, np.nan) for s, v in values.items()}
        stamps[asset.asset_id] = ts
        for sensor in sorted(values):
            keep = kept[sensor]
            telemetry_parts.append((asset.asset_id, sensor, ts[keep], values[sensor][keep]))
    telemetry = _telemetry_frame(telemetry_parts)

    alerts = _alerts_frame(catalogs, assets, recorded, stamps)
    anomalies = _anomalies_frame(assets, recorded, stamps)
    injected = _injected_frame(faults, fault_wo, now)
    events = _events_frame(work_orders, alerts, anomalies, catalogs)

    frames = catalog_frames(catalogs)
    frames.update({
        "telemetry": telemetry,
        "work_orders": work_orders,
        "alerts": alerts,
        "anomalies": anomalies,
        "events": events,
        "injected_faults": injected,
    })
    frames["world_meta"] = pd.DataFrame(
        [
            ("seed", str(int(seed))),
            ("scale", scale),
            ("source", "generated"),
            ("generator_version", GENERATOR_VERSION),
            ("cadence_minutes", str(CADENCE_MINUTES)),
            ("history_start", _iso(HISTORY_START)),
            ("telemetry_start", _iso(timeline.start)),
            ("telemetry_end", _iso(now)),
            ("now", _iso(now)),
            ("injected_faults", str(len(injected))),
            ("faults_in_telemetry", str(int(injected["in_telemetry"].sum()))),
        ],
        columns=WORLD_TABLES["world_meta"].column_names,
    )
    return {name: _microseconds(frames[name][WORLD_TABLES[name].column_names]) for name in WORLD_TABLES}


def _microseconds(frame: pd.DataFrame) -> pd.DataFrame:
    """Timestamps at microsecond resolution, as DuckDB stores and returns them (and no conversion on ingest)."""
    for column in frame.columns:
        if pd.api.types.is_datetime64_dtype(frame[column].dtype) and frame[column].dtype != "datetime64[us]":
            frame[column] = frame[column].astype("datetime64[us]")
    return frame


def _iso(t: np.datetime64) -> str:
    return str(t.astype("datetime64[s]"))


# ------------------------------------------------------------------------------------------------ telemetry


def _simulate_asset(asset, catalogs, timeline, grid, cal, weather, faults, pm, all_faults, seed):
    """Recorded readings of one asset: values per sensor, which readings were kept, and the (jittered) stamps."""
    cls = asset.equipment_class
    n = timeline.n
    templates = catalogs.sensors_for(cls)
    status = STATUS_SENSOR[cls]
    op_rng = _rng(seed, f"operation:{asset.asset_id}")

    if cls == "Chiller":
        draws = _physics.draw_chiller_randomness(op_rng, n)
        enable = _physics.chiller_enable(asset.operation, cal, weather)
        run_base = enable.copy()

        def physics(run):
            return _physics.chiller_physics(asset, cal, weather, draws, run, enable)
    else:
        draws = _physics.draw_ahu_randomness(op_rng, n)
        changes = _maintenance.filter_changes(pm, all_faults, asset.asset_id, timeline.end)
        age = _physics.filter_age_days(grid, changes, grid[0] - np.timedelta64(int(op_rng.integers(0, 80)), "D"))
        run_base = _physics.occupied(asset.operation.schedule, cal)

        def physics(run):
            return _physics.ahu_physics(asset, cal, weather, draws, run, age)

    signals = [_faults.FaultSignal(f, grid, run_base, len(f.mode.effects)) for f in faults]
    run = _faults.apply_status_faults(run_base, signals, status, cls)
    phys = physics(run)
    scale = catalogs.capacity_scale(asset)
    deltas = _faults.sensor_deltas(
        signals, cls, n, run, catalogs, scale, skip=frozenset({status}) | _physics.CALCULATED[cls]
    )

    noise_rng = _rng(seed, f"noise:{asset.asset_id}")
    live_only = _physics.LIVE_ONLY_WHEN_RUNNING[cls]
    values: dict[str, np.ndarray] = {}
    by_name = {t.sensor: t for t in templates}
    for t in templates:
        z = noise_rng.standard_normal(n)
        if t.calculated:
            continue
        v = phys[t.sensor] + deltas.get(t.sensor, 0.0)
        noise = t.noise_std * (scale if t.scales_with_capacity else 1.0) * z
        v = np.where(run, v + noise, 0.0) if t.sensor in live_only else v + noise
        values[t.sensor] = _clip_round(v, t, scale)
    if cls == "Chiller":
        # in a stopped chiller the refrigerant settles just below the barrel water temperature
        lret, supply = "Liquid Refrigerant Evaporator Temperature", "Supply Temperature"
        if lret in values and supply in values:
            values[lret] = np.where(run, values[lret], np.minimum(values[lret], values[supply] - 0.3))
        full = {**phys, **values}
        for name, v in _physics.chiller_calculated(full, float(asset.capacity)).items():
            if name in by_name:
                values[name] = _clip_round(v, by_name[name], scale)

    kept, ts = _record(asset.asset_id, [t.sensor for t in templates], n, grid, seed)
    return values, kept, ts


def _clip_round(v: np.ndarray, template, scale: float) -> np.ndarray:
    factor = scale if template.scales_with_capacity else 1.0
    return np.round(np.clip(v, template.min_value * factor, template.max_value * factor), template.decimals) + 0.0


def _record(asset_id: str, sensors: list[str], n: int, grid: np.ndarray, seed: int):
    """Which readings survive (random drops, asset outages, sensor outages) and the logged timestamps."""
    rng = _rng(seed, f"recording:{asset_id}")
    days = n / _physics.STEPS_PER_DAY
    drop = rng.random((len(sensors), n)) < DROP_PROBABILITY
    for _ in range(int(rng.poisson(days * OUTAGES_PER_DAY))):
        start = int(rng.integers(0, n))
        drop[:, start:start + int(rng.integers(4, 65))] = True
    for _ in range(int(rng.poisson(days * SENSOR_OUTAGES_PER_DAY))):
        start, which = int(rng.integers(0, n)), int(rng.integers(0, len(sensors)))
        drop[which, start:start + int(rng.integers(8, 193))] = True
    jitter = np.where(rng.random(n) < JITTER_PROBABILITY, rng.integers(1, 10, n), 0)
    ts = grid + jitter.astype("timedelta64[s]")
    return {s: ~drop[i] for i, s in enumerate(sensors)}, ts


def _telemetry_frame(parts: list[tuple]) -> pd.DataFrame:
    counts = np.array([p[2].shape[0] for p in parts], dtype=np.int64)
    asset_ids = np.array([p[0] for p in parts], dtype=object)
    sensors = np.array([p[1] for p in parts], dtype=object)
    return pd.DataFrame({
        "asset_id": np.repeat(asset_ids, counts),
        "sensor": np.repeat(sensors, counts),
        "ts": np.concatenate([p[2] for p in parts]).astype("datetime64[us]") if parts else np.array([], "datetime64[us]"),
        "value": np.concatenate([p[3] for p in parts]) if parts else np.array([], float),
    })


# ------------------------------------------------------------------------------------------------ tables


def _assemble_work_orders(pm: pd.DataFrame, cm: pd.DataFrame) -> pd.DataFrame:
    frames = [f for f in (pm, cm) if len(f)]
    wo = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=WORLD_TABLES["work_orders"].column_names)
    wo["_order"] = np.arange(len(wo))
    wo = wo.sort_values(["finished_at", "asset_id", "preventive", "secondary_code", "_order"], kind="mergesort").reset_index(drop=True)
    wo["wo_id"] = [f"WO{i + 1:06d}" for i in range(len(wo))]
    wo["priority"] = wo["priority"].astype("int64")
    wo["preventive"] = wo["preventive"].astype(bool)
    wo["finished_at"] = pd.to_datetime(wo["finished_at"])
    return wo


def _alerts_frame(catalogs, assets, recorded, stamps) -> pd.DataFrame:
    rows = []
    for rule in catalogs.alert_rules:
        for asset in assets:
            needed = [rule.sensor] + ([rule.relative_to] if rule.relative_to else [])
            if asset.equipment_class != rule.equipment_class or any(s not in recorded[asset.asset_id] for s in needed):
                continue
            for start, end in _events.evaluate_rule(rule, recorded[asset.asset_id], stamps[asset.asset_id], asset.equipment_class):
                rows.append((asset.asset_id, asset.name, rule.rule_id, start, end))
    frame = pd.DataFrame(rows, columns=["asset_id", "equipment_name", "rule_id", "start_time", "end_time"])
    frame["start_time"] = pd.to_datetime(frame["start_time"])
    frame["end_time"] = pd.to_datetime(frame["end_time"])
    frame = frame.sort_values(["start_time", "asset_id", "rule_id"], kind="mergesort").reset_index(drop=True)
    frame.insert(0, "alert_id", [f"AL{i + 1:06d}" for i in range(len(frame))])
    return frame


def _anomalies_frame(assets, recorded, stamps) -> pd.DataFrame:
    rows = []
    for asset in assets:
        for kpi in _events.KPIS:
            if kpi.equipment_class != asset.equipment_class:
                continue
            try:
                series = _events.kpi_series(kpi, recorded[asset.asset_id])
            except KeyError:
                continue  # a catalog without the KPI's input sensors
            for ts, value, upper, lower, score in _events.detect_kpi_anomalies(kpi, series, stamps[asset.asset_id]):
                rows.append((asset.asset_id, kpi.name, ts, round(value, 4), round(upper, 4), round(lower, 4), round(score, 3)))
    frame = pd.DataFrame(rows, columns=["asset_id", "kpi", "ts", "value", "upper_bound", "lower_bound", "anomaly_score"])
    frame["ts"] = pd.to_datetime(frame["ts"])
    frame = frame.sort_values(["ts", "asset_id", "kpi"], kind="mergesort").reset_index(drop=True)
    frame.insert(0, "anomaly_id", [f"AN{i + 1:06d}" for i in range(len(frame))])
    return frame


def _injected_frame(faults, fault_wo, now) -> pd.DataFrame:
    frame = pd.DataFrame({
        "fault_id": [f"FLT{i + 1:05d}" for i in range(len(faults))],
        "asset_id": [f.asset_id for f in faults],
        "failure_mode_id": [f.mode.failure_mode_id for f in faults],
        "onset_ts": pd.to_datetime(np.array([f.onset for f in faults], dtype="datetime64[ns]")),
        "end_ts": pd.to_datetime(np.array([f.end for f in faults], dtype="datetime64[ns]")),
        "severity": [f.severity for f in faults],
        "in_telemetry": np.array([f.in_telemetry for f in faults], dtype=bool),
        "wo_id": [fault_wo.get(i) for i in range(len(faults))],
    })
    return frame


def _events_frame(work_orders, alerts, anomalies, catalogs) -> pd.DataFrame:
    rule_names = {r.rule_id: r.rule_name for r in catalogs.alert_rules}
    wo = pd.DataFrame({
        "event_group": "WORK_ORDER",
        "event_category": np.where(work_orders["preventive"], "PM", "CM"),
        "event_type": work_orders["primary_code"],
        "description": work_orders["wo_description"],
        "asset_id": work_orders["asset_id"],
        "equipment_name": work_orders["equipment_name"],
        "event_time": work_orders["finished_at"],
        "note": work_orders["wo_id"],
    })
    al = pd.DataFrame({
        "event_group": "ALERT",
        "event_category": "ALERT",
        "event_type": alerts["rule_id"],
        "description": alerts["rule_id"].map(rule_names),
        "asset_id": alerts["asset_id"],
        "equipment_name": alerts["equipment_name"],
        "event_time": alerts["start_time"],
        "note": alerts["alert_id"],
    })
    an = pd.DataFrame({
        "event_group": "ANOMALY",
        "event_category": "ANOMALY",
        "event_type": anomalies["kpi"],
        "description": [
            f"{k} {v:.3f} outside the expected band [{lo:.3f}, {hi:.3f}]"
            for k, v, lo, hi in zip(anomalies["kpi"], anomalies["value"], anomalies["lower_bound"], anomalies["upper_bound"])
        ],
        "asset_id": anomalies["asset_id"],
        "equipment_name": anomalies["asset_id"].map({a.asset_id: a.name for a in catalogs.assets}),
        "event_time": anomalies["ts"],
        "note": anomalies["anomaly_id"],
    })
    parts = [f for f in (wo, al, an) if len(f)]
    if not parts:
        return pd.DataFrame(columns=WORLD_TABLES["events"].column_names)
    events = pd.concat(parts, ignore_index=True)
    group_order = events["event_group"].map({"WORK_ORDER": 0, "ALERT": 1, "ANOMALY": 2})
    events = events.assign(_g=group_order).sort_values(["event_time", "_g", "asset_id", "note"], kind="mergesort")
    events = events.drop(columns="_g").reset_index(drop=True)
    events.insert(0, "event_id", [f"EV{i + 1:07d}" for i in range(len(events))])
    return events
