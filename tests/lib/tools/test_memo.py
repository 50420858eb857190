"""Memoised tool calls: a repeated stateless call returns an equal, independent envelope without running the tool
again; stateful tools and internal errors always run."""

from aob_pipeline.lib.tools.registry import call_tool


def test_a_repeated_call_is_served_from_the_memo_as_a_fresh_copy(fresh_ctx, monkeypatch):
    first = call_tool(fresh_ctx, "iot_list_sensors", {"asset": "Chiller 6"})
    assert first["ok"] and ("iot_list_sensors", '{"asset": "Chiller 6"}') in fresh_ctx.memo
    queries = []
    original = type(fresh_ctx).query
    monkeypatch.setattr(type(fresh_ctx), "query", lambda self, *a, **k: queries.append(a) or original(self, *a, **k))
    fresh_ctx.cache.clear()
    second = call_tool(fresh_ctx, "iot_list_sensors", {"asset": "Chiller 6"})
    assert second == first and second is not first
    assert queries == [], "served from the memo: no query ran"
    second["result"]["mutated"] = True
    assert "mutated" not in call_tool(fresh_ctx, "iot_list_sensors", {"asset": "Chiller 6"})["result"]
    # a different argument is a different call
    call_tool(fresh_ctx, "iot_list_sensors", {"asset": "AHU01003"})
    assert queries, "a new call runs the tool"


def test_errors_of_the_arguments_are_memoised_but_stateful_tools_always_run(fresh_ctx):
    bad = call_tool(fresh_ctx, "iot_list_sensors", {"asset": "Chiller 99"})
    assert not bad["ok"] and bad["error"]["code"] == "unknown_asset"
    assert call_tool(fresh_ctx, "iot_list_sensors", {"asset": "Chiller 99"}) == bad
    args = {"asset": "Chiller 6", "primary_code": "MT010", "priority": 2, "description": "x"}
    ids = [call_tool(fresh_ctx, "wo_create_work_order", args)["result"]["draft_id"] for _ in range(2)]
    assert ids == ["DRAFT-0001", "DRAFT-0002"] and len(fresh_ctx.created_work_orders) == 2
    assert not any(k[0] == "wo_create_work_order" for k in fresh_ctx.memo)
