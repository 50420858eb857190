"""Idempotent trajectory writes: a partition re-run replaces its rows exactly, other partitions stay."""

from __future__ import annotations

import duckdb
import pytest

from aob_pipeline.lib.trajectories.schema import Step, Totals, Trajectory
from aob_pipeline.lib.trajectories.store import read_trajectories, replace_trajectories, trajectory_counts


def traj(agent: str, scenario: str, trial: int, n_steps: int = 3, answer: str = "ok") -> Trajectory:
    steps = [Step(index=i, kind="tool_call", tool="iot_list_sites", observation={"i": i}) for i in range(n_steps - 1)]
    steps.append(Step(index=n_steps - 1, kind="final", content=answer))
    return Trajectory(agent_id=agent, scenario_id=scenario, trial=trial, status="completed", final_answer=answer,
                      steps=steps, totals=Totals.from_steps(steps), run_id="")


def counts(con):
    return trajectory_counts(con)


def test_writing_twice_gives_the_same_rows(tmp_path):
    path = tmp_path / "w.duckdb"
    batch = [traj("a", "S-1", t) for t in range(3)] + [traj("a", "S-2", 0, n_steps=5)]
    with duckdb.connect(str(path)) as con:
        first = replace_trajectories(con, batch)
        after_first = counts(con)
        second = replace_trajectories(con, batch)
        after_second = counts(con)
        rows = con.execute("SELECT run_id, trial FROM trajectories ORDER BY run_id").fetchall()
    assert first["trajectories"] == second["trajectories"] == 4
    assert after_first == after_second == {"trajectories": 4, "trajectory_steps": 14}
    assert second["deleted_trajectories"] == 4 and second["deleted_steps"] == 14
    assert len(set(rows)) == 4


def test_rerun_of_one_partition_leaves_others_untouched_and_drops_stale_trials():
    con = duckdb.connect(":memory:")
    replace_trajectories(con, [traj("a", "S-1", t) for t in range(3)] + [traj("b", "S-1", 0), traj("a", "S-2", 0)])
    # Re-run (a, S-1) with a single trial and a different answer.
    result = replace_trajectories(con, [traj("a", "S-1", 0, n_steps=2, answer="new")])
    assert result["deleted_trajectories"] == 3
    rows = con.execute("SELECT agent_id, scenario_id, trial, final_answer FROM trajectories ORDER BY 1, 2, 3").fetchall()
    assert rows == [("a", "S-1", 0, "new"), ("a", "S-2", 0, "ok"), ("b", "S-1", 0, "ok")]
    assert con.execute("SELECT count(*) FROM trajectory_steps WHERE agent_id = 'a' AND scenario_id = 'S-1'").fetchone()[0] == 2
    assert counts(con)["trajectory_steps"] == 2 + 3 + 3


def test_explicit_partition_filter_clears_a_partition_with_no_rows():
    con = duckdb.connect(":memory:")
    replace_trajectories(con, [traj("a", "S-1", 0), traj("a", "S-2", 0)])
    replace_trajectories(con, [], pairs=[("a", "S-1")])
    assert [t.scenario_id for t in read_trajectories(con)] == ["S-2"]


def test_rows_outside_the_filter_or_duplicate_runs_are_refused_and_nothing_changes():
    con = duckdb.connect(":memory:")
    replace_trajectories(con, [traj("a", "S-1", 0)])
    with pytest.raises(ValueError, match="outside the partition filter"):
        replace_trajectories(con, [traj("a", "S-2", 0)], pairs=[("a", "S-1")])
    with pytest.raises(ValueError, match="appears more than once"):
        replace_trajectories(con, [traj("a", "S-1", 0), traj("a", "S-1", 0)])
    assert counts(con) == {"trajectories": 1, "trajectory_steps": 3}


def test_failed_insert_rolls_back_the_delete(monkeypatch):
    import aob_pipeline.lib.trajectories.store as store

    con = duckdb.connect(":memory:")
    replace_trajectories(con, [traj("a", "S-1", 0)])

    def broken_insert(con, table, frame):
        raise RuntimeError("disk full")

    monkeypatch.setattr(store, "_insert", broken_insert)
    with pytest.raises(RuntimeError, match="disk full"):
        replace_trajectories(con, [traj("a", "S-1", 0, answer="new")])
    assert [t.final_answer for t in read_trajectories(con)] == ["ok"]


def test_read_filters_and_empty_warehouse():
    con = duckdb.connect(":memory:")
    assert read_trajectories(con) == []
    batch = [traj("a", "S-1", 0), traj("b", "S-1", 0), traj("a", "S-2", 1)]
    replace_trajectories(con, batch)
    assert [t.run_id for t in read_trajectories(con, agent_id="a")] == [batch[0].run_id, batch[2].run_id]
    assert [t.agent_id for t in read_trajectories(con, scenario_id="S-1")] == ["a", "b"]
    assert read_trajectories(con, run_ids=[batch[1].run_id]) == [batch[1]]


def test_a_repeated_full_read_is_served_again_only_while_both_tables_are_unchanged(tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    replace_trajectories(con, [traj("a", "S1", 0), traj("a", "S2", 0), traj("b", "S1", 0)])
    first = read_trajectories(con)
    again = read_trajectories(con)
    assert [t.run_id for t in again] == [t.run_id for t in first]
    assert again[0] is first[0], "unchanged tables: the last full reading is given again"
    only_b = read_trajectories(con, agent_id="b")
    assert [t.agent_id for t in only_b] == ["b"] and only_b[0] is first[2]
    assert [t.run_id for t in read_trajectories(con, run_ids=[first[1].run_id])] == [first[1].run_id]

    # a changed observation (steps only) and a changed answer (trajectories only) are both seen
    con.execute("UPDATE trajectory_steps SET observation = '{\"i\": 99}' WHERE step = 0")
    changed = read_trajectories(con)
    assert changed[0] is not first[0]
    assert all(t.steps[0].observation == {"i": 99} for t in changed)
    con.execute("UPDATE trajectories SET final_answer = 'edited' WHERE agent_id = 'b'")
    assert read_trajectories(con, agent_id="b")[0].final_answer == "edited"
    replace_trajectories(con, [traj("c", "S1", 0)])
    assert {t.agent_id for t in read_trajectories(con)} == {"a", "b", "c"}


def test_reading_every_run_by_id_is_the_full_read_the_next_step_reuses(tmp_path):
    from aob_pipeline.lib.trajectories.store import read_trajectories_of

    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    replace_trajectories(con, [traj("a", "S1", 0), traj("a", "S2", 0), traj("b", "S1", 0)])
    ids = [r for (r,) in con.execute("SELECT run_id FROM trajectories").fetchall()]
    every = read_trajectories_of(con, ids)
    assert sorted(t.run_id for t in every) == sorted(ids)
    assert read_trajectories(con)[0] is every[0], "naming every run is the full read, kept for the next reader"
    some = read_trajectories_of(con, ids[:1])
    assert [t.run_id for t in some] == ids[:1]
    assert read_trajectories_of(con, []) == []
