"""update_leaderboard: the leaderboard over the warehouse, recomputing only the agents whose rows changed, and the
same board a full computation gives."""

import duckdb
import numpy as np
import pandas as pd
import pytest

from aob_pipeline.lib.judging import ReferenceJudge, judge_trajectories
from aob_pipeline.lib.judging.incremental import LEADERBOARD_STEP, update_leaderboard, update_scores
from aob_pipeline.lib.judging.scoring import (
    leaderboard_frame,
    operational_frame,
    plan_scores_frame,
    scores_frame,
    tool_call_accuracy_frame,
    tool_calls_frame,
)
from aob_pipeline.lib.trace import scenario_index
from aob_pipeline.lib.trajectories.store import read_trajectories, replace_trajectories
from aob_pipeline.lib.warehouse.incremental import write_agent_state

SCENARIOS = ["IOT-001", "IOT-005", "FMSR-001", "TSFM-001", "WO-001", "MA-001", "ROB-001"]
AGENTS = ["oracle", "heuristic_single", "heuristic_plan_execute", "do_nothing", "oracle+step_repetition"]


@pytest.fixture()
def con(run_tiny_field, tmp_path):
    table, trajectories = run_tiny_field(SCENARIOS, AGENTS)
    judgements = judge_trajectories(ReferenceJudge(), trajectories, scenario_index(table))
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        replace_trajectories(con, trajectories)
        runs = con.execute("SELECT * FROM trajectories").df()
        scores = scores_frame(judgements, runs, table)
        for name, frame in (("scenarios", table), ("scores", scores), ("judgements", judgements)):
            con.register("__f", frame)
            con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM __f')
            con.unregister("__f")
        yield con


def _full(con) -> pd.DataFrame:
    scores, scenarios, runs = (con.execute(f"SELECT * FROM {t}").df() for t in ("scores", "scenarios", "trajectories"))
    trajs = read_trajectories(con)
    return leaderboard_frame(scores, tool_accuracy=tool_call_accuracy_frame(tool_calls_frame(trajs, scenarios)),
                             plan_scores=plan_scores_frame(trajs, scenarios), operational=operational_frame(runs),
                             n_boot=200)


def test_first_update_is_the_full_leaderboard(con):
    board, state, recomputed = update_leaderboard(con, n_boot=200)
    assert recomputed == sorted(AGENTS) and set(state) == set(AGENTS)
    full = _full(con)
    assert list(board["agent_id"]) == list(full["agent_id"]) and list(board["rank"]) == list(full["rank"])
    for column in full.columns:
        if column in ("agent_id", "judge", "deployment_ready"):
            assert list(board[column]) == list(full[column]), column
        else:
            np.testing.assert_allclose(board[column].astype(float), full[column].astype(float), equal_nan=True,
                                       err_msg=column)
    assert board["plan_score"].notna().any() and board["tool_call_accuracy"].notna().sum() == len(AGENTS) - 1


def test_only_changed_agents_are_recomputed_and_the_board_is_what_a_full_update_gives(con):
    board, state, _ = update_leaderboard(con, n_boot=200)
    write_agent_state(con, LEADERBOARD_STEP, state)
    again, _, recomputed = update_leaderboard(con, n_boot=200)
    assert recomputed == [] and again.equals(board)
    # the scenarios built again: only how long computing the answers took differs, nothing is recomputed
    con.execute("UPDATE scenarios SET answer_seconds = answer_seconds + 1")
    assert update_leaderboard(con, n_boot=200)[2] == []

    con.execute("UPDATE scores SET score = 0, passed = false WHERE agent_id = 'oracle' AND scenario_id = 'IOT-001'")
    changed, state, recomputed = update_leaderboard(con, n_boot=200)
    assert recomputed == ["oracle"]
    assert changed.set_index("agent_id").loc["oracle", "mean_score"] < board.set_index("agent_id").loc["oracle",
                                                                                                       "mean_score"]
    write_agent_state(con, LEADERBOARD_STEP, {})  # forget everything: a full update
    full, _, recomputed = update_leaderboard(con, n_boot=200)
    assert recomputed == sorted(AGENTS) and changed.equals(full)


def test_a_second_trial_anywhere_recomputes_every_agent(con):
    _, state, _ = update_leaderboard(con, n_boot=200)
    write_agent_state(con, LEADERBOARD_STEP, state)
    con.execute("INSERT INTO scores SELECT * REPLACE (run_id || '-t1' AS run_id, 1 AS trial) FROM scores "
                "WHERE agent_id = 'do_nothing' AND scenario_id = 'IOT-001'")
    board, _, recomputed = update_leaderboard(con, n_boot=200)
    assert recomputed == sorted(AGENTS)  # every agent's rows now carry pass_hat_2
    assert "pass_hat_2" in board.columns and board["pass_hat_1"].notna().all()


def test_breakdowns_are_the_full_breakdowns_and_follow_one_agents_change(con):
    from aob_pipeline.lib.judging.incremental import BREAKDOWNS_STEP, update_breakdowns
    from aob_pipeline.lib.judging.scoring import breakdown_frame

    def full():
        frame = breakdown_frame(con.execute("SELECT * FROM scores").df())
        return frame.sort_values(["dimension", "agent_id", "judge", "value"]).reset_index(drop=True)

    frame, state, recomputed = update_breakdowns(con)
    assert recomputed == sorted(AGENTS)
    key = ["dimension", "agent_id", "judge", "value"]
    pd.testing.assert_frame_equal(frame.sort_values(key).reset_index(drop=True), full(), check_dtype=False)
    write_agent_state(con, BREAKDOWNS_STEP, state)
    con.execute("UPDATE scores SET score = 0, passed = false WHERE agent_id = 'heuristic_single'")
    changed, _, recomputed = update_breakdowns(con)
    assert recomputed == ["heuristic_single"]
    pd.testing.assert_frame_equal(changed.sort_values(key).reset_index(drop=True), full(), check_dtype=False)


def test_scores_are_rewritten_only_for_agents_whose_judgements_changed(con):
    def table():
        return con.execute("SELECT * FROM scores ORDER BY run_id, judge").df()

    def full():
        frame = scores_frame(con.execute("SELECT * FROM judgements").df(),
                             con.execute("SELECT * FROM trajectories").df(), con.execute("SELECT * FROM scenarios").df())
        return frame.sort_values(["run_id", "judge"]).reset_index(drop=True)

    con.execute("DROP TABLE scores")
    count, recomputed = update_scores(con)
    assert recomputed == sorted(AGENTS) and count == len(full())
    first = table()
    pd.testing.assert_frame_equal(first, full(), check_dtype=False)
    assert update_scores(con) == (count, [])
    assert table().equals(first)

    con.execute("UPDATE judgements SET hallucination = NOT hallucination WHERE agent_id = 'heuristic_single'")
    count, recomputed = update_scores(con)
    assert recomputed == ["heuristic_single"] and count == len(first)
    after = table()
    pd.testing.assert_frame_equal(after, full(), check_dtype=False)
    assert not after.equals(first)

    con.execute("DELETE FROM judgements WHERE agent_id = 'do_nothing'")
    count, recomputed = update_scores(con)
    assert recomputed == [] and "do_nothing" not in set(table()["agent_id"])
    pd.testing.assert_frame_equal(table(), full(), check_dtype=False)


def test_sensitivity_reads_only_the_fault_runs_and_their_clean_twins(con):
    from aob_pipeline.lib.judging.sensitivity import read_sensitivity_inputs, sensitivity_frame

    full = sensitivity_frame(con.execute("SELECT * FROM judgements").df(),
                             con.execute("SELECT run_id, agent_id, scenario_id, trial, labels FROM trajectories").df())
    judgements, runs, judges = read_sensitivity_inputs(con)
    assert set(runs["agent_id"]) == {"oracle", "oracle+step_repetition"}
    assert set(judgements["run_id"]) <= set(runs["run_id"]) and judges == ["reference"]
    pd.testing.assert_frame_equal(sensitivity_frame(judgements, runs, judges=judges), full)
    assert (full["n_pairs"] > 0).any()
