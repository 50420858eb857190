"""Alerts (threshold rules evaluated on recorded telemetry) and KPI anomalies (values outside a rolling band).

Both work on the recorded readings of one asset as dense arrays over the telemetry grid, with NaN where a
reading is missing, so they see exactly what an operator's system would see.
"""

from __future__ import annotations

import operator as op
from dataclasses import dataclass

import numpy as np
import pandas as pd

from aob_pipeline.lib.world._physics import CADENCE_MINUTES, STEPS_PER_DAY, STEPS_PER_HOUR
from aob_pipeline.lib.world.catalogs import SCHEDULE_SENSOR, STATUS_SENSOR, AlertRule

OPERATORS = {">": op.gt, "<": op.lt, ">=": op.ge, "<=": op.le}
GAP_TOLERANCE_STEPS = 2 * STEPS_PER_HOUR
"""Missing readings of up to two hours keep a condition's last known state. A missing reading of the unit's
state (running, scheduled) counts as 'on' only when the known readings before and after it are both 'on'."""


def ffill_limited(values: np.ndarray, limit: int) -> np.ndarray:
    """Forward-fill NaNs from the last valid value, at most ``limit`` steps; longer gaps stay NaN."""
    n = values.shape[0]
    idx = np.arange(n)
    valid = ~np.isnan(values)
    last = np.maximum.accumulate(np.where(valid, idx, -1))
    ok = (last >= 0) & (idx - last <= limit)
    return np.where(ok, values[np.maximum(last, 0)], np.nan)


def true_runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start (inclusive) and end (exclusive) indices of the runs of True in ``mask``."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    d = np.diff(padded)
    return np.flatnonzero(d == 1), np.flatnonzero(d == -1)


def _condition(values: np.ndarray, rule: AlertRule) -> np.ndarray:
    """1.0 / 0.0 where the comparison holds or not, NaN where the reading is missing."""
    with np.errstate(invalid="ignore"):
        cond = OPERATORS[rule.operator](values, rule.threshold).astype(float)
    cond[np.isnan(values)] = np.nan
    return cond


def evaluate_rule(rule: AlertRule, recorded: dict[str, np.ndarray], ts: np.ndarray, cls: str) -> list[tuple]:
    """Episodes (start_time, end_time or NaT) where ``rule`` held for at least its minimum duration."""
    values = recorded[rule.sensor]
    if rule.relative_to is not None:
        values = values - recorded[rule.relative_to]
    cond = _condition(values, rule)
    if rule.active_when != "always":
        gate_sensor = STATUS_SENSOR[cls] if rule.active_when == "running" else SCHEDULE_SENSOR[cls]
        state = recorded[gate_sensor]
        # a missing state reading counts as 'on' only if the known readings on both sides say so
        before = ffill_limited(state, GAP_TOLERANCE_STEPS)
        after = ffill_limited(state[::-1], GAP_TOLERANCE_STEPS)[::-1]
        on = (np.nan_to_num(before, nan=0.0) > 0.5) & (np.nan_to_num(after, nan=0.0) > 0.5)
        cond = np.where(on, cond, 0.0)  # gated first, so a gap never carries an 'off' reading into 'on'
    holds = np.nan_to_num(ffill_limited(cond, GAP_TOLERANCE_STEPS), nan=0.0) > 0.5
    starts, ends = true_runs(holds)
    need = max(int(np.ceil(rule.min_duration_minutes / CADENCE_MINUTES)), 1)
    keep = (ends - starts) >= need
    out = []
    n = ts.shape[0]
    for s, e in zip(starts[keep], ends[keep]):
        out.append((ts[s], ts[e] if e < n else np.datetime64("NaT")))
    return out


# ------------------------------------------------------------------------------------------------ anomalies


@dataclass(frozen=True)
class Kpi:
    name: str
    equipment_class: str
    floor: float
    """Smallest half-width of the expected band, in the KPI's unit."""


KPIS = (
    Kpi("Chiller Efficiency", "Chiller", 0.06),
    Kpi("Evaporator Approach", "Chiller", 0.8),
    Kpi("Supply Air Temperature Deviation", "AHU", 1.5),
    Kpi("Specific Fan Power", "AHU", 0.08),
)
"""KPIs watched for anomalies. Evaporator Approach = Supply Temperature - Liquid Refrigerant Evaporator
Temperature; Supply Air Temperature Deviation = Supply Air Temperature - its setpoint; Specific Fan Power =
Supply Fan Power per 1,000 CFM of Supply Airflow. All only while the unit runs."""

BAND_WINDOW_STEPS = 7 * STEPS_PER_DAY
BAND_MIN_PERIODS = 2 * STEPS_PER_DAY
BAND_SIGMAS = 4.0


def kpi_series(kpi: Kpi, recorded: dict[str, np.ndarray]) -> np.ndarray:
    """The KPI over the grid (NaN where the unit is off or an input is missing)."""
    if kpi.equipment_class == "Chiller":
        running = recorded["Run Status"] > 0.5
        if kpi.name == "Chiller Efficiency":
            value = np.where(running & (recorded["Tonnage"] >= 5.0), recorded["Chiller Efficiency"], np.nan)
        else:
            value = recorded["Supply Temperature"] - recorded["Liquid Refrigerant Evaporator Temperature"]
    else:
        running = recorded["Supply Fan Status"] > 0.5
        if kpi.name == "Supply Air Temperature Deviation":
            value = recorded["Supply Air Temperature"] - recorded["Supply Air Temperature Setpoint"]
        else:
            flow = recorded["Supply Airflow"]
            with np.errstate(divide="ignore", invalid="ignore"):
                value = np.where(flow > 500.0, recorded["Supply Fan Power"] / (flow / 1000.0), np.nan)
    return np.where(running, value, np.nan)


def detect_kpi_anomalies(kpi: Kpi, value: np.ndarray, ts: np.ndarray) -> list[tuple]:
    """Readings outside mean +/- 4 sigma of the previous 7 days (running readings only); one per episode.

    Each episode of consecutive out-of-band readings is reported at its most anomalous reading as
    (ts, value, upper, lower, score) with score = |value - expected| / band half-width (> 1 is outside).
    """
    series = pd.Series(value)
    rolling = series.rolling(BAND_WINDOW_STEPS, min_periods=BAND_MIN_PERIODS)
    mean = rolling.mean().shift(1).to_numpy()
    std = rolling.std().shift(1).to_numpy()
    half = np.maximum(BAND_SIGMAS * std, kpi.floor)
    with np.errstate(invalid="ignore"):
        score = np.abs(value - mean) / half
    outside = np.nan_to_num(score, nan=0.0) > 1.0
    starts, ends = true_runs(outside)
    if starts.size == 0:
        return []
    peak_scores = np.maximum.reduceat(np.where(outside, score, -np.inf), starts)
    out = []
    for s, e, peak in zip(starts, ends, peak_scores):
        i = s + int(np.argmax(score[s:e] >= peak))
        out.append((ts[i], float(value[i]), float(mean[i] + half[i]), float(mean[i] - half[i]), float(score[i])))
    return out
