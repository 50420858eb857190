"""FMSR tools: relevance straight from the catalog's sensor effects, HVAC modes, and the structured errors."""

from __future__ import annotations

import pandas as pd
import pytest

from aob_pipeline.lib.tools.registry import call_tool


def none_if_nan(value):
    return None if pd.isna(value) else value


def ok(ctx, name, **args):
    env = call_tool(ctx, name, args)
    assert env["ok"], env
    return env["result"]


def err(ctx, name, **args):
    env = call_tool(ctx, name, args)
    assert not env["ok"], env
    return env["error"]


@pytest.mark.parametrize("cls", ["Chiller", "AHU", "HVAC"])
def test_list_failure_modes_matches_catalog(world, cls):
    modes = world.frames["failure_modes"]
    effects = world.frames["failure_mode_sensors"]
    res = ok(world.ctx, "fmsr_list_failure_modes", equipment_class=cls.lower())
    assert [m["failure_mode_id"] for m in res["failure_modes"]] == sorted(
        modes[modes["equipment_class"] == cls]["failure_mode_id"])
    with_hvac = ok(world.ctx, "fmsr_list_failure_modes", equipment_class=cls, include_hvac=True)
    hvac_ids = set(modes[modes["equipment_class"] == "HVAC"]["failure_mode_id"])
    shared = set(effects[(effects["equipment_class"] == cls) & effects["failure_mode_id"].isin(hvac_ids)]["failure_mode_id"])
    expected = set(modes[modes["equipment_class"] == cls]["failure_mode_id"]) | (shared if cls != "HVAC" else set())
    assert {m["failure_mode_id"] for m in with_hvac["failure_modes"]} == expected


def test_hvac_modes_apply_where_their_effects_name_the_class(handmade):
    chiller = ok(handmade.ctx, "fmsr_list_failure_modes", equipment_class="Chiller", include_hvac=True)
    ahu = ok(handmade.ctx, "fmsr_list_failure_modes", equipment_class="AHU", include_hvac=True)
    assert "FM-HV-01" in {m["failure_mode_id"] for m in chiller["failure_modes"]}
    assert "FM-HV-02" not in {m["failure_mode_id"] for m in chiller["failure_modes"]}  # AHU sensors only
    assert {"FM-HV-01", "FM-HV-02", "FM-AHU-01"} == {m["failure_mode_id"] for m in ahu["failure_modes"]}


def test_failure_mode_sensors_matches_catalog_for_every_mode(world):
    effects = world.frames["failure_mode_sensors"]
    for mode in world.frames["failure_modes"].itertuples():
        res = ok(world.ctx, "fmsr_failure_mode_sensors", failure_mode=mode.failure_mode_id.lower())
        expected = effects[effects["failure_mode_id"] == mode.failure_mode_id]
        got = {(s["sensor"], s["equipment_class"], s["direction"], s["shape"]) for s in res["sensors"]}
        assert got == set(zip(expected["sensor"], expected["equipment_class"], expected["direction"], expected["shape"]))
        assert all(s["rationale"] for s in res["sensors"])
        by_name = ok(world.ctx, "fmsr_failure_mode_sensors", failure_mode=mode.failure_mode.upper())
        assert by_name["failure_mode_id"] == mode.failure_mode_id


def test_failure_mode_sensors_for_an_asset(handmade):
    res = ok(handmade.ctx, "fmsr_failure_mode_sensors", failure_mode="FM-HV-01", asset="AHU 3")
    assert [(s["sensor"], s["on_asset"]) for s in res["sensors"]] == [("Supply Air Temperature", True)]
    res = ok(handmade.ctx, "fmsr_failure_mode_sensors", failure_mode="Condenser Fouling", asset="Chiller 13")
    on = {s["sensor"]: s["on_asset"] for s in res["sensors"]}
    assert on == {"Power Input": False, "Chiller Efficiency": False}  # Chiller 13 has no power meter
    assert {s["unit"] for s in res["sensors"]} == {"kW", "kW/ton"}


def test_sensor_failure_modes_matches_catalog(world):
    effects = world.frames["failure_mode_sensors"]
    modes = world.frames["failure_modes"].set_index("failure_mode_id")
    assets = world.frames["assets"]
    sensors = world.frames["sensors"]
    for asset in assets.drop_duplicates("equipment_class").itertuples():
        for sensor in sensors[sensors["asset_id"] == asset.asset_id]["sensor"]:
            res = ok(world.ctx, "fmsr_sensor_failure_modes", sensor=sensor, asset=asset.name)
            expected = effects[(effects["sensor"] == sensor) & (effects["equipment_class"] == asset.equipment_class)]
            assert sorted(m["failure_mode_id"] for m in res["failure_modes"]) == sorted(expected["failure_mode_id"])
            for m in res["failure_modes"]:
                row = expected[expected["failure_mode_id"] == m["failure_mode_id"]].iloc[0]
                assert m["direction"] == row["direction"] and m["rationale"] == row["rationale"]
                assert m["equipment_class"] == modes.loc[m["failure_mode_id"], "equipment_class"]
            by_class = ok(world.ctx, "fmsr_sensor_failure_modes", sensor=sensor, equipment_class=asset.equipment_class)
            assert by_class["failure_modes"] == res["failure_modes"]


def test_sensor_failure_modes_hvac_and_all_classes(handmade):
    ctx = handmade.ctx
    res = ok(ctx, "fmsr_sensor_failure_modes", sensor="Supply Temperature", asset="chiller 6")
    assert [m["failure_mode_id"] for m in res["failure_modes"]] == ["FM-CH-02", "FM-HV-01"]
    hv = next(m for m in res["failure_modes"] if m["failure_mode_id"] == "FM-HV-01")
    assert hv["equipment_class"] == "HVAC" and hv["direction"] == "erratic" and hv["sensor_class"] == "Chiller"
    only_hvac = ok(ctx, "fmsr_sensor_failure_modes", sensor="Supply Fan Speed", equipment_class="HVAC")
    assert [m["failure_mode_id"] for m in only_hvac["failure_modes"]] == ["FM-HV-02"]
    everywhere = ok(ctx, "fmsr_sensor_failure_modes", sensor="supply fan speed")
    assert [m["failure_mode_id"] for m in everywhere["failure_modes"]] == ["FM-AHU-01", "FM-HV-02"]
    none = ok(ctx, "fmsr_sensor_failure_modes", sensor="Return Temperature", asset="Chiller 6")
    assert none["count"] == 0 and none["failure_modes"] == []


def test_sensor_failure_modes_errors(handmade):
    ctx = handmade.ctx
    e = err(ctx, "fmsr_sensor_failure_modes", sensor="Supply Temp")
    assert e["code"] == "unknown_sensor" and "Supply Temperature" in e["hint"]
    e = err(ctx, "fmsr_sensor_failure_modes", sensor="Supply Air Temperature", equipment_class="Chiller")
    assert e["code"] == "unknown_sensor"
    e = err(ctx, "fmsr_sensor_failure_modes", sensor="Power Input", asset="Chiller 13")
    assert e["code"] == "unknown_sensor" and "Chiller 13" in e["message"]
    e = err(ctx, "fmsr_sensor_failure_modes", sensor="Supply Temperature", asset="Chiller 6", equipment_class="AHU")
    assert e["code"] == "invalid_arguments"
    e = err(ctx, "fmsr_list_failure_modes", equipment_class="Boiler")
    assert e["code"] == "invalid_arguments" and "HVAC" in e["hint"]


def test_unknown_failure_mode_hint(handmade):
    e = err(handmade.ctx, "fmsr_failure_mode_details", failure_mode="condenser foul")
    assert e["code"] == "unknown_failure_mode" and "Condenser Fouling (FM-CH-01)" in e["hint"]
    e = err(handmade.ctx, "fmsr_failure_mode_sensors", failure_mode="FM-CH-99")
    assert e["code"] == "unknown_failure_mode" and "FM-CH-0" in e["hint"]


def test_sensor_metadata(world):
    sensors = world.frames["sensors"]
    tele = world.frames["telemetry"]
    for row in sensors.drop_duplicates("asset_id").itertuples():
        res = ok(world.ctx, "fmsr_sensor_metadata", asset=row.asset_id, sensor=row.sensor.upper())
        assert res["sensor"] == row.sensor and res["unit"] == row.unit
        assert res["plausible_range"] == {"min": none_if_nan(row.min_value), "max": none_if_nan(row.max_value)}
        mine = tele[(tele["asset_id"] == row.asset_id) & (tele["sensor"] == row.sensor)]
        assert res["data"]["readings"] == len(mine)


def test_sensor_metadata_formula_links(handmade):
    res = ok(handmade.ctx, "fmsr_sensor_metadata", asset="Chiller 6", sensor="Tonnage")
    assert res["calculated"] is True
    assert res["depends_on"] == ["Chilled Water Flow", "Return Temperature", "Supply Temperature"]
    assert res["used_by"] == ["Chiller Efficiency"]
    assert res["failure_mode_ids"] == ["FM-CH-02"]
    assert res["data"] == {"first_ts": "2020-06-01T00:00:00", "last_ts": "2020-06-03T23:45:00", "readings": 272}


def test_failure_mode_details_matches_catalog(world):
    codes = world.frames["failure_codes"]
    rules = world.frames["alert_rules"]
    for mode in world.frames["failure_modes"].itertuples():
        res = ok(world.ctx, "fmsr_failure_mode_details", failure_mode=mode.failure_mode_id)
        assert res["degradation_mechanism"] == mode.degradation_mechanism
        assert res["primary_code"] == mode.primary_code
        sec = codes[codes["secondary_code"] == mode.secondary_code]
        if len(sec):
            assert res["secondary_code_description"] == sec["secondary_code_description"].iloc[0]
        assert sorted(r["rule_id"] for r in res["alert_rules"]) == sorted(
            rules[rules["primary_code"] == mode.primary_code]["rule_id"])


def test_failure_mode_details_hvac_applies_to(handmade):
    res = ok(handmade.ctx, "fmsr_failure_mode_details", failure_mode="Temperature Sensor Drift")
    assert res["applies_to"] == ["AHU", "Chiller"]
    assert res["primary_code_description"] == "Sensor calibration"
