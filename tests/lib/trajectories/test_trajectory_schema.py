"""The trajectory schema: run ids, validation, totals and the exact round trip through the two tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from pydantic import ValidationError

from aob_pipeline.lib.trajectories.schema import (
    TRAJECTORIES_TABLE,
    TRAJECTORY_STEPS_TABLE,
    TRAJECTORY_TABLES,
    Step,
    Totals,
    Trajectory,
    from_rows,
    make_run_id,
    to_rows,
)

T0 = datetime(2026, 1, 5, 9, 0, 0, 123456, tzinfo=UTC)


def sample(trial: int = 0, agent: str = "claude-aat", scenario: str = "IOT-001") -> Trajectory:
    steps = [
        Step(index=0, agent_name="supervisor", kind="thought", content="Ask the IoT agent.",
             started_at=T0, ended_at=T0, tokens_in=1200, tokens_out=40, cost_usd=0.0042),
        Step(index=1, agent_name="iot", kind="tool_call", tool="iot_list_sites", arguments={},
             observation={"sites": [{"site_id": "MAIN", "name": "Main — campus"}], "count": 1},
             started_at=T0 + timedelta(milliseconds=5), ended_at=T0 + timedelta(milliseconds=17)),
        Step(index=2, agent_name="iot", kind="tool_call", tool="iot_list_assets", arguments={"site_id": "MIAN"},
             error={"code": "unknown_site", "message": "no site MIAN", "hint": "known sites: MAIN"},
             started_at=T0 + timedelta(milliseconds=20), ended_at=T0 + timedelta(milliseconds=24)),
        Step(index=3, kind="ask_operator", content="Which site?"),
        Step(index=4, agent_name="operator", kind="operator_reply", content="No further information is available."),
        Step(index=5, agent_name="supervisor", kind="final", content="MAIN", started_at=T0, ended_at=T0),
    ]
    return Trajectory(
        agent_id=agent, scenario_id=scenario, trial=trial, run_id="", orchestration="agents_as_tools",
        model="claude-x", status="completed", final_answer="MAIN", steps=steps, started_at=T0,
        ended_at=T0 + timedelta(seconds=1), totals=Totals.from_steps(steps, 1.0),
        labels={"planted_faults": [{"fault": "invented_value", "step": 5}]},
        plan=[{"task": "list sites", "agent": "iot", "dependencies": [], "expected_output": "site ids"}],
    )


def test_run_id_is_deterministic_and_distinct():
    assert make_run_id("a", "S-1", 0) == make_run_id("a", "S-1", 0)
    ids = {make_run_id(a, s, t) for a in ("a", "b") for s in ("S-1", "S-2") for t in (0, 1)}
    assert len(ids) == 8
    assert all(i.startswith("run-") and len(i) == 24 for i in ids)
    # Parts cannot run into each other ("a" + "bS" vs "ab" + "S").
    assert make_run_id("a", "bS", 0) != make_run_id("ab", "S", 0)
    assert sample().run_id == make_run_id("claude-aat", "IOT-001", 0)


def test_totals_count_steps_tool_calls_errors_tokens():
    t = sample()
    assert t.totals.steps == 6
    assert t.totals.tool_calls == 2
    assert t.totals.tool_errors == 1
    assert (t.totals.tokens_in, t.totals.tokens_out) == (1200, 40)
    assert t.totals.cost_usd == pytest.approx(0.0042)


def test_round_trip_through_rows_is_exact():
    trajs = [sample(0), sample(1), sample(0, scenario="WO-002")]
    trajs.append(Trajectory(agent_id="x", scenario_id="S-9", status="crashed", status_reason="ValueError: boom",
                            steps=[], run_id=""))
    traj_df, steps_df = to_rows(trajs)
    assert list(traj_df.columns) == TRAJECTORIES_TABLE.column_names
    assert list(steps_df.columns) == TRAJECTORY_STEPS_TABLE.column_names
    assert len(traj_df) == 4 and len(steps_df) == 18
    back = from_rows(traj_df, steps_df)
    assert back == trajs


def test_rows_hold_json_text_and_durations():
    traj_df, steps_df = to_rows([sample()])
    row = steps_df.iloc[1]
    assert row["arguments"] == "{}"
    assert row["observation"].startswith('{"sites":[{"site_id":"MAIN","name":"Main — campus"}]')
    assert pd.isna(row["error"])
    assert steps_df.iloc[2]["error"] == '{"code":"unknown_site","message":"no site MIAN","hint":"known sites: MAIN"}'
    assert row["duration_ms"] == pytest.approx(12.0)
    assert traj_df.iloc[0]["labels"].startswith('{"planted_faults"')
    # Timestamps are naive UTC in the frames (DuckDB TIMESTAMP), aware UTC in the model.
    assert traj_df.iloc[0]["started_at"] == pd.Timestamp("2026-01-05 09:00:00.123456")


def test_round_trip_through_duckdb():
    import duckdb

    from aob_pipeline.lib.trajectories.store import read_trajectories, replace_trajectories

    con = duckdb.connect(":memory:")
    trajs = [sample(0), sample(1)]
    replace_trajectories(con, trajs)
    assert read_trajectories(con) == trajs


def test_validation_names_the_problem():
    with pytest.raises(ValidationError, match="tool_call step needs 'tool'"):
        Step(index=0, kind="tool_call")
    with pytest.raises(ValidationError, match="step at position 1 has index 2"):
        Trajectory(agent_id="a", scenario_id="S-1", status="completed", run_id="",
                   steps=[Step(index=0, kind="thought", content="x"), Step(index=2, kind="final", content="y")])
    with pytest.raises(ValidationError):
        Trajectory(agent_id="a", scenario_id="S-1", status="finished", run_id="")
    with pytest.raises(ValidationError):
        Step(index=0, kind="shout", content="x")


def test_from_rows_names_run_and_column_of_bad_json():
    traj_df, steps_df = to_rows([sample()])
    steps_df.loc[1, "observation"] = "{not json"
    with pytest.raises(ValueError, match=r"trajectory_steps run run-\w+ step 1 column 'observation': not valid JSON"):
        from_rows(traj_df, steps_df)


def test_tables_are_documented():
    for table in TRAJECTORY_TABLES.values():
        assert table.key
        for column in table.columns:
            assert column.description and column.type
    # The key columns analysts' scripts rely on (DESIGN.md section 11).
    assert {"run_id", "agent_id", "scenario_id", "trial", "status", "final_answer"} <= set(
        TRAJECTORIES_TABLE.column_names)
    assert {"run_id", "step", "agent_name", "tool", "arguments", "observation", "error"} <= set(
        TRAJECTORY_STEPS_TABLE.column_names)


def test_polars_frames_hold_the_same_rows_as_the_pandas_ones():
    import duckdb

    from aob_pipeline.lib.trajectories.schema import to_frames

    trajs = [sample(), sample().model_copy(update={"run_id": "other", "plan": None, "steps": []})]
    pd_t, pd_s = to_rows(trajs)
    pl_t, pl_s = to_frames(trajs)
    con = duckdb.connect()
    for pandas_frame, polars_frame in ((pd_t, pl_t), (pd_s, pl_s)):
        assert list(polars_frame.columns) == list(pandas_frame.columns)
        a = con.execute("SELECT * FROM pandas_frame ORDER BY ALL").fetchall()
        b = con.execute("SELECT * FROM polars_frame ORDER BY ALL").fetchall()
        assert a == b and len(a) == len(pandas_frame)
