"""Faults: drawing them from the failure-mode catalog and turning a fault into its telemetry signature.

A fault is one failure mode hitting one asset from ``onset`` until ``end`` (the repair), with a ``severity`` in
0..1 that scales every effect. Faults on one asset never overlap (a repair precedes the next fault), which keeps
each signature attributable.

Signatures follow the catalog: for each effect, ``direction`` x ``shape`` x ``magnitude`` x severity (x the
asset's capacity ratio for extensive sensors) is added to the sensor's fault-free reading, only while the unit
runs unless the effect says ``while_running: false``. Effects on the status sensor (Run Status / Supply Fan
Status) instead change *when the unit runs* (trips, forced off, short cycling, running unscheduled); the physics
is then recomputed, so flows, power and calculated points stay consistent. Calculated sensors are never
shifted directly: they are recomputed from their faulted inputs.

Every random number of a signature comes from the fault's own seed, so a fault looks the same whichever
other faults exist, and a world generated without faults shares all other random draws.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aob_pipeline.lib.world._physics import STEPS_PER_DAY
from aob_pipeline.lib.world.catalogs import STATUS_SENSOR, Catalogs, FailureEffect, FailureMode

SENSOR_SPIKES_PER_DAY = 4.0
"""Mean number of spike episodes per running day for spike-shaped effects."""


@dataclass(frozen=True)
class Fault:
    asset_id: str
    mode: FailureMode
    onset: np.datetime64
    end: np.datetime64
    severity: float
    in_telemetry: bool
    seed: int


def _days(x: float) -> np.timedelta64:
    return np.timedelta64(int(round(x * 86400)), "s")


def applicable_modes(catalogs: Catalogs, asset) -> list[FailureMode]:
    """Modes that can hit this asset: its class's and HVAC modes with effects for it (or none at all).

    Modes that make a unit run when it should be off cannot show on a unit scheduled 24x7 and are left out.
    """
    cls = asset.equipment_class
    always_on = asset.operation.schedule == "24x7"
    out = []
    for mode in catalogs.failure_modes:
        if not mode.applies_to(cls):
            continue
        forces_on = any(e.sensor == STATUS_SENSOR[cls] and e.direction == "increase" for e in mode.effects_for(cls))
        if always_on and forces_on:
            continue
        out.append(mode)
    return out


def _draw_one(rng: np.random.Generator, modes: list[FailureMode], weights: np.ndarray):
    mode = modes[int(rng.choice(len(modes), p=weights))]
    lo, hi = mode.days_to_repair
    duration = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    severity = float(np.round(0.3 + 0.7 * rng.beta(2.0, 2.0), 3))
    seed = int(rng.integers(0, 2**62))
    return mode, duration, severity, seed


def draw_faults(
    catalogs: Catalogs,
    assets: list,
    history_start: np.datetime64,
    window_start: np.datetime64,
    window_end: np.datetime64,
    rate_per_year: dict[str, float],
    rng: np.random.Generator,
    window_policy: str = "natural",
) -> list[Fault]:
    """Faults per asset as a renewal process: exponential gaps at ``rate_per_year``, then the repair time.

    History faults (before the telemetry window) end before it starts. In the telemetry window,
    ``window_policy`` is ``"natural"`` (the same renewal process: faults start at least half a day into the
    window and may still be active at its end, their repair lying after 'now') or ``"one_detectable"``
    (exactly one fault per asset, of a high-detectability mode, starting in the first half of the window:
    the test world, where every asset shows a signature).
    """
    if window_policy not in ("natural", "one_detectable"):
        raise ValueError(f"unknown window fault policy {window_policy!r}")
    faults: list[Fault] = []
    for asset in assets:
        modes = applicable_modes(catalogs, asset)
        weights = np.array([m.relative_frequency for m in modes], dtype=float)
        weights /= weights.sum()
        mean_gap_days = 365.25 / rate_per_year[asset.equipment_class]
        first = max(history_start, np.datetime64(asset.install_date, "s") + _days(30))

        t = first
        while True:
            onset = t + _days(rng.exponential(mean_gap_days))
            mode, duration, severity, seed = _draw_one(rng, modes, weights)
            end = onset + _days(duration)
            if end >= window_start:
                break
            faults.append(Fault(asset.asset_id, mode, onset.astype("datetime64[m]"), end.astype("datetime64[m]"), severity, False, seed))
            t = end + _days(1.0)

        if window_policy == "one_detectable":
            visible = [m for m in modes if m.detectability == "high" and m.effects_for(asset.equipment_class)]
            w = np.array([m.relative_frequency for m in visible], dtype=float)
            span = (window_end - window_start) / np.timedelta64(1, "s") / 86400.0
            onset = window_start + _days(rng.uniform(0.15, 0.5) * span)
            mode, duration, severity, seed = _draw_one(rng, visible, w / w.sum())
            end = onset + _days(duration)
            faults.append(Fault(asset.asset_id, mode, onset.astype("datetime64[m]"), end.astype("datetime64[m]"), severity, True, seed))
            continue

        t = window_start + _days(0.5)
        while True:
            onset = t + _days(rng.exponential(mean_gap_days))
            mode, duration, severity, seed = _draw_one(rng, modes, weights)
            if onset >= window_end - _days(0.25):
                break
            end = onset + _days(duration)
            faults.append(Fault(asset.asset_id, mode, onset.astype("datetime64[m]"), end.astype("datetime64[m]"), severity, True, seed))
            if end >= window_end:
                break
            t = end + _days(1.0)
    faults.sort(key=lambda f: (f.onset, f.asset_id))
    return faults


# ------------------------------------------------------------------------------------------------ signatures


def _runs_mask(starts: np.ndarray, lengths: np.ndarray, length: int) -> np.ndarray:
    """Boolean mask covering ``[s, s + len)`` for every start ``s`` (vectorised)."""
    d = np.zeros(length + 1, dtype=np.int64)
    idx = np.flatnonzero(starts)
    np.add.at(d, idx, 1)
    np.add.at(d, np.minimum(idx + lengths[idx], length), -1)
    return np.cumsum(d[:length]) > 0


class FaultSignal:
    """The random ingredients of one fault's signature over its slice ``[i0, i1)`` of the telemetry grid."""

    def __init__(self, fault: Fault, grid_ts: np.ndarray, run_base: np.ndarray, n_effects: int):
        self.fault = fault
        self.i0 = int(np.searchsorted(grid_ts, fault.onset.astype(grid_ts.dtype)))
        self.i1 = int(np.searchsorted(grid_ts, fault.end.astype(grid_ts.dtype)))
        length = max(self.i1 - self.i0, 0)
        self.length = length
        rng = np.random.default_rng(fault.seed)
        u_spike = rng.random(length)
        spike_len = rng.integers(1, 4, length)
        trip_len = rng.integers(2, 9, length)
        spike_value = rng.choice([-1.0, 1.0], length) * rng.uniform(0.6, 1.0, length)
        period = rng.uniform(3.0, 10.0)
        cycle = rng.uniform(3.0, 6.0)
        phase = rng.uniform(0.0, 2 * np.pi)
        self.u_ramp = rng.random(length)
        self.z = np.clip(rng.standard_normal((max(n_effects, 1), length)), -2.5, 2.5)
        if length == 0:
            return

        local_run = run_base[self.i0:self.i1]
        hours = (grid_ts[self.i0:self.i1] - fault.onset.astype(grid_ts.dtype)) / np.timedelta64(1, "h")
        total = max((fault.end - fault.onset) / np.timedelta64(1, "h"), 0.25)
        self.ramp = np.clip(hours / total, 0.0, 1.0)
        k = np.arange(length)
        self.osc = np.sin(2 * np.pi * k / period + phase)
        self.cycling = np.sin(2 * np.pi * k / cycle + phase) > 0

        starts = (u_spike < SENSOR_SPIKES_PER_DAY / STEPS_PER_DAY) & local_run
        running_idx = np.flatnonzero(local_run)
        if running_idx.size:
            starts[running_idx[0]] = True  # the fault shows at its first running step
        self.spike = _runs_mask(starts, spike_len, length)
        cover = np.maximum.accumulate(np.where(starts, k, 0))
        self.spike_value = np.where(self.spike, spike_value[cover], 0.0)
        trip_starts = np.zeros(length, dtype=bool)
        trip_starts[1:] = starts[:-1]
        if length and starts[-1] and not trip_starts.any():
            trip_starts[-1] = True
        self.trip = _runs_mask(trip_starts, trip_len, length)
        off_starts = (u_spike < SENSOR_SPIKES_PER_DAY / STEPS_PER_DAY) & ~local_run
        self.unscheduled_run = _runs_mask(off_starts, trip_len, length)

    def signal(self, effect: FailureEffect, effect_index: int) -> np.ndarray:
        """Unit signal of an additive effect (multiply by magnitude x severity)."""
        if self.length == 0:
            return np.zeros(0)
        shape, direction = effect.shape, effect.direction
        if direction == "erratic":
            if shape == "oscillation":
                return self.osc
            if shape == "spike":
                return self.spike_value
            z = self.z[effect_index % self.z.shape[0]]
            return z if shape == "step" else self.ramp * z
        base = {
            "step": np.ones(self.length),
            "ramp": self.ramp,
            "spike": self.spike.astype(float),
            "oscillation": 0.5 + 0.5 * self.osc,
        }[shape]
        return base if direction == "increase" else -base

    def run_after(self, local_run: np.ndarray, effect: FailureEffect) -> np.ndarray:
        """How a status-sensor effect changes when the unit runs over the fault's slice."""
        sev = self.fault.severity
        shape, direction = effect.shape, effect.direction
        if direction == "erratic" or shape == "oscillation":
            return local_run & self.cycling if direction != "increase" else local_run | self.cycling
        if direction == "decrease":
            if shape == "step":
                return np.zeros_like(local_run)
            if shape == "spike":
                return local_run & ~self.trip
            return local_run & ~(self.u_ramp < self.ramp * sev)
        if shape == "step":
            return np.ones_like(local_run)
        if shape == "spike":
            return local_run | self.unscheduled_run
        return local_run | (self.u_ramp < self.ramp * sev)


def apply_status_faults(run_base: np.ndarray, signals: list[FaultSignal], status_sensor: str, cls: str) -> np.ndarray:
    """The run mask after every status-sensor effect of the asset's faults."""
    run = run_base.copy()
    for sig in signals:
        if sig.length == 0:
            continue
        for effect in sig.fault.mode.effects_for(cls):
            if effect.sensor == status_sensor:
                run[sig.i0:sig.i1] = sig.run_after(run[sig.i0:sig.i1], effect)
    return run


def sensor_deltas(
    signals: list[FaultSignal],
    cls: str,
    n: int,
    run: np.ndarray,
    catalogs: Catalogs,
    capacity_scale: float,
    skip: frozenset[str],
) -> dict[str, np.ndarray]:
    """Additive deltas per measured sensor from every fault's effects (status and calculated sensors skipped)."""
    deltas: dict[str, np.ndarray] = {}
    for sig in signals:
        if sig.length == 0:
            continue
        sev = sig.fault.severity
        for j, effect in enumerate(sig.fault.mode.effects_for(cls)):
            if effect.sensor in skip:
                continue
            template = catalogs.sensor(cls, effect.sensor)
            size = effect.magnitude * sev * (capacity_scale if template.scales_with_capacity else 1.0)
            piece = size * sig.signal(effect, j)
            if effect.while_running:
                piece = piece * run[sig.i0:sig.i1]
            target = deltas.setdefault(effect.sensor, np.zeros(n))
            target[sig.i0:sig.i1] += piece
    return deltas
