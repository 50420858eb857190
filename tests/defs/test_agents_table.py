"""The `agents` asset and table: one row per registered agent, availability from the API key's presence only,
and nothing secret written (a planted key and a token on a submitted agent's command line never appear)."""

import dagster as dg
import duckdb
import pandas as pd
import pytest
from dagster_duckdb import DuckDBResource
from domain_defs import domain_assets

from aob_pipeline.defs.evaluation.jobs import evaluation_job
from aob_pipeline.defs.jobs import demo_job
from aob_pipeline.defs.resources import AobSettingsResource
from aob_pipeline.defs.trajectories.agents_table import agents
from aob_pipeline.lib.agents.registry import (
    AgentSpec,
    add_agent,
    build_agent,
    load_agent_registry,
)
from aob_pipeline.lib.agents.table import (
    AGENTS_TABLE,
    BUILTIN_ORCHESTRATION,
    agents_frame,
    entry_point,
)
from aob_pipeline.lib.settings import Settings

trajectory_assets = domain_assets("trajectories")

CANARY_KEY = "canary-sk-ant-5f1e0d9c"
CANARY_TOKEN = "canary-token-77a2b4"


@pytest.fixture()
def settings(tmp_path, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    settings = Settings(home=tmp_path / "home").ensure()
    add_agent(settings, AgentSpec(agent_id="submitted_one", kind="command", trials=2, deterministic=False,
                                  command=["python3", "agent.py", "--token", CANARY_TOKEN], description="Mine."))
    return settings


def _materialise(settings: Settings) -> pd.DataFrame:
    result = dg.materialize(
        [agents],
        resources={"duckdb": DuckDBResource(database=str(settings.warehouse_path)),
                   "aob": AobSettingsResource(home=str(settings.home))},
    )
    assert result.success
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        return con.execute("SELECT * FROM agents ORDER BY agent_id").df()
    finally:
        con.close()


def test_one_row_per_registered_agent_and_claude_unavailable_without_a_key(settings):
    table = _materialise(settings)
    registry = load_agent_registry(settings, include_unavailable=True)
    assert list(table.columns) == AGENTS_TABLE.column_names
    assert sorted(table["agent_id"]) == sorted(s.agent_id for s in registry)
    rows = table.set_index("agent_id")
    for spec in registry:
        row = rows.loc[spec.agent_id]
        assert (row["kind"], row["trials"], row["deterministic"], row["max_steps"]) == (
            spec.kind, spec.trials, spec.deterministic, spec.max_steps)
        assert row["timeout_s"] == pytest.approx(spec.timeout_s)
    claude = rows.loc[[i for i in rows.index if i.startswith("claude_")]]
    assert len(claude) == 3 and not claude["available"].any() and claude["requires_api_key"].all()
    assert rows.loc["oracle", "available"] and rows.loc["oracle", "source"] == "built-in"
    assert rows.loc["oracle+invented_value", "inner_agent_id"] == "oracle"
    assert rows.loc["oracle+invented_value", "fault"] == "invented_value"
    assert rows.loc["oracle+invented_value", "orchestration"] == "fault_injected"
    mine = rows.loc["submitted_one"]
    assert (mine["source"], mine["kind"], mine["orchestration"], mine["description"]) == (
        "submitted", "command", "command", "Mine.")
    assert mine["entry_point"] == "python3"  # arguments are never copied
    assert rows.loc["example_command", "entry_point"] == "python3 keyword_agent.py"
    assert rows["fingerprint"].str.fullmatch(r"[0-9a-f]{64}").all()
    assert rows["fingerprint"].is_unique


def test_with_the_key_set_claude_agents_are_available_and_no_secret_is_written(settings, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", CANARY_KEY)
    table = _materialise(settings)
    assert table["available"].all()
    text = table.astype(str).to_csv(index=False)
    assert CANARY_KEY not in text and CANARY_TOKEN not in text
    assert str(settings.home) not in text  # no local path of $AOB_HOME either


def test_orchestration_of_the_builtins_matches_their_classes():
    from aob_pipeline.lib.agents.llm import (
        ClaudeAgentsAsToolsAgent,
        ClaudePlanExecuteAgent,
        ClaudeReActAgent,
    )

    registry = load_agent_registry(include_unavailable=True)
    for spec in registry:
        if spec.kind == "builtin" and not spec.requires_api_key:
            assert BUILTIN_ORCHESTRATION[spec.builtin] == build_agent(spec, registry).orchestration, spec.agent_id
    claude = {"claude_react": ClaudeReActAgent, "claude_agents_as_tools": ClaudeAgentsAsToolsAgent,
              "claude_plan_execute": ClaudePlanExecuteAgent}
    for name, cls in claude.items():
        assert BUILTIN_ORCHESTRATION[name] == cls.orchestration


def test_frame_without_a_key_and_entry_points():
    registry = load_agent_registry(include_unavailable=True)
    frame = agents_frame(registry, api_key_set=False)
    assert not frame.loc[frame["agent_id"] == "claude_react", "available"].item()
    assert agents_frame(registry, api_key_set=True)["available"].all()
    spec = AgentSpec(agent_id="py", kind="python", python="my_pkg.agents:MyAgent")
    assert entry_point(spec) == "my_pkg.agents:MyAgent"
    assert agents_frame([spec]).loc[0, "orchestration"] is None


def test_the_asset_is_wired_into_the_jobs_and_the_trajectory_assets():
    from aob_pipeline.definitions import defs

    assert agents in trajectory_assets
    graph = defs.resolve_asset_graph()
    keys = {dg.AssetKey("agents"), dg.AssetKey("trajectories")}
    for job in (demo_job, evaluation_job):
        assert keys <= job.selection.resolve(graph), job.name
    assert dg.AssetKey("agents") in graph.get(dg.AssetKey("published_warehouse")).parent_keys
