"""WO tools: retrieval cross-checked against pandas, the analytics on hand-made data with answers worked
out by hand, and drafts that never touch the world."""

from __future__ import annotations

from collections import Counter

import pandas as pd
import pytest

from aob_pipeline.lib.tools.registry import call_tool
from aob_pipeline.lib.tools.wo import bundle_by_window, markov_next_code
from aob_pipeline.lib.warehouse import connect
from aob_pipeline.lib.world.schema import WORLD_TABLES


def ok(ctx, name, **args):
    env = call_tool(ctx, name, args)
    assert env["ok"], env
    return env["result"]


def err(ctx, name, **args):
    env = call_tool(ctx, name, args)
    assert not env["ok"], env
    return env["error"]


def now_of(world):
    meta = dict(zip(world.frames["world_meta"]["key"], world.frames["world_meta"]["value"]))
    return pd.Timestamp(meta["now"])


def busiest_asset(world) -> str:
    return world.frames["work_orders"]["asset_id"].value_counts().index[0]


# --------------------------------------------------------------------------------------- retrieval

def test_list_work_orders_filters_match_pandas(world, between):
    wo = world.frames["work_orders"]
    asset_id = busiest_asset(world)
    mine = wo[wo["asset_id"] == asset_id].sort_values(["finished_at", "wo_id"])
    mid = pd.Timestamp(mine["finished_at"].iloc[len(mine) // 2]).normalize()
    start, end = mid - pd.Timedelta(days=400), mid + pd.Timedelta(days=400)
    for preventive in (None, True, False):
        args = dict(asset=asset_id, start=start.isoformat(), end=end.isoformat(), page_size=500)
        expected = between(mine, "finished_at", start, end)
        if preventive is not None:
            args["preventive"] = preventive
            expected = expected[expected["preventive"] == preventive]
        res = ok(world.ctx, "wo_list_work_orders", **args)
        assert res["count"] == len(expected)
        assert [w["wo_id"] for w in res["work_orders"]] == list(expected["wo_id"])
    res = ok(world.ctx, "wo_list_work_orders", asset=asset_id, start=start.isoformat(), end=end.isoformat())
    in_window = between(mine, "finished_at", start, end)
    assert res["preventive_count"] == int(in_window["preventive"].sum())
    assert res["corrective_count"] == int((~in_window["preventive"].astype(bool)).sum())
    code = wo["primary_code"].value_counts().index[0]
    res = ok(world.ctx, "wo_list_work_orders", primary_code=code.lower(), page_size=1)
    assert res["count"] == int((wo["primary_code"] == code).sum()) == res["pages"]


def test_list_work_orders_paging_and_order(world):
    wo = world.frames["work_orders"]
    asset_id = busiest_asset(world)
    mine = wo[wo["asset_id"] == asset_id].sort_values(["finished_at", "wo_id"])
    first = ok(world.ctx, "wo_list_work_orders", asset=asset_id, page_size=3)
    ids = []
    for page in range(1, first["pages"] + 1):
        ids += [w["wo_id"] for w in ok(world.ctx, "wo_list_work_orders", asset=asset_id, page_size=3,
                                        page=page)["work_orders"]]
    assert ids == list(mine["wo_id"])
    latest = ok(world.ctx, "wo_list_work_orders", asset=asset_id, order="desc", page_size=1)
    assert latest["work_orders"][0]["wo_id"] == mine["wo_id"].iloc[-1]
    e = err(world.ctx, "wo_list_work_orders", asset=asset_id, page_size=3, page=first["pages"] + 1)
    assert e["code"] == "invalid_arguments"


def test_list_work_orders_errors(handmade):
    e = err(handmade.ctx, "wo_list_work_orders", primary_code="MT01")
    assert e["code"] == "unknown_code" and "MT010" in e["hint"]
    e = err(handmade.ctx, "wo_list_work_orders", start="2020-01-01", end="2019-01-01")
    assert e["code"] == "start_after_end"
    e = err(handmade.ctx, "wo_list_work_orders", asset="Chiller 60")
    assert e["code"] == "unknown_asset"
    empty = ok(handmade.ctx, "wo_list_work_orders", asset="Chiller 6", start="2015-01-01", end="2016-01-01")
    assert empty["count"] == 0 and empty["work_orders"] == [] and empty["pages"] == 1


def test_list_events_matches_pandas(world, between):
    ev = world.frames["events"]
    asset_id = ev["asset_id"].value_counts().index[0]
    mine = ev[ev["asset_id"] == asset_id].sort_values(["event_time", "event_id"])
    res = ok(world.ctx, "wo_list_events", asset=asset_id, page_size=500)
    assert res["count"] == len(mine)
    assert res["by_group"] == {g: int(n) for g, n in mine["event_group"].value_counts().items()}
    if len(mine) <= 500:
        assert [e["event_id"] for e in res["events"]] == list(mine["event_id"])
    for group in mine["event_group"].unique():
        res = ok(world.ctx, "wo_list_events", asset=asset_id, event_group=group, page_size=1)
        assert res["count"] == int((mine["event_group"] == group).sum()) == res["pages"]
    t = pd.Timestamp(mine["event_time"].iloc[len(mine) // 2])
    res = ok(world.ctx, "wo_list_events", asset=asset_id, start=t.isoformat(), end=(t + pd.Timedelta(days=90)).isoformat())
    assert res["count"] == len(between(mine, "event_time", t, t + pd.Timedelta(days=90)))


def test_list_events_errors(handmade):
    e = err(handmade.ctx, "wo_list_events", asset="Chiller 6", event_group="FAULT")
    assert e["code"] == "invalid_arguments" and "event_group" in e["message"]
    e = err(handmade.ctx, "wo_list_events")
    assert e["code"] == "invalid_arguments" and "'asset'" in e["message"]


def test_list_failure_codes(world):
    codes = world.frames["failure_codes"]
    res = ok(world.ctx, "wo_list_failure_codes", page_size=500)
    assert res["count"] == len(codes)
    category = codes["category"].iloc[0]
    res = ok(world.ctx, "wo_list_failure_codes", category=category.upper(), page_size=500)
    assert {c["secondary_code"] for c in res["codes"]} == set(codes[codes["category"] == category]["secondary_code"])
    code = codes["primary_code"].iloc[0]
    res = ok(world.ctx, "wo_list_failure_codes", primary_code=code)
    assert res["count"] == int((codes["primary_code"] == code).sum())
    e = err(world.ctx, "wo_list_failure_codes", category="Astrology")
    assert e["code"] == "invalid_arguments" and category in e["hint"]
    e = err(world.ctx, "wo_list_failure_codes", primary_code="ZZ999")
    assert e["code"] == "unknown_code"


def test_code_distribution_matches_pandas(world):
    wo = world.frames["work_orders"]
    asset_id = busiest_asset(world)
    for preventive in (None, False):
        mine = wo[wo["asset_id"] == asset_id]
        args = {"asset": asset_id}
        if preventive is not None:
            mine = mine[mine["preventive"] == preventive]
            args["preventive"] = preventive
        res = ok(world.ctx, "wo_code_distribution", **args)
        counts = Counter(None if pd.isna(c) else c for c in mine["primary_code"])
        assert res["total"] == len(mine)
        assert {c["primary_code"]: c["count"] for c in res["codes"]} == dict(counts)
        assert [c["count"] for c in res["codes"]] == sorted(counts.values(), reverse=True)
        for c in res["codes"]:
            assert c["share"] == pytest.approx(c["count"] / len(mine), abs=1e-4)


# -------------------------------------------------------------------------------------------- Markov

def test_markov_on_a_hand_made_sequence():
    seqs = [["A", "B", "A", "B", "C"], ["A", "A", "B"]]
    # transitions from B: B->A 1, B->C 1; states A, B, C (K=3); total from B = 2
    model = markov_next_code(seqs, "B")
    probs = {r["primary_code"]: r["probability"] for r in model["next"]}
    assert probs == pytest.approx({"A": 2 / 5, "C": 2 / 5, "B": 1 / 5})
    assert [r["primary_code"] for r in model["next"]] == ["A", "C", "B"]  # ties by code
    assert model["states"] == 3 and model["transitions_from_last"] == 2
    assert sum(probs.values()) == pytest.approx(1.0)
    unseen = markov_next_code(seqs, "C")  # C never leads anywhere: uniform
    assert [r["probability"] for r in unseen["next"]] == pytest.approx([1 / 3] * 3)
    with pytest.raises(ValueError):
        markov_next_code(seqs, "Z")


def test_next_work_order_likelihood_hand_made(handmade):
    """Chiller class sequences up to 'now' (W607 after now is ignored):
    C6 PM001 MT010 PM001 MT010 RF020 PM001; C9 PM001 PM001 MT010 PM002; C13 MT011 PM001 MT010.
    From PM001: MT010 x4, PM001 x1; K = 5 states -> MT010 5/10, PM001 2/10, others 1/10."""
    res = ok(handmade.ctx, "wo_next_work_order_likelihood", asset="chiller 6")
    assert res["last_code"] == "PM001" and res["last_wo_id"] == "W606"
    assert res["model"] == "first-order Markov"
    assert res["trained_on"]["states"] == 5 and res["trained_on"]["work_orders"] == 13
    assert [(n["primary_code"], n["probability"]) for n in res["next"]] == [
        ("MT010", 0.5), ("PM001", 0.2), ("MT011", 0.1), ("PM002", 0.1), ("RF020", 0.1)]
    top = ok(handmade.ctx, "wo_next_work_order_likelihood", asset="AHU 3", top=1)
    # AHU: PM001 MT030 MT030 PM001 -> last PM001; from PM001: MT030 x1; K=2 -> MT030 2/3
    assert top["next"] == [{"primary_code": "MT030", "description": "Filter service", "probability": 0.6667,
                            "observed_transitions": 1}]


def test_next_work_order_likelihood_cross_check(world):
    wo = world.frames["work_orders"].merge(world.frames["assets"][["asset_id", "equipment_class"]], on="asset_id")
    wo = wo[wo["primary_code"].notna() & (pd.to_datetime(wo["finished_at"]) <= now_of(world))]
    asset_id = busiest_asset(world)
    cls = wo[wo["asset_id"] == asset_id]["equipment_class"].iloc[0]
    same = wo[wo["equipment_class"] == cls].sort_values(["asset_id", "finished_at", "wo_id"])
    pairs = Counter()
    for _, g in same.groupby("asset_id"):
        codes = list(g["primary_code"])
        pairs.update(zip(codes, codes[1:]))
    last = same[same["asset_id"] == asset_id]["primary_code"].iloc[-1]
    states = set(same["primary_code"])
    total = sum(n for (a, _), n in pairs.items() if a == last)
    expected = {b: (pairs[(last, b)] + 1) / (total + len(states)) for b in states}
    res = ok(world.ctx, "wo_next_work_order_likelihood", asset=asset_id, top=100)
    assert res["last_code"] == last and res["trained_on"]["states"] == len(states)
    assert len(res["next"]) == min(100, len(states))
    for n in res["next"]:
        assert n["probability"] == pytest.approx(expected[n["primary_code"]], abs=1e-4)
    best = max(expected.values())
    assert res["next"][0]["probability"] == pytest.approx(best, abs=1e-4)


def test_next_work_order_likelihood_errors(handmade):
    e = err(handmade.ctx, "wo_next_work_order_likelihood", asset="Chiller 99")
    assert e["code"] == "unknown_asset"
    e = err(handmade.ctx, "wo_next_work_order_likelihood", asset="AHU 4")  # commissioned, never serviced
    assert e["code"] == "not_enough_data" and "AHU 4" in e["message"]


# ---------------------------------------------------------------------------------- alert statistics

def test_alert_failure_stats_hand_made(handmade):
    """AL1 -> W602 after 4.0833 d, AL3 -> W903 after 13 d, AL4 -> W032 after 2 d; AL2 and AL5 are not
    followed (W607 lies after 'now'); AL6 starts after 'now' and is not counted."""
    res = ok(handmade.ctx, "wo_alert_failure_stats")
    assert (res["alerts"], res["followed_by_corrective"], res["probability"]) == (5, 3, 0.6)
    assert res["mean_days_to_maintenance"] == pytest.approx((4 + 2 / 24 + 13 + 2) / 3, abs=1e-3)
    by_rule = {r["rule_id"]: r for r in res["by_rule"]}
    assert (by_rule["RUL0001"]["alerts"], by_rule["RUL0001"]["followed_by_corrective"]) == (2, 1)
    assert by_rule["RUL0003"]["mean_days_to_maintenance"] == pytest.approx(2.0)
    short = ok(handmade.ctx, "wo_alert_failure_stats", within_days=3)
    assert (short["alerts"], short["followed_by_corrective"]) == (5, 1)
    one = ok(handmade.ctx, "wo_alert_failure_stats", asset="Chiller 6", rule_id="rul0001")
    assert (one["alerts"], one["followed_by_corrective"], one["probability"]) == (2, 1, 0.5)
    assert one["mean_days_to_maintenance"] == pytest.approx(4.083, abs=1e-3)


def test_alert_failure_stats_errors(handmade):
    e = err(handmade.ctx, "wo_alert_failure_stats", rule_id="RUL9999")
    assert e["code"] == "unknown_rule" and "RUL000" in e["hint"]
    e = err(handmade.ctx, "wo_alert_failure_stats", asset="Chiller 13")
    assert e["code"] == "not_enough_data"
    e = err(handmade.ctx, "wo_alert_failure_stats", asset="AHU 3", rule_id="RUL0001")
    assert e["code"] == "not_enough_data" and "RUL0003" in e["hint"]
    e = err(handmade.ctx, "wo_alert_failure_stats", within_days=0)
    assert e["code"] == "invalid_arguments" and "within_days" in e["message"]


def test_alert_failure_stats_cross_check(world):
    alerts = world.frames["alerts"]
    wo = world.frames["work_orders"]
    now = now_of(world)
    corrective = wo[~wo["preventive"].astype(bool) & (pd.to_datetime(wo["finished_at"]) <= now)]
    alerts = alerts[pd.to_datetime(alerts["start_time"]) <= now]
    if alerts.empty:
        pytest.skip("this world has no alert up to now")
    followed, days = 0, []
    for a in alerts.itertuples():
        t = pd.Timestamp(a.start_time)
        cand = corrective[(corrective["asset_id"] == a.asset_id)
                          & (pd.to_datetime(corrective["finished_at"]) >= t)
                          & (pd.to_datetime(corrective["finished_at"]) <= t + pd.Timedelta(days=30))]
        if len(cand):
            followed += 1
            days.append((pd.Timestamp(cand["finished_at"].min()) - t) / pd.Timedelta(days=1))
    res = ok(world.ctx, "wo_alert_failure_stats")
    assert (res["alerts"], res["followed_by_corrective"]) == (len(alerts), followed)
    if days:
        assert res["mean_days_to_maintenance"] == pytest.approx(sum(days) / len(days), abs=1e-3)


# ---------------------------------------------------------------------------------------- bundling

def test_bundling_on_a_hand_made_set():
    t = pd.Timestamp("2020-01-01")
    items = [("a", t), ("b", t + pd.Timedelta(days=5)), ("c", t + pd.Timedelta(days=11)),
             ("d", t + pd.Timedelta(days=30)), ("e", t + pd.Timedelta(days=30)), ("f", t + pd.Timedelta(days=37)),
             ("g", t + pd.Timedelta(days=60))]
    groups = bundle_by_window(items, 7)
    # anchored at the first of each bundle: c is 11 days after a (chaining would have taken it),
    # f is exactly 7 days after d (inclusive), g stays alone and is dropped
    assert [[i for i, _ in g] for g in groups] == [["a", "b"], ["d", "e", "f"]]
    assert bundle_by_window(list(reversed(items)), 7) == groups
    assert bundle_by_window(items[:1], 7) == []
    assert [[i for i, _ in g] for g in bundle_by_window(items, 12)] == [["a", "b", "c"], ["d", "e", "f"]]
    # upstream AssetOpsBench's rule chains gaps: c is 6 days after b, so it joins a and b
    assert [[i for i, _ in g] for g in bundle_by_window(items, 7, "gap")] == [["a", "b", "c"], ["d", "e", "f"]]
    assert [[i for i, _ in g] for g in bundle_by_window(items, 5, "gap")] == [["a", "b"], ["d", "e"]]
    with pytest.raises(ValueError, match="rule"):
        bundle_by_window(items, 7, "chain")


def test_bundle_corrective_hand_made(handmade):
    res = ok(handmade.ctx, "wo_bundle_corrective", start="2019-01-01", end="2020-06-04")
    assert [(b["asset_id"], b["wo_ids"]) for b in res["bundles"]] == [
        ("AHU01003", ["W032", "W033"]), ("CWC04006", ["W602", "W604"])]
    assert res["corrective_work_orders"] == 8 and res["bundled_work_orders"] == 4
    wide = ok(handmade.ctx, "wo_bundle_corrective", asset="Chiller 6", start="2019-01-01", end="2020-06-04",
              window_days=12)
    assert [b["wo_ids"] for b in wide["bundles"]] == [["W602", "W604", "W605"]]
    assert wide["bundles"][0]["primary_codes"] == ["MT010", "RF020"]
    e = err(handmade.ctx, "wo_bundle_corrective", start="2019-01-01")
    assert e["code"] == "invalid_arguments" and "'end'" in e["message"]


def test_bundle_corrective_cross_check(world, between):
    wo = world.frames["work_orders"]
    corrective = wo[~wo["preventive"].astype(bool)]
    start, end = pd.Timestamp(corrective["finished_at"].min()), pd.Timestamp(corrective["finished_at"].max())
    start, end = start.normalize(), end.normalize() + pd.Timedelta(days=1)
    res = ok(world.ctx, "wo_bundle_corrective", start=start.isoformat(), end=end.isoformat(), window_days=14,
             page_size=500)
    expected = []
    for asset_id, g in between(corrective, "finished_at", start, end).sort_values("asset_id").groupby("asset_id"):
        g = g.sort_values(["finished_at", "wo_id"])
        bundle: list = []
        for wo_id, t in zip(g["wo_id"], pd.to_datetime(g["finished_at"])):
            if bundle and (t - bundle[0][1]) <= pd.Timedelta(days=14):
                bundle.append((wo_id, t))
            else:
                if len(bundle) >= 2:
                    expected.append((asset_id, [b[0] for b in bundle]))
                bundle = [(wo_id, t)]
        if len(bundle) >= 2:
            expected.append((asset_id, [b[0] for b in bundle]))
    assert res["count"] == len(expected)
    assert [(b["asset_id"], b["wo_ids"]) for b in res["bundles"]][:500] == expected[:500]
    for b in res["bundles"]:
        assert b["size"] >= 2 and b["span_days"] <= 14


# ------------------------------------------------------------------------------------------- drafts

def test_create_work_order_records_a_draft_only(handmade, fresh_ctx):
    before = fresh_ctx.query("SELECT count(*) AS n FROM work_orders")["n"].iloc[0]
    first = ok(fresh_ctx, "wo_create_work_order", asset="chiller 6", primary_code="mt010", priority=2,
               description="  Clean condenser tubes: efficiency drifting up  ", secondary_code="MT010A")
    second = ok(fresh_ctx, "wo_create_work_order", asset="AHU01003", primary_code="MT030", priority=5,
                description="replace filter", preventive=True)
    assert first["draft_id"] == "DRAFT-0001" and second["draft_id"] == "DRAFT-0002"
    assert first["status"] == "recorded (not applied)"
    assert (first["asset_id"], first["primary_code"], first["secondary_code"]) == ("CWC04006", "MT010", "MT010a")
    assert first["description"] == "Clean condenser tubes: efficiency drifting up"
    assert first["created_at"] == "2020-06-04T00:00:00"
    assert [d["draft_id"] for d in fresh_ctx.created_work_orders] == ["DRAFT-0001", "DRAFT-0002"]
    assert fresh_ctx.query("SELECT count(*) AS n FROM work_orders")["n"].iloc[0] == before
    assert "DRAFT-0001" not in set(handmade.frames["work_orders"]["wo_id"])
    with connect(handmade.settings.warehouse_path, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM work_orders").fetchall()[0][0] == len(handmade.frames["work_orders"])


def test_create_work_order_errors(fresh_ctx):
    base = dict(asset="Chiller 6", primary_code="MT010", priority=2, description="x")
    e = err(fresh_ctx, "wo_create_work_order", **{**base, "priority": 0})
    assert e["code"] == "invalid_arguments" and "priority" in e["message"]
    e = err(fresh_ctx, "wo_create_work_order", **{**base, "priority": "high"})
    assert e["code"] == "invalid_arguments" and "priority" in e["message"]
    e = err(fresh_ctx, "wo_create_work_order", **{**base, "primary_code": "XX000"})
    assert e["code"] == "unknown_code"
    e = err(fresh_ctx, "wo_create_work_order", **{**base, "secondary_code": "RF020a"})
    assert e["code"] == "unknown_code" and "MT010a" in e["hint"]
    e = err(fresh_ctx, "wo_create_work_order", **{**base, "asset": "Chiller 7"})
    assert e["code"] == "unknown_asset"
    e = err(fresh_ctx, "wo_create_work_order", **{**base, "description": "   "})
    assert e["code"] == "invalid_arguments"
    assert fresh_ctx.created_work_orders == []


def test_injected_faults_is_not_in_the_snapshot(handmade):
    assert "injected_faults" in WORLD_TABLES
    assert not (handmade.snapshot_dir / "injected_faults.parquet").exists()
