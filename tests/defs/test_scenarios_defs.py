"""The Dagster `scenarios` asset writes the table on a tiny world and its checks pass (and fail when they should)."""

import dagster as dg
import pytest
from dagster_duckdb import DuckDBResource
from domain_defs import domain_assets, domain_checks

from aob_pipeline.lib.scenarios import checks as lib_checks
from aob_pipeline.lib.settings import Settings
from aob_pipeline.lib.warehouse import connect
from aob_pipeline.lib.world.store import store_world

scenario_assets = domain_assets("scenarios")
scenario_checks = domain_checks("scenarios")


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    from aob_pipeline.lib.world.generate import generate_world

    settings = Settings(home=tmp_path_factory.mktemp("scenarios_defs"))
    store_world(settings, generate_world(scale="tiny", seed=7))
    return settings


def test_the_asset_depends_on_the_world_tables_it_reads():
    defs = dg.Definitions(assets=scenario_assets, asset_checks=scenario_checks,
                          resources={"duckdb": DuckDBResource(database=":memory:")})
    node = defs.resolve_asset_graph().get(dg.AssetKey("scenarios"))
    parents = {k.to_user_string() for k in node.parent_keys}
    assert {"telemetry", "work_orders", "failure_modes", "failure_mode_sensors", "world_meta"} <= parents
    assert "injected_faults" not in parents
    assert node.group_name == "scenarios" and node.description
    check_names = {k.name for k in defs.resolve_asset_graph().asset_check_keys}
    assert check_names == {"scenario_ids_unique", "every_scenario_has_an_answer", "gold_plan_tools_valid",
                           "gold_plan_dependencies_valid", "twins_point_at_public_scenarios"}


def test_materialise_scenarios_and_run_the_checks(warehouse):
    result = dg.materialize(
        [*scenario_assets, *scenario_checks],
        resources={"duckdb": DuckDBResource(database=str(warehouse.warehouse_path))},
    )
    assert result.success
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert len(checks) == 5 and all(checks.values()), checks
    materialization = result.asset_materializations_for_node("scenarios")[0]
    assert materialization.metadata["dagster/row_count"].value >= 150
    with connect(warehouse.warehouse_path, read_only=True) as con:
        n, answerable, hidden = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE answerable), count(*) FILTER (WHERE split = 'hidden') FROM scenarios"
        ).fetchall()[0]
        formats = {r[0] for r in con.execute("SELECT DISTINCT answer_format FROM scenarios").fetchall()}
    assert n == answerable and hidden > 0
    assert {"number", "integer", "id_set", "label", "list", "text", "json", "clarification"} <= formats


def test_a_gold_plan_with_an_unknown_tool_fails_its_check(monkeypatch):
    from aob_pipeline.defs.scenarios import assets as defs_assets
    from aob_pipeline.lib.scenarios.model import Scenario

    broken = Scenario.model_validate({
        "id": "T-001", "type": "IoT", "text": "t", "category": "c", "task_type": "t", "output_format": "o",
        "characteristic_form": "f", "sub_agents": ["iot"],
        "answer": {"function": "site_ids", "format": "id_set"},
        "gold_plan": [{"step": "s1", "agent": "iot", "tool": "iot_teleport"}],
    })
    monkeypatch.setattr(defs_assets, "load_scenarios", lambda: [broken])
    result = defs_assets.gold_plan_tools_valid()
    assert not result.passed and result.severity == dg.AssetCheckSeverity.ERROR
    assert "iot_teleport" in result.metadata["problem_list"].value
    assert not lib_checks.check_gold_plan_tools([broken]).passed
