"""End to end on the generated tiny world: the reference judge passes the oracle's runs, fails the do-nothing
agent's, and catches faults planted into the oracle's runs; the frames flow into scores and a leaderboard."""

import pandas as pd
import pytest

from aob_pipeline.lib.agents.base import Agent, RunLimits
from aob_pipeline.lib.agents.registry import build_agent, load_agent_registry
from aob_pipeline.lib.agents.runner import run_agent
from aob_pipeline.lib.judge import (
    CRITERIA,
    ReferenceJudge,
    judge_trajectories,
    leaderboard_frame,
    scores_frame,
    sensitivity_frame,
    tool_call_accuracy_frame,
    tool_calls_frame,
)
from aob_pipeline.lib.scenarios.loader import load_scenarios
from aob_pipeline.lib.scenarios.materialize import materialize_scenarios, scenario_from_row
from aob_pipeline.lib.settings import Settings
from aob_pipeline.lib.tools.base import ToolContext
from aob_pipeline.lib.trajectories.schema import to_rows
from aob_pipeline.lib.warehouse import connect
from aob_pipeline.lib.world.store import store_world, world_snapshot_dir

SCENARIOS = [
    "IOT-001", "IOT-002", "IOT-005", "IOT-016", "IOT-026", "FMSR-002", "FMSR-006", "FMSR-009", "FMSR-011",
    "TSFM-001", "TSFM-011", "WO-001", "WO-002", "WO-018", "WO-020", "MA-001", "MA-002", "MA-003", "MA-004",
    "MA-009", "ROB-001", "ROB-002", "ROB-012", "ROB-015", "ROB-023", "ROB-032",
]
DERIVED = {"IOT-026"}  # run hours computed from Run Status readings: the oracle computes it without a check
AGENTS = ["oracle", "do_nothing", "oracle+invented_value", "oracle+role_violation"]


def _agent(spec, registry):
    agent = build_agent(spec, registry)
    if not isinstance(agent, Agent):  # the oracle, until it implements Agent itself
        from aob_pipeline.lib.agents.faults import as_agent

        agent = as_agent(agent)
    agent.agent_id = spec.agent_id
    return agent


@pytest.fixture(scope="module")
def field(tmp_path_factory):
    from aob_pipeline.lib.world.generate import generate_world

    settings = Settings(home=tmp_path_factory.mktemp("judge_tiny"))
    store_world(settings, generate_world(scale="tiny", seed=7))
    chosen = [s for s in load_scenarios(include_imported=False) if s.id in SCENARIOS]
    with connect(settings.warehouse_path, read_only=True) as con:
        table = materialize_scenarios(con, chosen)
    assert set(table["scenario_id"]) == set(SCENARIOS) and table["answerable"].all()
    registry = load_agent_registry(settings)
    ctx = ToolContext(world_snapshot_dir(settings))
    trajectories = []
    for spec in [s for s in registry if s.agent_id in AGENTS]:
        for row in table.to_dict("records"):
            trajectories.append(run_agent(_agent(spec, registry), scenario_from_row(row), ctx,
                                          limits=RunLimits(timeout_s=60, max_steps=200)))
    ctx.close()
    judgements = judge_trajectories(ReferenceJudge(), trajectories, table)
    return table, trajectories, judgements


def test_the_oracle_passes(field):
    _, _, judgements = field
    oracle = judgements[judgements.agent_id == "oracle"].set_index("scenario_id")
    assert oracle["judge_error"].isna().all(), oracle["judge_error"].dropna().to_dict()
    for sid, row in oracle.iterrows():
        expected = {c: c != "hallucination" for c in CRITERIA}
        if sid in DERIVED:
            expected["result_verification"] = False
        got = {c: bool(row[c]) for c in CRITERIA}
        assert got == expected, (sid, {c: row[f"{c}_rationale"] for c in CRITERIA if got[c] != expected[c]})


def test_do_nothing_scores_zero_and_faults_are_caught(field):
    table, trajectories, judgements = field
    runs, _ = to_rows(trajectories)
    scores = scores_frame(judgements, runs, table)
    accuracy = tool_call_accuracy_frame(tool_calls_frame(trajectories, table))
    board = leaderboard_frame(scores, tool_accuracy=accuracy, n_boot=300).set_index("agent_id")
    assert board.loc["oracle", "mean_score"] >= 95 and board.loc["oracle", "deployment_ready"]
    assert board.loc["oracle", "ci_low"] <= board.loc["oracle", "mean_score"] <= board.loc["oracle", "ci_high"]
    assert board.loc["oracle", "tool_call_accuracy"] == 1.0
    assert board.loc["do_nothing", "mean_score"] <= 5 and board.loc["do_nothing", "pass_rate"] == 0
    assert board.loc["do_nothing", "hallucination_rate"] == 0
    assert board.loc["oracle+invented_value", "hallucination_rate"] == 1.0
    assert board.loc["oracle+role_violation", "sequence_correctness_rate"] == 0.0
    table = sensitivity_frame(judgements, runs).set_index("fault")
    assert table.loc["invented_value", "sensitivity"] == 1.0
    assert table.loc["role_violation", "sensitivity"] == 1.0
    assert table.loc["role_violation", "off_target_rate"] == 0.0
    assert (pd.Series(table["specificity"]) == 1.0).all()
