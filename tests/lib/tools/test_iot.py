"""IoT tools: values cross-checked against pandas on the same world, paging, and every structured error."""

from __future__ import annotations

import pandas as pd
import pytest

from aob_pipeline.lib.tools.registry import call_tool


def ok(ctx, name, **args):
    env = call_tool(ctx, name, args)
    assert env["ok"], env
    return env["result"]


def err(ctx, name, **args):
    env = call_tool(ctx, name, args)
    assert not env["ok"], env
    return env["error"]


def busiest_series(world):
    """(asset record, sensor, one full day inside its data) for the sensor with the most readings."""
    tele = world.frames["telemetry"]
    counts = tele.groupby(["asset_id", "sensor"]).size().sort_values(ascending=False)
    asset_id, sensor = counts.index[0]
    series = tele[(tele["asset_id"] == asset_id) & (tele["sensor"] == sensor)].sort_values("ts")
    day = pd.Timestamp(series["ts"].iloc[len(series) // 2]).normalize()
    assets = world.frames["assets"]
    asset = assets[assets["asset_id"] == asset_id].iloc[0]
    return asset, sensor, series, day


# ------------------------------------------------------------------------------------------- lists

def test_world_fixture_is_the_generated_world_when_the_generator_exists(world):
    try:
        import aob_pipeline.lib.world.generate  # noqa: F401
    except ImportError:
        assert world.source == "handmade"
    else:
        assert world.source == "generated"
        assert dict(zip(world.frames["world_meta"]["key"], world.frames["world_meta"]["value"]))["scale"] == "tiny"


def test_list_sites_matches_world(world):
    res = ok(world.ctx, "iot_list_sites")
    sites = world.frames["sites"]
    assert {s["site_id"] for s in res["sites"]} == set(sites["site_id"])
    per_site = world.frames["assets"].groupby("site_id").size()
    for s in res["sites"]:
        assert s["asset_count"] == int(per_site.get(s["site_id"], 0))
    assert "MAIN" in {s["site_id"] for s in res["sites"]}


def test_list_assets_filters_match_world(world):
    assets = world.frames["assets"]
    res = ok(world.ctx, "iot_list_assets")
    assert [a["asset_id"] for a in res["assets"]] == sorted(assets["asset_id"])
    for site_id in assets["site_id"].unique():
        res = ok(world.ctx, "iot_list_assets", site_id=site_id.lower())
        assert {a["asset_id"] for a in res["assets"]} == set(assets[assets["site_id"] == site_id]["asset_id"])
    res = ok(world.ctx, "iot_list_assets", equipment_class="chillers", site_id="MAIN")
    expected = assets[(assets["equipment_class"] == "Chiller") & (assets["site_id"] == "MAIN")]
    assert {a["asset_id"] for a in res["assets"]} == set(expected["asset_id"])
    assert res["filters"] == {"site_id": "MAIN", "equipment_class": "Chiller"}


def test_list_assets_errors(world):
    e = err(world.ctx, "iot_list_assets", site_id="Atlantis")
    assert e["code"] == "unknown_site" and "MAIN" in e["hint"]
    e = err(world.ctx, "iot_list_assets", equipment_class="Boiler")
    assert e["code"] == "invalid_arguments" and "Chiller" in e["hint"]


@pytest.mark.parametrize("spelling", ["id", "name", "lower", "squashed"])
def test_get_asset_by_id_or_name(world, spelling):
    assets = world.frames["assets"]
    row = assets.iloc[0]
    asked = {"id": row["asset_id"], "name": row["name"], "lower": row["name"].lower(),
             "squashed": row["name"].replace(" ", "").upper()}[spelling]
    res = ok(world.ctx, "iot_get_asset", asset=asked)
    assert res["asset_id"] == row["asset_id"] and res["name"] == row["name"]
    tele = world.frames["telemetry"]
    mine = tele[tele["asset_id"] == row["asset_id"]]
    assert res["telemetry"]["readings"] == len(mine)
    if len(mine):
        assert res["telemetry"]["first_ts"] == pd.Timestamp(mine["ts"].min()).isoformat()
    sensors = world.frames["sensors"]
    assert res["sensor_count"] == int((sensors["asset_id"] == row["asset_id"]).sum())
    wo = world.frames["work_orders"]
    assert res["work_orders"]["count"] == int((wo["asset_id"] == row["asset_id"]).sum())


def test_unknown_asset_hints_close_matches(handmade):
    e = err(handmade.ctx, "iot_get_asset", asset="Chiller 66")
    assert e["code"] == "unknown_asset"
    assert "Chiller 6 (CWC04006)" in e["hint"]
    e = err(handmade.ctx, "iot_list_sensors", asset="CWC0400")
    assert e["code"] == "unknown_asset" and "CWC04006" in e["hint"]


def test_list_sensors_matches_world(world):
    sensors = world.frames["sensors"]
    for asset_id in world.frames["assets"]["asset_id"]:
        res = ok(world.ctx, "iot_list_sensors", asset=asset_id)
        mine = sensors[sensors["asset_id"] == asset_id].set_index("sensor")
        assert [s["sensor"] for s in res["sensors"]] == sorted(mine.index)
        for s in res["sensors"]:
            assert s["unit"] == mine.loc[s["sensor"], "unit"]
            assert s["calculated"] == bool(mine.loc[s["sensor"], "calculated"])


def test_missing_sensor_on_one_asset(handmade):
    """Chiller 13 has no power meter although other chillers do: unknown_sensor naming the asset."""
    e = err(handmade.ctx, "iot_sensor_history", asset="Chiller 13", sensor="Power Input",
            start="2020-06-01", end="2020-06-02")
    assert e["code"] == "unknown_sensor" and "Chiller 13" in e["message"]


# ---------------------------------------------------------------------------------- sensor history

def test_sensor_history_raw_matches_pandas(world):
    asset, sensor, series, day = busiest_series(world)
    start, end = day, day + pd.Timedelta(days=1)
    expected = series[(series["ts"] >= start) & (series["ts"] < end)]
    res = ok(world.ctx, "iot_sensor_history", asset=asset["name"].upper(), sensor=sensor.lower(),
             start=start.strftime("%Y-%m-%d"), end=end.strftime("%Y-%m-%dT%H:%M:%S"), page_size=10)
    assert res["asset_id"] == asset["asset_id"] and res["sensor"] == sensor
    assert res["count"] == res["summary"]["count"] == len(expected)
    assert res["summary"]["min"] == pytest.approx(expected["value"].min(), abs=1e-4)
    assert res["summary"]["max"] == pytest.approx(expected["value"].max(), abs=1e-4)
    assert res["summary"]["mean"] == pytest.approx(expected["value"].mean(), abs=1e-4)
    assert res["summary"]["first_ts"] == pd.Timestamp(expected["ts"].min()).isoformat()
    assert res["summary"]["last_value"] == pytest.approx(expected["value"].iloc[-1], abs=1e-4)
    assert res["pages"] == -(-len(expected) // 10) and len(res["rows"]) == 10
    assert [r["value"] for r in res["rows"]] == pytest.approx(list(expected["value"].iloc[:10]))


def test_sensor_history_pages_cover_the_window_once(world):
    asset, sensor, series, day = busiest_series(world)
    start, end = day, day + pd.Timedelta(days=1)
    args = dict(asset=asset["asset_id"], sensor=sensor, start=str(start.date()), end=str(end.date()), page_size=7)
    first = ok(world.ctx, "iot_sensor_history", **args)
    rows = []
    for page in range(1, first["pages"] + 1):
        rows += ok(world.ctx, "iot_sensor_history", page=page, **args)["rows"]
    expected = series[(series["ts"] >= start) & (series["ts"] < end)]
    assert [r["ts"] for r in rows] == [pd.Timestamp(t).isoformat() for t in expected["ts"]]
    e = err(world.ctx, "iot_sensor_history", page=first["pages"] + 1, **args)
    assert e["code"] == "invalid_arguments" and "page" in e["message"]


@pytest.mark.parametrize("resample, freq", [("hourly", "h"), ("daily", "D")])
def test_sensor_history_resampled_matches_pandas(world, resample, freq):
    asset, sensor, series, day = busiest_series(world)
    start, end = day - pd.Timedelta(days=1), day + pd.Timedelta(days=1)
    window = series[(series["ts"] >= start) & (series["ts"] < end)]
    expected = window.groupby(pd.to_datetime(window["ts"]).dt.floor(freq))["value"].agg(["mean", "min", "max", "size"])
    res = ok(world.ctx, "iot_sensor_history", asset=asset["asset_id"], sensor=sensor, start=str(start.date()),
             end=str(end.date()), resample=resample, page_size=500)
    assert res["count"] == len(expected) == len(res["rows"])
    assert [r["ts"] for r in res["rows"]] == [t.isoformat() for t in expected.index]
    assert [r["value"] for r in res["rows"]] == pytest.approx(list(expected["mean"]), abs=1e-4)
    assert [r["readings"] for r in res["rows"]] == list(expected["size"])
    assert res["summary"]["count"] == len(window)


def test_sensor_history_gap_and_jitter(handmade):
    """Chiller 6 has a four-hour gap on June 2; AHU 3's fan speed carries a few seconds of jitter."""
    res = ok(handmade.ctx, "iot_sensor_history", asset="Chiller 6", sensor="Chiller 6 Supply Temperature",
             start="2020-06-02", end="2020-06-03", resample="hourly", page_size=500)
    assert res["count"] == 20 and res["summary"]["count"] == 80
    tele = handmade.frames["telemetry"]
    fan = tele[(tele["asset_id"] == "AHU01003") & (tele["sensor"] == "Supply Fan Speed")].sort_values("ts")
    res = ok(handmade.ctx, "iot_sensor_history", asset="ahu 3", sensor="supply fan speed", start="2020-06-01",
             end="2020-06-01T06:00:00", page_size=500)
    assert [r["ts"] for r in res["rows"]] == [
        pd.Timestamp(t).isoformat() for t in fan[fan["ts"] < "2020-06-01 06:00"]["ts"]]


def test_sensor_history_errors(handmade):
    ctx = handmade.ctx
    base = dict(asset="Chiller 6", sensor="Supply Temperature")
    e = err(ctx, "iot_sensor_history", **base, start="2020-06-03", end="2020-06-02")
    assert e["code"] == "start_after_end"
    e = err(ctx, "iot_sensor_history", **base, start="2020-06-02", end="2020-06-02")
    assert e["code"] == "start_after_end"
    e = err(ctx, "iot_sensor_history", **base, start="2021-01-01", end="2021-02-01")
    assert e["code"] == "empty_window"
    assert "2020-06-01T00:00:00" in e["hint"] and "2020-06-03T23:45:00" in e["hint"]
    e = err(ctx, "iot_sensor_history", **base, start="2020-06-02T09:00:00", end="2020-06-02T11:00:00")
    assert e["code"] == "empty_window"  # inside the gap
    e = err(ctx, "iot_sensor_history", asset="Chiller 6", sensor="Suply Temprature", start="2020-06-01",
            end="2020-06-02")
    assert e["code"] == "unknown_sensor" and "Supply Temperature" in e["hint"]
    e = err(ctx, "iot_sensor_history", **base, start="June 1st", end="2020-06-02")
    assert e["code"] == "invalid_arguments" and "'start'" in e["message"]
    e = err(ctx, "iot_sensor_history", **base, start="2020-06-01T00:00:00Z", end="2020-06-02")
    assert e["code"] == "invalid_arguments" and "2020-06-01T00:00:00" in e["hint"]
    e = err(ctx, "iot_sensor_history", **base, start="2020-06-01", end="2020-06-02", resample="weekly")
    assert e["code"] == "invalid_arguments" and "resample" in e["message"]
    e = err(ctx, "iot_sensor_history", **base, start="2020-06-01", end="2020-06-02", page_size=501)
    assert e["code"] == "invalid_arguments" and "page_size" in e["message"]


def test_current_time(world):
    meta = dict(zip(world.frames["world_meta"]["key"], world.frames["world_meta"]["value"]))
    res = ok(world.ctx, "iot_current_time")
    assert res["now"] == pd.Timestamp(meta["now"]).isoformat()
