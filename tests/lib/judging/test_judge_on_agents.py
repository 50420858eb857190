"""End to end on the generated tiny world: the reference judge passes the oracle's runs, fails the do-nothing
agent's, and catches faults planted into the oracle's runs; the frames flow into scores and a leaderboard."""

import pandas as pd
import pytest

from aob_pipeline.lib.judging import (
    CRITERIA,
    ReferenceJudge,
    judge_trajectories,
    leaderboard_frame,
    scores_frame,
    sensitivity_frame,
    tool_call_accuracy_frame,
    tool_calls_frame,
)
from aob_pipeline.lib.trajectories.schema import to_rows

SCENARIOS = [
    "IOT-001", "IOT-002", "IOT-005", "IOT-016", "IOT-026", "FMSR-002", "FMSR-006", "FMSR-009", "FMSR-011",
    "TSFM-001", "TSFM-011", "WO-001", "WO-002", "WO-018", "WO-020", "MA-001", "MA-002", "MA-003", "MA-004",
    "MA-009", "ROB-001", "ROB-002", "ROB-012", "ROB-015", "ROB-023", "ROB-032",
]
DERIVED: set[str] = set()  # the oracle verifies every result it reads from data (a re-read), derived ones included
AGENTS = ["oracle", "do_nothing", "oracle+invented_value", "oracle+role_violation"]


@pytest.fixture(scope="module")
def field(run_tiny_field):
    table, trajectories = run_tiny_field(SCENARIOS, AGENTS)
    assert set(table["scenario_id"]) == set(SCENARIOS) and table["answerable"].all()
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
    assert board.loc["oracle", "mean_score"] >= 95 and board.loc["oracle", "coverage"] == 1.0
    # readiness is judged on hidden scenarios only: this field's scenarios are public, so nobody is ready
    assert not board["deployment_ready"].any() and board.loc["oracle", "n_hidden_scenarios"] == 0
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
