"""Precision and recall of TSFM anomaly detection against the faults injected into a generated world.

For each seed: build the world (``generate_world(scale, seed)``) and its fault-free twin
(``inject_faults=False``: every random draw is shared, so the two differ exactly by the fault signatures).
Every asset × sensor that an in-window fault affects (``failure_mode_sensors`` of the fault's mode for the
asset's class) is one series; ``aob_pipeline.lib.timeseries.detect_anomalies`` runs on it over the whole
telemetry window - the same call the ``tsfm_detect_anomalies`` tool and the scenarios' answers make.

Scores (summed over seeds):

- point-wise against ``injected_faults``: a reading is positive when it lies in ``[onset_ts, end_ts)`` of a
  fault that affects that sensor (end clipped to the window). Many effects show only while the unit runs,
  so the same score is also given against the *visible signature*: readings where the faulted world
  differs from its fault-free twin;
- event-wise: a fault counts as detected when any anomaly window on one of its affected sensors overlaps
  ``[onset_ts, end_ts]``; window precision is the share of anomaly windows that overlap a fault on their
  sensor;
- how many visible-signature readings move by more than the detector's band half-width (how much of the
  signature stands out of normal variation at all);
- false alarms on the fault-free twin: the same series without any fault (every flagged reading is false);
- seconds per series for ``detect_anomalies`` (the world build is not timed).

    .venv/bin/python bench/bench_anomaly_detection.py [--scale default] [--seeds 7 8 9] [--alpha 0.01]
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from aob_pipeline.lib import timeseries
from aob_pipeline.lib.world.generate import generate_world


@dataclass
class Tally:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    def add(self, predicted: np.ndarray, actual: np.ndarray) -> None:
        self.tp += int((predicted & actual).sum())
        self.fp += int((predicted & ~actual).sum())
        self.fn += int((~predicted & actual).sum())

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else float("nan")

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else float("nan")

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else float("nan")


@dataclass
class Results:
    points: Tally = field(default_factory=Tally)
    visible: Tally = field(default_factory=Tally)
    visible_beyond_band: int = 0
    windows: int = 0
    windows_on_fault: int = 0
    faults: int = 0
    faults_detected: int = 0
    by_shape: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    by_sensor: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    twin_readings: int = 0
    twin_flagged: int = 0
    twin_windows: int = 0
    twin_series_days: float = 0.0
    seconds: list[float] = field(default_factory=list)
    series: int = 0
    readings: int = 0
    skipped: int = 0


def _series_table(frames: dict[str, pd.DataFrame]) -> dict[tuple[str, str], pd.DataFrame]:
    tele = frames["telemetry"]
    return {key: g[["ts", "value"]] for key, g in tele.groupby(["asset_id", "sensor"], sort=False)}


def _affected(frames: dict[str, pd.DataFrame], window_end: pd.Timestamp) -> pd.DataFrame:
    """One row per (fault, affected sensor present on the asset): fault_id, asset_id, sensor, onset, end, shape."""
    faults = frames["injected_faults"]
    faults = faults[faults["in_telemetry"]].copy()
    faults["end"] = faults["end_ts"].clip(upper=window_end)
    classes = frames["assets"].set_index("asset_id")["equipment_class"]
    faults["equipment_class"] = faults["asset_id"].map(classes)
    effects = frames["failure_mode_sensors"][["failure_mode_id", "equipment_class", "sensor", "shape"]]
    rows = faults.merge(effects, on=["failure_mode_id", "equipment_class"], how="left")
    present = set(map(tuple, frames["sensors"][["asset_id", "sensor"]].to_numpy()))
    rows["present"] = [(a, s) in present for a, s in zip(rows["asset_id"], rows["sensor"])]
    return rows


def _overlaps(windows: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> np.ndarray:
    return ((windows["start"] <= end) & (windows["end"] >= start)).to_numpy()


def evaluate_seed(scale: str, seed: int, alpha: float, results: Results) -> None:
    frames = generate_world(scale=scale, seed=seed)
    twin = generate_world(scale=scale, seed=seed, inject_faults=False)
    meta = dict(zip(frames["world_meta"]["key"], frames["world_meta"]["value"]))
    window_end = pd.Timestamp(meta["telemetry_end"])
    rows = _affected(frames, window_end)
    faulted, clean = _series_table(frames), _series_table(twin)

    in_window = rows.drop_duplicates("fault_id")
    results.faults += len(in_window)
    detected: set[str] = set()
    shape_of = rows[rows["present"]].groupby("fault_id")["shape"].agg(lambda s: "/".join(sorted(set(s))))

    for (asset_id, sensor), fault_rows in rows[rows["present"]].groupby(["asset_id", "sensor"]):
        series = faulted.get((asset_id, sensor))
        if series is None or series.empty:
            continue
        t0 = time.perf_counter()
        try:
            found = timeseries.detect_anomalies(series["ts"], series["value"], alpha=alpha)
        except timeseries.NotEnoughDataError:
            results.skipped += 1
            continue
        results.seconds.append(time.perf_counter() - t0)
        results.series += 1
        pts = found.points
        results.readings += len(pts)
        truth = np.zeros(len(pts), dtype=bool)
        ts = pts["ts"]
        for f in fault_rows.itertuples():
            truth |= ((ts >= f.onset_ts) & (ts < f.end)).to_numpy()
        predicted = pts["anomaly"].to_numpy()
        results.points.add(predicted, truth)

        # the visible signature: where the faulted reading differs from the fault-free twin's
        twin_series = clean.get((asset_id, sensor))
        if twin_series is not None:
            clean_values = timeseries.snap_to_grid(twin_series["ts"], twin_series["value"]).reindex(ts).to_numpy()
            visible = np.isfinite(clean_values) & ~np.isclose(pts["value"].to_numpy(), clean_values, rtol=0, atol=1e-9)
            results.visible.add(predicted, visible)
            effect = pts["value"].to_numpy() - clean_values
            half_width = np.where(effect > 0, pts["upper"] - pts["expected"], pts["expected"] - pts["lower"])
            results.visible_beyond_band += int((visible & (np.abs(effect) > half_width)).sum())

        wins = found.windows
        results.windows += len(wins)
        if len(wins):
            on_fault = np.zeros(len(wins), dtype=bool)
            for f in fault_rows.itertuples():
                hit = _overlaps(wins, f.onset_ts, f.end)
                on_fault |= hit
                if hit.any():
                    detected.add(f.fault_id)
            results.windows_on_fault += int(on_fault.sum())
        for f in fault_rows.itertuples():
            tally = results.by_sensor[sensor]
            tally[1] += 1
            tally[0] += int(bool(len(wins)) and _overlaps(wins, f.onset_ts, f.end).any())

        if twin_series is not None and len(twin_series) >= timeseries.MIN_OBSERVED_POINTS:
            twin_found = timeseries.detect_anomalies(twin_series["ts"], twin_series["value"], alpha=alpha)
            results.twin_readings += len(twin_found.points)
            results.twin_flagged += int(twin_found.points["anomaly"].sum())
            results.twin_windows += len(twin_found.windows)
            results.twin_series_days += len(twin_found.points) / timeseries.DAILY_SEASON

    results.faults_detected += len(detected)
    for fid, shape in shape_of.items():
        entry = results.by_shape[shape]
        entry[1] += 1
        entry[0] += int(fid in detected)
    no_sensor = set(in_window["fault_id"]) - set(shape_of.index)
    if no_sensor:
        entry = results.by_shape["(no telemetry effect)"]
        entry[1] += len(no_sensor)


def _fmt(x: float) -> str:
    return "   -  " if x != x else f"{x:6.3f}"


def report(results: Results, scale: str, seeds: list[int], alpha: float) -> str:
    lines = [
        f"Anomaly detection vs injected faults  (scale {scale}, seeds {', '.join(map(str, seeds))}, alpha {alpha}, "
        f"method: {timeseries.ANOMALY_METHOD})",
        f"series: {results.series} affected asset x sensor ({results.skipped} skipped: too little data), "
        f"readings: {results.readings:,}, faults in window: {results.faults}",
        "",
        f"{'score':44s} {'precision':>9s} {'recall':>8s} {'F1':>8s}",
        f"{'point-wise vs [onset, end) of injected faults':44s} {_fmt(results.points.precision):>9s} "
        f"{_fmt(results.points.recall):>8s} {_fmt(results.points.f1):>8s}",
        f"{'point-wise vs visible signature (twin diff)':44s} {_fmt(results.visible.precision):>9s} "
        f"{_fmt(results.visible.recall):>8s} {_fmt(results.visible.f1):>8s}",
    ]
    visible_total = results.visible.tp + results.visible.fn
    if visible_total:
        lines.append(f"  (of {visible_total:,} visible-signature readings, {results.visible_beyond_band / visible_total:.1%} "
                     "move by more than the band's half-width: roughly the recall any band this wide can reach)")
    win_precision = results.windows_on_fault / results.windows if results.windows else float("nan")
    fault_recall = results.faults_detected / results.faults if results.faults else float("nan")
    lines.append(
        f"{'event-wise (windows on a fault / faults found)':44s} {_fmt(win_precision):>9s} {_fmt(fault_recall):>8s} "
        f"{_fmt(2 * win_precision * fault_recall / (win_precision + fault_recall) if win_precision + fault_recall else float('nan')):>8s}"
        f"   ({results.faults_detected} of {results.faults} faults, {results.windows_on_fault} of {results.windows} windows)"
    )
    silent = results.by_shape.get("(no telemetry effect)", [0, 0])[1]
    if silent and results.faults > silent:
        lines.append(f"{'  recall among faults with a telemetry effect':44s} {'':>9s} "
                     f"{_fmt(results.faults_detected / (results.faults - silent)):>8s}"
                     f"   ({results.faults_detected} of {results.faults - silent})")
    lines += ["", "faults detected by signature shape:"]
    for shape, (hit, total) in sorted(results.by_shape.items()):
        lines.append(f"  {shape:36s} {hit:3d} / {total:3d}")
    lines += ["", "fault-sensor pairs detected by sensor:"]
    for sensor, (hit, total) in sorted(results.by_sensor.items()):
        lines.append(f"  {sensor:44s} {hit:3d} / {total:3d}")
    if results.twin_readings:
        lines += [
            "",
            f"fault-free twin (same series, no faults): {results.twin_flagged / results.twin_readings:.4%} of "
            f"{results.twin_readings:,} readings flagged, "
            f"{results.twin_windows / max(results.twin_series_days / 7, 1e-9):.2f} windows per series-week",
        ]
    if results.seconds:
        s = np.array(results.seconds)
        per_reading = s.sum() / max(results.readings, 1) * 1e6
        lines.append(
            f"seconds per series (detect_anomalies, ~{results.readings // max(results.series, 1):,} readings): "
            f"mean {s.mean():.3f}, p95 {np.percentile(s, 95):.3f}, max {s.max():.3f}  ({per_reading:.1f} us per reading)"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> Results:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", default="default", help="world scale (tiny, small, default, large)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 8, 9], help="world seeds to pool")
    parser.add_argument("--alpha", type=float, default=0.01, help="per-reading false-alarm rate of the bounds")
    args = parser.parse_args(argv)
    results = Results()
    for seed in args.seeds:
        evaluate_seed(args.scale, seed, args.alpha, results)
    print(report(results, args.scale, args.seeds, args.alpha))
    return results


if __name__ == "__main__":
    main()
