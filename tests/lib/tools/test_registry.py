"""The registry: lookup, schema validation, the envelope, and what a tool result may never contain."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from aob_pipeline.lib.settings import PROJECT_ROOT
from aob_pipeline.lib.tools import registry
from aob_pipeline.lib.tools.base import TOOL_GROUPS, ToolError
from aob_pipeline.lib.tools.registry import (
    all_tools,
    call_tool,
    describe_tools,
    get_tool,
    validate_arguments,
)

MY_GROUPS = ("iot", "fmsr", "wo")
CONTRACT = PROJECT_ROOT / "docs" / "TOOLS_CONTRACT.md"
TOOLS_DIR = PROJECT_ROOT / "aob_pipeline" / "lib" / "tools"


def contract_rows() -> dict[str, tuple[str, set[str], set[str]]]:
    """tool name -> (group, required args, optional args) from the contract's table."""
    rows = {}
    for line in CONTRACT.read_text().splitlines():
        m = re.match(r"\|\s*(\w+)\s*\|\s*`(\w+)`\s*\|([^|]*)\|", line)
        if not m:
            continue
        group, name, args = m.groups()
        required = set(re.findall(r"\*\*(\w+)\*\*", args))
        cleaned = re.sub(r"\([^)]*\)", "", re.sub(r"\*\*\w+\*\*", "", args))
        optional = {a for a in re.findall(r"\b([a-z_]+)\b", cleaned) if a not in ("or",)}
        rows[name] = (group, required, optional)
    return rows


# ------------------------------------------------------------------------------------ the contract

def test_every_contract_tool_of_my_groups_is_registered_with_its_arguments():
    rows = contract_rows()
    mine = {n: r for n, r in rows.items() if r[0] in MY_GROUPS}
    assert len(mine) >= 19
    registered = {t.name: t for t in all_tools(MY_GROUPS)}
    assert set(mine) == set(registered)
    for name, (group, required, optional) in mine.items():
        spec = registered[name]
        assert spec.group == group
        assert set(spec.parameters["required"]) == required, name
        props = set(spec.parameters["properties"])
        assert required | optional <= props, (name, (required | optional) - props)


def test_registry_collects_every_group_module_that_exists():
    present = [g for g in TOOL_GROUPS if (TOOLS_DIR / f"{g}.py").exists()]
    assert set(MY_GROUPS) <= set(present)
    names = [t.name for t in all_tools()]
    assert len(names) == len(set(names))
    for group in present:
        assert all_tools(group), f"no tool registered from {group}.py"


@pytest.mark.parametrize("spec", all_tools(MY_GROUPS), ids=lambda s: s.name)
def test_schemas_are_closed_and_described(spec):
    schema = spec.parameters
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    for name, prop in schema["properties"].items():
        assert len(prop.get("description", "")) >= 10, f"{spec.name}.{name} needs a description"
    assert len(spec.description) >= 80
    assert spec.name.startswith(spec.group if spec.group != "knowledge" else "kb")
    assert "inject" not in spec.description.lower()


def test_groups_filter_and_describe():
    assert {t.group for t in all_tools(["wo"])} == {"wo"}
    assert [t.name for t in all_tools("iot")] == [t.name for t in all_tools(["iot"])]
    with pytest.raises(ValueError, match="unknown tool group"):
        all_tools(["weather"])
    described = describe_tools()
    assert [d["name"] for d in described] == [t.name for t in all_tools()]
    assert set(described[0]) == {"name", "group", "description", "schema"}
    json.dumps(described)


def test_get_tool_unknown_suggests_close_names():
    assert get_tool("iot_sensor_history").name == "iot_sensor_history"
    with pytest.raises(ToolError) as exc:
        get_tool("iot_sensor_histroy")
    assert exc.value.code == "unknown_tool" and "iot_sensor_history" in exc.value.hint


def test_a_missing_group_module_is_skipped(monkeypatch):
    real = registry.importlib.import_module

    def fake(name, *a, **k):
        if name == "aob_pipeline.lib.tools.knowledge":
            err = ModuleNotFoundError(f"No module named {name!r}")
            err.name = name
            raise err
        return real(name, *a, **k)

    monkeypatch.setattr(registry.importlib, "import_module", fake)
    registry.reset_registry()
    try:
        assert "knowledge" not in {t.group for t in all_tools()}
        assert get_tool("wo_create_work_order")
    finally:
        monkeypatch.undo()
        registry.reset_registry()


# ------------------------------------------------------------------------------------- validation

def test_validate_arguments_names_the_field():
    assert validate_arguments("iot_sensor_history", {"asset": "Chiller 6", "sensor": "Tonnage",
                                                     "start": "2020-06-01", "end": "2020-06-02"}) == []
    problems = validate_arguments("iot_sensor_history", {"asset": "Chiller 6", "sensor": "Tonnage",
                                                         "start": "2020-06-01", "page": 0, "assset": "x"})
    text = " | ".join(problems)
    assert "missing required argument 'end'" in text
    assert "argument 'page'" in text
    assert "unknown argument 'assset' (did you mean 'asset'?)" in text
    assert validate_arguments("wo_create_work_order", {"asset": "x", "primary_code": "MT010", "priority": "1",
                                                       "description": "d"}) == [
        "argument 'priority': '1' is not of type 'integer'"]
    assert validate_arguments("iot_list_sites", []) == ["arguments must be a JSON object, got list"]
    assert validate_arguments("no_such_tool", {})[0].startswith("no tool named")
    assert validate_arguments("iot_current_time", None) == []


# ---------------------------------------------------------------------------------------- envelope

def test_envelope_shapes(handmade):
    good = call_tool(handmade.ctx, "iot_current_time", {})
    assert good == {"ok": True, "result": good["result"]} and "now" in good["result"]
    bad = call_tool(handmade.ctx, "iot_get_asset", {})
    assert bad["ok"] is False and bad["error"]["code"] == "invalid_arguments"
    assert "'asset'" in bad["error"]["message"] and "iot_get_asset takes" in bad["error"]["hint"]
    unknown = call_tool(handmade.ctx, "iot_get_assets", {"asset": "Chiller 6"})
    assert unknown["error"]["code"] == "unknown_tool" and "iot_get_asset" in unknown["error"]["hint"]
    assert call_tool(handmade.ctx, "iot_list_sites", None)["ok"] is True


def test_internal_errors_are_enveloped_without_paths(handmade, monkeypatch):
    spec = get_tool("iot_list_sites")
    where = str(handmade.snapshot_dir / "sites.parquet")

    def broken(ctx):
        raise RuntimeError(f"IO Error: could not read {where} or /var/lib/secret/aob.duckdb")

    monkeypatch.setitem(registry._load(), "iot_list_sites", dataclasses.replace(spec, func=broken))
    env = call_tool(handmade.ctx, "iot_list_sites", {})
    assert env["ok"] is False and env["error"]["code"] == "internal_error"
    text = json.dumps(env)
    assert str(handmade.settings.home) not in text and "/var/lib/secret" not in text
    assert "RuntimeError" in env["error"]["message"] and "iot_list_sites" in env["error"]["message"]
    monkeypatch.undo()
    assert call_tool(handmade.ctx, "iot_list_sites", {})["ok"] is True


def test_results_are_strict_json(handmade):
    for name, args in [("iot_sensor_history", {"asset": "Chiller 6", "sensor": "Supply Temperature",
                                               "start": "2020-06-01T00:00:00", "end": "2020-06-01T00:15:00"}),
                       ("wo_list_events", {"asset": "Chiller 6"}), ("iot_get_asset", {"asset": "AHU 4"})]:
        env = call_tool(handmade.ctx, name, args)
        assert env["ok"], env
        json.dumps(env, allow_nan=False)
    one = call_tool(handmade.ctx, "iot_sensor_history", {"asset": "Chiller 6", "sensor": "Supply Temperature",
                                                         "start": "2020-06-01T00:00:00", "end": "2020-06-01T00:15:00"})
    assert one["result"]["summary"]["std"] is None  # a single reading has no spread: null, never NaN


# ------------------------------------------------------------------------------ what never leaks

BATTERY = [
    ("iot_list_sites", {}), ("iot_list_assets", {}), ("iot_get_asset", {"asset": "Chiller 6"}),
    ("iot_get_asset", {"asset": "nowhere"}), ("iot_list_sensors", {"asset": "CWC04006"}),
    ("iot_sensor_history", {"asset": "Chiller 6", "sensor": "Power Input", "start": "2020-06-02", "end": "2020-06-03",
                            "resample": "hourly"}),
    ("iot_sensor_history", {"asset": "Chiller 6", "sensor": "Power Input", "start": "2021-06-02", "end": "2021-06-03"}),
    ("iot_sensor_history", {"asset": "Chiller 6", "sensor": "Powr", "start": "2020-06-02", "end": "2020-06-03"}),
    ("iot_current_time", {}),
    ("fmsr_list_failure_modes", {"equipment_class": "Chiller", "include_hvac": True}),
    ("fmsr_failure_mode_sensors", {"failure_mode": "FM-CH-01"}),
    ("fmsr_failure_mode_sensors", {"failure_mode": "nothing"}),
    ("fmsr_sensor_failure_modes", {"sensor": "Supply Temperature"}),
    ("fmsr_sensor_metadata", {"asset": "Chiller 6", "sensor": "Chiller Efficiency"}),
    ("fmsr_failure_mode_details", {"failure_mode": "FM-CH-01"}),
    ("wo_list_work_orders", {}), ("wo_list_events", {"asset": "Chiller 6"}), ("wo_list_failure_codes", {}),
    ("wo_code_distribution", {}), ("wo_next_work_order_likelihood", {"asset": "Chiller 6"}),
    ("wo_alert_failure_stats", {}), ("wo_alert_failure_stats", {"rule_id": "nope"}),
    ("wo_bundle_corrective", {"start": "2000-01-01", "end": "2030-01-01"}),
    ("wo_create_work_order", {"asset": "Chiller 6", "primary_code": "MT010", "priority": 1, "description": "d"}),
    ("wo_create_work_order", {"asset": "Chiller 6", "primary_code": "MT010", "priority": 9, "description": "d"}),
]


def test_no_result_mentions_paths_or_ground_truth(handmade, fresh_ctx):
    assert {n for n, _ in BATTERY} == {t.name for t in all_tools(MY_GROUPS)}
    forbidden = [str(handmade.settings.home), str(handmade.settings.warehouse_path), "injected", ".parquet",
                 ".duckdb"]
    for name, args in BATTERY:
        text = json.dumps(call_tool(fresh_ctx, name, args)).lower()
        for word in forbidden:
            assert word.lower() not in text, (name, word)


def test_tool_modules_never_name_storage_or_ground_truth():
    for module in ("_common", "iot", "fmsr", "wo", "registry"):
        source = (TOOLS_DIR / f"{module}.py").read_text()
        for word in ("injected_faults", "read_parquet", "world_dir", "warehouse_path", "duckdb.connect"):
            if module == "registry" and word == "world_dir":
                continue  # the registry scrubs the snapshot location from error messages
            assert word not in source, (module, word)
    assert Path(CONTRACT).exists()
