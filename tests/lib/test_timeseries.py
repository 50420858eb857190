"""Forecasting and anomaly detection on synthetic 15-minute series (no world, no tools)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aob_pipeline.lib import timeseries

START = pd.Timestamp("2020-06-01")  # a Monday


def daily_series(days: int, seed: int = 0, noise: float = 0.5, start: pd.Timestamp = START) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """A sensor with a daily cycle (amplitude 8), small day-to-day level changes and white noise."""
    rng = np.random.default_rng(seed)
    n = days * timeseries.DAILY_SEASON
    idx = pd.date_range(start, periods=n, freq="15min")
    cycle = 8 * np.sin(2 * np.pi * (np.arange(n) % 96) / 96 - np.pi / 2)
    level = np.repeat(rng.normal(0, 0.3, days), timeseries.DAILY_SEASON)
    return idx, 50 + cycle + level + rng.normal(0, noise, n)


def weekday_schedule_series(days: int, seed: int = 0) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """Power of a unit that runs Monday-Friday 06:00-20:00 and is off (0) otherwise."""
    rng = np.random.default_rng(seed)
    idx = pd.date_range(START, periods=days * 96, freq="15min")
    running = (idx.weekday < 5) & (idx.hour >= 6) & (idx.hour < 20)
    load = 200 + 60 * np.sin(np.pi * (idx.hour + idx.minute / 60 - 6) / 14)
    values = np.where(running, load + rng.normal(0, 3, len(idx)), 0.0)
    return idx, values


# ------------------------------------------------------------------------------------------ the grid

def test_regularize_snaps_jitter_and_fills_gaps():
    idx, y = daily_series(3)
    jitter = pd.to_timedelta(np.random.default_rng(1).integers(-7, 8, len(idx)), unit="s")
    keep = np.ones(len(idx), dtype=bool)
    keep[100:103] = False  # 45 minutes: interpolated
    keep[150:170] = False  # 5 hours: filled from the daily profile
    series = timeseries.regularize(idx[keep] + jitter[keep], y[keep])
    assert len(series) == len(idx)
    assert series.index[0] == idx[0] and series.index.freq == timeseries.STEP
    assert series.n_observed == keep.sum()
    assert series.interpolated == 3 and series.profile_filled == 20
    assert np.isfinite(series.values).all()
    # interpolation sits between its neighbours; the profile fill stays near the true cycle
    assert min(y[99], y[103]) - 1 <= series.values[101] <= max(y[99], y[103]) + 1
    assert np.abs(series.values[150:170] - y[150:170]).max() < 3


def test_regularize_window_is_half_open_and_never_extends_past_readings():
    idx, y = daily_series(4)
    series = timeseries.regularize(idx, y, start=idx[10], end=idx[300])
    assert series.index[0] == idx[10]
    assert series.index[-1] == idx[299]


def test_regularize_refuses_thin_windows():
    idx, y = daily_series(3)
    with pytest.raises(timeseries.NotEnoughDataError, match="at least 192"):
        timeseries.regularize(idx[:150], y[:150])
    sparse = np.zeros(len(idx), dtype=bool)
    sparse[::3] = True  # a third of the slots
    with pytest.raises(timeseries.NotEnoughDataError, match="hold a reading"):
        timeseries.regularize(idx[sparse], y[sparse], min_observed=10)


# -------------------------------------------------------------------------------------- forecasting

@pytest.mark.parametrize("model", list(timeseries.FORECAST_MODELS))
def test_every_model_forecasts_with_ordered_intervals(model):
    idx, y = daily_series(7, seed=3)
    result = timeseries.forecast(idx, y, horizon=48, model=model, level=80)
    fc = result.frame
    assert list(fc.columns) == ["ts", "mean", "lo", "hi"]
    assert len(fc) == 48
    assert fc["ts"].iloc[0] == idx[-1] + timeseries.STEP
    assert (fc["ts"].diff().dropna() == timeseries.STEP).all()
    assert (fc["lo"] <= fc["mean"]).all() and (fc["mean"] <= fc["hi"]).all()
    assert (fc["hi"] > fc["lo"]).any()
    # the daily cycle is carried forward: the forecast follows the next half day of the cycle
    truth = 50 + 8 * np.sin(2 * np.pi * (np.arange(len(y), len(y) + 48) % 96) / 96 - np.pi / 2)
    assert np.abs(fc["mean"].to_numpy() - truth).mean() < 2.0


def test_default_model_intervals_cover_held_out_data_near_their_level():
    covered, total = 0, 0
    for seed in range(4):
        idx, y = daily_series(16, seed=seed, noise=1.0)
        history, future = y[:-96], y[-96:]
        out = timeseries.forecast_values(history, 96, level=90)
        assert out.calibration_windows == 2 and out.interval_scale > 0
        covered += int(((future >= out.lo) & (future <= out.hi)).sum())
        total += len(future)
    coverage = covered / total
    assert 0.8 <= coverage <= 0.99, coverage
    # a higher level widens the model's interval
    narrow = timeseries.forecast_values(history, 24, level=80, calibration_windows=0)
    wide = timeseries.forecast_values(history, 24, level=95, calibration_windows=0)
    assert narrow.calibration_windows == 0 and narrow.interval_scale == 1.0
    assert np.all(wide.hi - wide.lo > narrow.hi - narrow.lo)


def test_forecast_is_clipped_to_the_plausible_range():
    idx, y = daily_series(4, seed=2)
    fc = timeseries.forecast(idx, y, horizon=96, model="seasonal_naive", plausible_range=(45.0, None)).frame
    assert fc[["mean", "lo", "hi"]].min().min() == 45.0
    assert fc["hi"].max() > 55  # no upper bound given: the top of the cycle is kept
    unbounded = timeseries.forecast(idx, y, horizon=96, model="seasonal_naive").frame
    assert unbounded["lo"].min() < 45.0


def test_constant_series_gets_a_flat_forecast():
    out = timeseries.forecast_values(np.full(300, 44.0), 10)
    assert np.all(out.mean == 44.0) and np.all(out.lo == 44.0) and np.all(out.hi == 44.0)


@pytest.mark.parametrize("kwargs, message", [
    ({"model": "prophet"}, "unknown forecast model"),
    ({"horizon": 0}, "horizon"),
    ({"horizon": timeseries.MAX_HORIZON + 1}, "horizon"),
    ({"level": 100}, "level"),
    ({"level": 20}, "level"),
])
def test_forecast_rejects_bad_arguments(kwargs, message):
    idx, y = daily_series(3)
    with pytest.raises(ValueError, match=message):
        timeseries.forecast(idx, y, **kwargs)


def test_forecast_needs_two_days():
    idx, y = daily_series(3)
    with pytest.raises(timeseries.NotEnoughDataError):
        timeseries.forecast(idx[:100], y[:100])


# -------------------------------------------------------------------------------- anomaly detection

def test_no_anomalies_on_a_clean_periodic_series():
    for seed in range(3):
        idx, y = daily_series(21, seed=seed)
        result = timeseries.detect_anomalies(idx, y)
        assert result.anomalies.empty, result.windows
        assert result.windows.empty
        assert len(result.points) == len(idx)


def test_no_anomalies_on_a_weekday_schedule():
    """Weekends off are a normal weekly pattern, not a fault: weekend days are compared with weekend days."""
    idx, y = weekday_schedule_series(28)
    result = timeseries.detect_anomalies(idx, y)
    assert result.anomalies.empty, result.windows


def test_day_types_separate_weekends_only_when_they_differ():
    idx, y = weekday_schedule_series(21)
    matrix = y.reshape(-1, 96)
    weekdays = idx[::96].weekday.to_numpy()
    types = timeseries.day_types(matrix, weekdays)
    assert set(types[weekdays < 5]) == {0}
    assert types[weekdays == 5][0] != 0 and set(types[weekdays == 5]) == set(types[weekdays == 6])
    idx2, y2 = daily_series(21)
    assert set(timeseries.day_types(y2.reshape(-1, 96), idx2[::96].weekday.to_numpy())) == {0}


def _overlaps(windows: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> bool:
    return bool(((windows["start"] < end) & (windows["end"] > start)).any())


def test_finds_a_planted_step_and_nothing_before_it():
    idx, y = daily_series(28, seed=5)
    onset, repair = 14 * 96 + 40, 19 * 96
    y = y.copy()
    y[onset:repair] += 4.0  # about 8 noise standard deviations
    result = timeseries.detect_anomalies(idx, y)
    flagged = result.points.set_index("ts")["anomaly"]
    assert _overlaps(result.windows, idx[onset], idx[repair - 1])
    assert flagged.iloc[onset:repair].mean() > 0.8  # the step stays flagged until the repair
    assert not flagged.iloc[:onset].any()
    first = result.anomalies["ts"].min()
    assert idx[onset] <= first <= idx[onset] + pd.Timedelta(hours=1)
    assert set(result.windows["direction"]) == {"high"}


def test_finds_a_planted_ramp():
    idx, y = daily_series(28, seed=6)
    onset, repair = 12 * 96, 20 * 96
    y = y.copy()
    y[onset:repair] -= np.linspace(0, 8, repair - onset)
    result = timeseries.detect_anomalies(idx, y)
    assert _overlaps(result.windows, idx[onset], idx[repair - 1])
    inside = result.anomalies[(result.anomalies["ts"] >= idx[onset]) & (result.anomalies["ts"] < idx[repair])]
    assert len(inside) > 0.3 * (repair - onset)
    assert not (result.anomalies["ts"] < idx[onset]).any()
    assert (result.windows[_window_mask(result.windows, idx[onset], idx[repair])]["direction"] == "low").all()


def _window_mask(windows: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.Series:
    return (windows["start"] < end) & (windows["end"] > start)


def test_flags_an_isolated_spike_but_not_a_short_wobble():
    idx, y = daily_series(14, seed=8)
    y = y.copy()
    y[10 * 96 + 30] += 30.0  # one reading far out: a spike
    y[11 * 96 + 50] += 2.2  # one reading just past the band: noise-like, not confirmed
    result = timeseries.detect_anomalies(idx, y)
    assert list(result.anomalies["ts"]) == [idx[10 * 96 + 30]]
    assert result.anomalies["score"].iloc[0] > 1


def test_anomaly_rows_carry_bounds_and_scores():
    idx, y = daily_series(10, seed=9)
    y = y.copy()
    y[8 * 96:8 * 96 + 20] += 6
    result = timeseries.detect_anomalies(idx, y, alpha=0.05)
    a = result.anomalies
    assert {"ts", "value", "expected", "lower", "upper", "score", "anomaly"} <= set(a.columns)
    assert ((a["value"] > a["upper"]) | (a["value"] < a["lower"])).all()
    assert (a["score"] > 0).all()
    w = result.windows.iloc[0]
    assert w["start"] == idx[8 * 96] and w["end"] == idx[8 * 96 + 20] and w["points"] == 20


def test_anomaly_detection_ignores_missing_readings_and_needs_two_days():
    idx, y = daily_series(10, seed=2)
    keep = np.ones(len(idx), dtype=bool)
    keep[300:500] = False
    result = timeseries.detect_anomalies(idx[keep], y[keep])
    assert len(result.points) == keep.sum()
    assert result.anomalies.empty
    with pytest.raises(timeseries.NotEnoughDataError):
        timeseries.detect_anomalies(idx[:150], y[:150])
    with pytest.raises(ValueError, match="alpha"):
        timeseries.detect_anomalies(idx, y, alpha=0.7)
