"""The world generator: determinism, sizes, physics, fault signatures, work orders, alerts and anomalies.

Fast tests use the ``tiny`` (every asset, 7 days, one visible fault each) and ``small`` (14 days) scales; the default-scale
size check is marked ``slow``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aob_pipeline.lib.settings import Settings
from aob_pipeline.lib.world import _events, _physics
from aob_pipeline.lib.world.catalogs import STATUS_SENSOR, AlertRule, load_catalogs
from aob_pipeline.lib.world.generate import SCALES, generate_world
from aob_pipeline.lib.world.schema import WORLD_TABLES
from aob_pipeline.lib.world.store import store_world

SEED = 7


@pytest.fixture(scope="module")
def catalogs():
    return load_catalogs()


@pytest.fixture(scope="module")
def tiny(catalogs):
    return generate_world("tiny", SEED, catalogs)


@pytest.fixture(scope="module")
def small(catalogs):
    return generate_world("small", SEED, catalogs)


@pytest.fixture(scope="module")
def small_twin(catalogs):
    """The same small world without any fault."""
    return generate_world("small", SEED, catalogs, inject_faults=False)


def _meta(world) -> dict[str, str]:
    return dict(zip(world["world_meta"]["key"], world["world_meta"]["value"]))


def _wide(world) -> pd.DataFrame:
    """Telemetry as one row per asset and 15-minute step, one column per sensor."""
    tel = world["telemetry"]
    return tel.assign(grid=tel["ts"].dt.floor("15min")).pivot_table(
        index=["asset_id", "grid"], columns="sensor", values="value"
    )


def _outside_faults(world, wide: pd.DataFrame) -> pd.DataFrame:
    faults = world["injected_faults"]
    faults = faults[faults["in_telemetry"]]
    assets = wide.index.get_level_values(0)
    grid = wide.index.get_level_values(1)
    hit = np.zeros(len(wide), dtype=bool)
    for f in faults.itertuples():
        hit |= (assets == f.asset_id) & (grid >= f.onset_ts) & (grid < f.end_ts)
    return wide[~hit]


# ------------------------------------------------------------------------------------------ determinism


def test_same_seed_gives_identical_frames(catalogs, tiny):
    again = generate_world("tiny", SEED, catalogs)
    assert set(again) == set(WORLD_TABLES)
    for name in WORLD_TABLES:
        pd.testing.assert_frame_equal(again[name], tiny[name], check_exact=True, obj=name)
        assert pd.util.hash_pandas_object(again[name], index=True).sum() == pd.util.hash_pandas_object(tiny[name], index=True).sum()


def test_different_seed_gives_a_different_world(catalogs, tiny):
    other = generate_world("tiny", SEED + 1, catalogs)
    assert not other["telemetry"]["value"].equals(tiny["telemetry"]["value"])
    assert not other["work_orders"]["finished_at"].equals(tiny["work_orders"]["finished_at"])


def test_unknown_scale_is_refused(catalogs):
    with pytest.raises(ValueError, match="unknown scale 'huge'; choose one of tiny, small, default, large"):
        generate_world("huge", SEED, catalogs)


# ------------------------------------------------------------------------------------------ shape and sizes


def test_every_table_has_the_contract_columns(tiny):
    assert list(tiny) == list(WORLD_TABLES)
    for name, table in WORLD_TABLES.items():
        assert list(tiny[name].columns) == table.column_names, name
        for column in table.columns:
            if not column.nullable:
                assert not tiny[name][column.name].isna().any(), f"{name}.{column.name} has nulls"
        if table.key:
            assert not tiny[name].duplicated(list(table.key)).any(), f"{name} key {table.key} not unique"


def test_tiny_scale_sizes(tiny, catalogs):
    assert len(tiny["assets"]) == len(catalogs.assets)  # scenarios name every asset
    steps = 7 * 96
    assert 0.90 * len(tiny["sensors"]) * steps <= len(tiny["telemetry"]) <= len(tiny["sensors"]) * steps
    meta = _meta(tiny)
    assert meta["scale"] == "tiny" and meta["seed"] == str(SEED) and meta["source"] == "generated"
    assert meta["now"] == meta["telemetry_end"] == "2020-07-01T00:00:00"
    assert meta["telemetry_start"] == "2020-06-24T00:00:00"
    assert int(meta["injected_faults"]) == len(tiny["injected_faults"])
    in_window = tiny["injected_faults"].query("in_telemetry")
    assert sorted(in_window["asset_id"]) == sorted(a.asset_id for a in catalogs.assets)  # one per asset
    assert {catalogs.failure_mode(m).detectability for m in in_window["failure_mode_id"]} == {"high"}


def test_small_scale_has_every_asset(small, catalogs):
    assert len(small["assets"]) == len(catalogs.assets)
    assert set(small["telemetry"]["asset_id"]) == {a.asset_id for a in catalogs.assets}
    steps = 14 * 96
    assert 0.90 * len(small["sensors"]) * steps <= len(small["telemetry"]) <= len(small["sensors"]) * steps
    assert {"tiny", "small", "default", "large"} == set(SCALES)
    assert SCALES["large"].days >= 365


@pytest.mark.slow
def test_default_scale_sizes():
    world = generate_world("default", SEED)
    assert 2_100_000 <= len(world["telemetry"]) <= 2_500_000
    assert 3_900 <= len(world["work_orders"]) <= 4_500
    wo = world["work_orders"]
    assert wo["finished_at"].min().year == 2010 and wo["finished_at"].max() < pd.Timestamp("2020-07-01")
    assert len(world["events"]) > 4_000


# ------------------------------------------------------------------------------------------ telemetry realism


def test_telemetry_is_sorted_with_gaps_and_jitter(small):
    tel = small["telemetry"]
    order = tel.sort_values(["asset_id", "sensor", "ts"], kind="mergesort").index
    assert (order == tel.index).all()
    meta = _meta(small)
    assert tel["ts"].min() >= pd.Timestamp(meta["telemetry_start"]) and tel["ts"].max() < pd.Timestamp(meta["now"])
    kept = len(tel) / (len(small["sensors"]) * 14 * 96)
    assert 0.92 < kept < 0.99  # a few % of readings missing
    seconds = tel["ts"].dt.second
    assert 0.03 < (seconds > 0).mean() < 0.15 and seconds.max() < 10  # a few seconds of jitter on some rows
    assert (tel["ts"].dt.minute % 15 == 0).all()


def test_values_stay_in_the_sensor_ranges(small):
    ranges = small["sensors"].set_index(["asset_id", "sensor"])[["min_value", "max_value"]]
    joined = small["telemetry"].join(ranges, on=["asset_id", "sensor"])
    assert (joined["value"] >= joined["min_value"]).all() and (joined["value"] <= joined["max_value"]).all()


def test_chiller_physics_relations_hold(small):
    wide = _outside_faults(small, _wide(small))
    chillers = wide[wide.index.get_level_values(0).str.startswith("CWC")]
    running = chillers[chillers["Run Status"] == 1].dropna(
        subset=["Tonnage", "Chilled Water Flow", "Return Temperature", "Supply Temperature", "Power Input", "Chiller Efficiency"]
    )
    assert len(running) > 5_000
    expected_tons = running["Chilled Water Flow"] * (running["Return Temperature"] - running["Supply Temperature"]) / 24
    np.testing.assert_allclose(running["Tonnage"], expected_tons, rtol=1e-3, atol=0.06)
    loaded = running[running["Tonnage"] >= 5]
    np.testing.assert_allclose(loaded["Chiller Efficiency"], loaded["Power Input"] / loaded["Tonnage"], atol=1e-3)
    assert loaded["Chiller Efficiency"].between(0.3, 1.0).all()
    both = chillers.dropna(subset=["Supply Temperature", "Liquid Refrigerant Evaporator Temperature"])
    assert (both["Supply Temperature"] >= both["Liquid Refrigerant Evaporator Temperature"]).all()
    condenser = running.dropna(subset=["Condenser Water Return To Tower Temperature", "Condenser Water Supply Temperature"])
    assert (condenser["Condenser Water Return To Tower Temperature"] > condenser["Condenser Water Supply Temperature"]).all()
    # the more a chiller is loaded, the warmer the water it gets back
    assert running["Chiller % Loaded"].corr(running["Return Temperature"] - running["Supply Temperature"]) > 0.8


def test_stopped_chillers_read_zero_load(small):
    wide = _outside_faults(small, _wide(small))
    chillers = wide[wide.index.get_level_values(0).str.startswith("CWC")]
    stopped = chillers[chillers["Run Status"] == 0]
    assert len(stopped) > 500  # some chillers are off nights and weekends
    for sensor in ("Power Input", "Tonnage", "Chiller Efficiency", "Chiller % Loaded", "Chilled Water Flow", "Condenser Water Flow"):
        assert (stopped[sensor].dropna() == 0).all(), sensor
    # outside faults a chiller runs exactly when its schedule enables it
    paired = chillers.dropna(subset=["Run Status", "Schedule"])
    assert (paired["Run Status"] == paired["Schedule"]).all()
    weekday_unit = paired.loc["CWC04003"]  # weekdays 06-20
    assert (weekday_unit[weekday_unit.index.dayofweek >= 5]["Run Status"] == 0).all()


def test_ahu_fan_follows_the_cube_law(small):
    wide = _outside_faults(small, _wide(small))
    ahus = wide[wide.index.get_level_values(0).str.startswith("AHU")]
    running = ahus[(ahus["Supply Fan Status"] == 1) & (ahus["Supply Fan Speed"] > 30)].dropna(subset=["Supply Fan Power", "Supply Fan Speed"])
    for asset_id, rows in running.groupby(level=0):
        exponent = np.polyfit(np.log(rows["Supply Fan Speed"] / 100), np.log(rows["Supply Fan Power"]), 1)[0]
        assert 2.7 < exponent < 3.3, (asset_id, exponent)
    mixed = ahus.dropna(subset=["Mixed Air Temperature", "Outside Air Temperature", "Return Air Temperature", "Outside Air Damper Position"])
    mixed = mixed[mixed["Supply Fan Status"] == 1]
    fraction = mixed["Outside Air Damper Position"] / 100
    expected = fraction * mixed["Outside Air Temperature"] + (1 - fraction) * mixed["Return Air Temperature"]
    assert (mixed["Mixed Air Temperature"] - expected).abs().quantile(0.99) < 2.0


def test_weather_has_a_daily_cycle(small):
    oat = small["telemetry"]
    oat = oat[oat["sensor"] == "Outside Air Temperature"]
    by_hour = oat.groupby(oat["ts"].dt.hour)["value"].mean()
    assert by_hour.loc[14:16].mean() - by_hour.loc[4:6].mean() > 8


def test_filters_load_over_time_and_reset_when_changed():
    grid = np.datetime64("2020-06-01T00:00") + np.arange(96 * 60) * np.timedelta64(15, "m")
    change = np.array(["2020-06-20T10:00"], dtype="datetime64[ns]")
    age = _physics.filter_age_days(grid.astype("datetime64[ns]"), change, np.datetime64("2020-05-01T00:00", "ns"))
    before, after = np.searchsorted(grid, change[0]) - 1, np.searchsorted(grid, change[0]) + 1
    assert age[before] > 49 and age[after] < 0.1
    assert (np.diff(age[:before]) > 0).all()


# ------------------------------------------------------------------------------------------ faults


def _indexed(world) -> pd.Series:
    return world["telemetry"].set_index(["asset_id", "sensor", "ts"])["value"]


def _running_in_both(faulted: pd.Series, clean: pd.Series, asset_id: str, cls: str, index: pd.Index) -> np.ndarray:
    """Where the unit runs in the faulted world and in its twin (effects 'while running' show only there)."""
    status = STATUS_SENSOR[cls]
    runs = [s.loc[(asset_id, status)].reindex(index) == 1 for s in (faulted, clean)]
    return (runs[0] & runs[1]).to_numpy()


def _signature_checks(world, twin, catalogs):
    """(fault, effect, difference series) for every effect of every fault in the telemetry window.

    Effects that show only while the unit runs are compared where it runs in both worlds: a trip changes a
    stopped unit's readings through the physics, which is not the effect's own signature.
    """
    faulted, clean = _indexed(world), _indexed(twin)
    assert faulted.index.equals(clean.index)  # faults never change which readings exist
    diff = faulted - clean
    now = pd.Timestamp(_meta(world)["now"])
    for fault in world["injected_faults"][world["injected_faults"]["in_telemetry"]].itertuples():
        cls = catalogs.asset(fault.asset_id).equipment_class
        for effect in catalogs.failure_mode(fault.failure_mode_id).effects_for(cls):
            d = diff.loc[(fault.asset_id, effect.sensor)]
            d = d[(d.index >= fault.onset_ts) & (d.index < min(fault.end_ts, now))]
            if effect.while_running and effect.sensor != STATUS_SENSOR[cls]:
                d = d[_running_in_both(faulted, clean, fault.asset_id, cls, d.index)]
            yield fault, effect, d


@pytest.mark.parametrize("scale,seed", [("tiny", 1), ("tiny", 2), ("tiny", 3), ("tiny", 4), ("small", SEED), ("small", 5)])
def test_fault_signatures_move_sensors_in_the_catalogued_direction(catalogs, scale, seed):
    world = generate_world(scale, seed, catalogs)
    twin = generate_world(scale, seed, catalogs, inject_faults=False)
    checked = 0
    for fault, effect, d in _signature_checks(world, twin, catalogs):
        if not (d.abs() > 0).any():
            continue  # the unit never ran while the fault was active (e.g. a weekend)
        calculated = catalogs.sensor(catalogs.asset(fault.asset_id).equipment_class, effect.sensor).calculated
        where = (fault.fault_id, fault.failure_mode_id, effect.sensor, effect.direction)
        if effect.direction == "increase":
            assert d.mean() > 0 and (calculated or d.min() >= -0.011), where
        elif effect.direction == "decrease":
            assert d.mean() < 0 and (calculated or d.max() <= 0.011), where
        else:
            assert d.std() > 0, where
        checked += 1
    assert checked >= 2


def test_faults_change_nothing_before_they_start(small, small_twin):
    first_onset = small["injected_faults"].query("in_telemetry").groupby("asset_id")["onset_ts"].min()
    a, b = small["telemetry"], small_twin["telemetry"]
    before = (a["ts"] < a["asset_id"].map(first_onset).fillna(pd.Timestamp.max)).to_numpy()
    assert before.sum() > 10_000
    np.testing.assert_array_equal(a["value"].to_numpy()[before], b["value"].to_numpy()[before])
    assert len(small_twin["injected_faults"]) == 0 and small_twin["work_orders"]["preventive"].all()


def _jumpiness(series: pd.Series) -> float:
    """Mean absolute step-to-step change: grows with oscillation, spikes and on/off cycling."""
    return float(series.diff().abs().mean())


def test_faults_show_against_the_same_hours_before_onset(catalogs, tiny):
    """Each affected sensor's change from the same hours of the day before onset to the hours after it goes
    the catalogued way, net of the weather (the fault-free twin's change over the same hours)."""
    twin = generate_world("tiny", SEED, catalogs, inject_faults=False)
    observed, baseline = _indexed(tiny), _indexed(twin)
    meta = _meta(tiny)
    start, now = pd.Timestamp(meta["telemetry_start"]), pd.Timestamp(meta["now"])
    compared = 0
    for fault in tiny["injected_faults"].query("in_telemetry").itertuples():
        cls = catalogs.asset(fault.asset_id).equipment_class
        span = min(min(fault.end_ts, now) - fault.onset_ts, fault.onset_ts - start, pd.Timedelta(days=2))
        if span < pd.Timedelta(hours=6):
            continue
        for effect in catalogs.failure_mode(fault.failure_mode_id).effects_for(cls):
            seen, clean = observed.loc[(fault.asset_id, effect.sensor)], baseline.loc[(fault.asset_id, effect.sensor)]
            if effect.while_running and effect.sensor != STATUS_SENSOR[cls]:
                running = _running_in_both(observed, baseline, fault.asset_id, cls, seen.index)
                seen, clean = seen[running], clean[running]
            after = (seen.index >= fault.onset_ts) & (seen.index < fault.onset_ts + span)
            before = (seen.index >= fault.onset_ts - span) & (seen.index < fault.onset_ts)
            hours = set(seen.index[after].hour) & set(seen.index[before].hour)
            after &= seen.index.hour.isin(hours)
            before &= seen.index.hour.isin(hours)
            if (seen[after] == clean[after]).all():
                continue  # nothing showed yet: the unit did not run in these hours
            change = (seen[after].mean() - seen[before].mean()) - (clean[after].mean() - clean[before].mean())
            if effect.direction == "erratic":  # jumpier than before onset, beyond the weather's doing
                assert _jumpiness(seen[after]) - _jumpiness(seen[before]) > _jumpiness(clean[after]) - _jumpiness(clean[before]), (fault.fault_id, effect.sensor)
            else:
                sign = 1 if effect.direction == "increase" else -1
                assert sign * change > 0, (fault.fault_id, fault.failure_mode_id, effect.sensor, change)
            compared += 1
    assert compared >= 2


def test_faults_do_not_overlap_and_span_the_history(small):
    faults = small["injected_faults"].sort_values(["asset_id", "onset_ts"])
    for _, rows in faults.groupby("asset_id"):
        assert (rows["onset_ts"].iloc[1:].to_numpy() >= rows["end_ts"].iloc[:-1].to_numpy()).all()
    assert faults["onset_ts"].min() < pd.Timestamp("2011-01-01")
    assert (faults["end_ts"] > faults["onset_ts"]).all() and faults["severity"].between(0, 1).all()
    history = faults[~faults["in_telemetry"]]
    assert (history["end_ts"] < pd.Timestamp(_meta(small)["telemetry_start"])).all()


def test_faults_match_their_asset_class(small, catalogs):
    for fault in small["injected_faults"].itertuples():
        mode = catalogs.failure_mode(fault.failure_mode_id)
        assert mode.applies_to(catalogs.asset(fault.asset_id).equipment_class)


# ------------------------------------------------------------------------------------------ work orders


def test_corrective_work_orders_follow_faults(small, catalogs):
    faults, wo = small["injected_faults"], small["work_orders"].set_index("wo_id")
    now = pd.Timestamp(_meta(small)["now"])
    repaired = faults[faults["end_ts"] <= now]
    assert repaired["wo_id"].notna().all() and faults.loc[faults["end_ts"] > now, "wo_id"].isna().all()
    for fault in repaired.itertuples():
        order = wo.loc[fault.wo_id]
        mode = catalogs.failure_mode(fault.failure_mode_id)
        assert order["asset_id"] == fault.asset_id and not order["preventive"]
        assert order["finished_at"] == fault.end_ts
        assert (order["primary_code"], order["secondary_code"]) == (mode.primary_code, mode.secondary_code)
    assert (~wo["preventive"]).sum() == len(repaired)


def test_work_order_fields_are_plausible(small, catalogs):
    wo = small["work_orders"]
    assert wo["wo_id"].is_unique and wo["finished_at"].is_monotonic_increasing
    pm, cm = wo[wo["preventive"]], wo[~wo["preventive"]]
    pm_codes = {c.secondary_code for c in catalogs.failure_codes if c.category == "Preventive maintenance"}
    assert set(pm["secondary_code"]) <= pm_codes and not set(cm["secondary_code"]) & pm_codes
    assert wo["priority"].between(1, 5).all() and (cm["priority"] <= 4).all() and (pm["priority"] >= 4).all()
    assert (wo["duration_hours"] > 0).all() and (wo["labor_hours"] > 0).all()
    annual_brushing = pm[pm["secondary_code"] == "PM030a"]
    monthly = pm[pm["secondary_code"] == "PM010a"]
    assert annual_brushing["duration_hours"].median() > 4 * monthly["duration_hours"].median()
    early = [a.asset_id for a in catalogs.assets if a.install_date.year < 2014]
    monthly_2015 = monthly[monthly["asset_id"].isin(early) & (monthly["finished_at"].dt.year == 2015)]
    per_asset = monthly_2015.groupby("asset_id").size()
    assert len(per_asset) == len(early) and per_asset.between(9, 13).all()  # monthly, a few skipped or late
    names = dict(zip(small["assets"]["asset_id"], small["assets"]["name"]))
    assert (wo["equipment_name"] == wo["asset_id"].map(names)).all()
    assert wo["finished_at"].dt.hour.between(0, 23).all()


def test_no_work_before_commissioning(small, catalogs):
    wo = small["work_orders"]
    for asset in catalogs.assets:
        first = wo.loc[wo["asset_id"] == asset.asset_id, "finished_at"].min()
        assert first >= pd.Timestamp(asset.install_date)


# ------------------------------------------------------------------------------------------ alerts, anomalies, events


def test_alerts_fire_on_faults(small):
    alerts, faults = small["alerts"], small["injected_faults"].query("in_telemetry")
    assert len(alerts) > 0
    inside = np.zeros(len(alerts), dtype=bool)
    for fault in faults.itertuples():
        inside |= ((alerts["asset_id"] == fault.asset_id) & (alerts["start_time"] >= fault.onset_ts)
                   & (alerts["start_time"] < fault.end_ts)).to_numpy()
    assert inside.mean() >= 0.8  # alerts mostly follow faults, with a few false alarms


def test_alert_rules_hold_for_their_minimum_duration():
    rule = AlertRule(rule_id="RUL0900", rule_name="t", equipment_class="AHU", sensor="X", operator=">", threshold=5.0,
                     min_duration_minutes=45, active_when="always", rule_logic="X > 5 for 45 min", primary_code="MT010")
    ts = np.datetime64("2020-06-01T00:00") + np.arange(20) * np.timedelta64(15, "m")
    x = np.array([0, 6, 6, 0, 6, 6, 6, 6, np.nan, 6, 0, 0, 0, 0, 6, 6, 6, 6, 6, 6], dtype=float)
    episodes = _events.evaluate_rule(rule, {"X": x}, ts, "AHU")
    # 2 readings (30 min) are too short; the NaN inside the second run is bridged; the last run is still open
    assert [start for start, _ in episodes] == [ts[4], ts[14]]
    assert episodes[0][1] == ts[10] and np.isnat(episodes[1][1])


def test_alert_rule_relative_to_another_sensor_and_gated_by_running():
    rule = AlertRule(rule_id="RUL0901", rule_name="t", equipment_class="AHU", sensor="SAT", operator=">", threshold=2.5,
                     relative_to="SP", min_duration_minutes=30, active_when="running", rule_logic="SAT - SP > 2.5",
                     primary_code="CT030")
    ts = np.datetime64("2020-06-01T00:00") + np.arange(6) * np.timedelta64(15, "m")
    recorded = {"SAT": np.array([60, 60, 60, 60, 60, 55.0]), "SP": np.full(6, 55.0),
                "Supply Fan Status": np.array([0, 0, 1, 1, 1, 1.0])}
    assert _events.evaluate_rule(rule, recorded, ts, "AHU") == [(ts[2], ts[5])]


def test_anomaly_detection_flags_a_step_in_a_kpi():
    rng = np.random.default_rng(0)
    n = 10 * 96
    value = 0.55 + 0.01 * rng.standard_normal(n)
    value[900:910] += 0.3
    ts = np.datetime64("2020-06-01T00:00") + np.arange(n) * np.timedelta64(15, "m")
    found = _events.detect_kpi_anomalies(_events.KPIS[0], value, ts)
    assert len(found) == 1
    when, observed, upper, lower, score = found[0]
    assert ts[900] <= when < ts[910] and observed > upper and score > 1 and lower < 0.55 < upper


def test_anomalies_and_events_are_consistent(small):
    anomalies, events = small["anomalies"], small["events"]
    assert set(anomalies["kpi"]) <= {k.name for k in _events.KPIS}
    assert ((anomalies["value"] > anomalies["upper_bound"]) | (anomalies["value"] < anomalies["lower_bound"])).all()
    counts = events["event_group"].value_counts()
    assert counts.get("WORK_ORDER", 0) == len(small["work_orders"])
    assert counts.get("ALERT", 0) == len(small["alerts"]) and counts.get("ANOMALY", 0) == len(anomalies)
    categories = events.groupby("event_group")["event_category"].unique()
    assert set(categories["WORK_ORDER"]) == {"PM", "CM"}
    assert events["event_id"].is_unique and events["event_time"].is_monotonic_increasing


def test_injected_faults_never_reach_agents_but_the_world_stores(tiny, tmp_path):
    counts = store_world(Settings(home=tmp_path), tiny)
    assert counts["telemetry"] == len(tiny["telemetry"])
    snapshot = tmp_path / "world"
    assert (snapshot / "telemetry.parquet").exists() and not (snapshot / "injected_faults.parquet").exists()
